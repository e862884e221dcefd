"""The hosted service: the HTTP API and the web studio (``moviegen serve``; docs/service.md)."""
