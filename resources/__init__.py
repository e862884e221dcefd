"""Everything the build talks to: provider interfaces and implementations (``providers``), runtime
infrastructure (``runtime``: limits, retries, media tools, machine monitor), artifact storage
(``storage``), settings read from the environment (``settings``) and the Dagster resources made from
them (``dagster_resources``)."""
