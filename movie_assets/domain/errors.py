"""Errors a user acts on, raised across layers."""

from __future__ import annotations

import re


class MovieBusy(RuntimeError):
    """Another generation of the movie holds its lock."""


class OverBudget(RuntimeError):
    """A generation's estimated cost exceeds what a budget cap has left (nothing was sent)."""

    def __init__(self, message: str, estimate_usd: float, remaining_usd: float, scope: str):
        super().__init__(message)
        self.estimate_usd, self.remaining_usd, self.scope = estimate_usd, remaining_usd, scope


class PreflightFailed(RuntimeError):
    """Calls a generation needs cannot succeed (a missing key, a model that cannot do what is asked):
    found before any call. ``problems``: producer, route, message, category, suggestion."""

    def __init__(self, problems: list[dict[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{p['producer']}: {p['message']}" for p in problems))


class StoredFileDamaged(RuntimeError):
    """A file moviegen wrote itself (a movie's request, a revision) cannot be read back: it was cut
    short, overwritten or is no longer what was written. The message names the file, what is wrong
    and how to repair it."""

    def __init__(self, message: str, path: str):
        super().__init__(message)
        self.path = path


class MovieNotFound(LookupError):
    """No movie of that id is registered (in the service: none of the caller's tenant)."""

    def __init__(self, movie: str):
        super().__init__(f"no movie {movie!r} is registered (see `moviegen list`, or register one with `moviegen new`)")
        self.movie = movie


def for_movie(suggestion: str, movie: str) -> str:
    """A suggestion naming the movie: its word ``ID`` replaced (not the letters inside MOVIEGEN_PROVIDERS)."""
    return re.sub(r"\bID\b", movie, suggestion)
