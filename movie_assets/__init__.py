"""moviegen: a build system for AI-generated short explainer movies on Dagster."""
