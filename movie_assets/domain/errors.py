"""Errors a user acts on, raised across layers."""

from __future__ import annotations


class MovieBusy(RuntimeError):
    """Another generation of the movie holds its lock."""
