"""Provider interfaces (``base``) and their implementations: ``offline`` (built in: real media, no
keys), ``openai`` and ``replicate``; voices and prices per provider. No Dagster."""
