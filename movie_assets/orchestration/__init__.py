"""The Dagster layer: asset specs (one row per artifact), build steps, the event log as the catalog
of what exists, registration and edits of movies, generations, locks, jobs and the inbox sensor."""
