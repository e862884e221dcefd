"""Runtime infrastructure shared by providers and the build: limits across processes, retries,
media tools (ffmpeg, probes) and the machine monitor. No Dagster."""
