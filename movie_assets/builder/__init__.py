"""The build: producers that make one artifact each through a provider, the engine that builds a set
of artifact partitions concurrently, timeline assembly, artifact checks and code versions. No Dagster:
the orchestration layer turns its results into Dagster events."""
