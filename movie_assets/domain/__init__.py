"""The movie domain: requests, the blueprint and its expansion, input versions, plans, edits, prompts
and the timeline format. Plain Python: no Dagster, no providers, no storage."""
