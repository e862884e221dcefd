"""A movie's stored request: the current version of what the user asked for."""

from __future__ import annotations

import json

from movie_assets.domain.request import MovieRequest, parse_request
from movie_assets.store.layout import request_path
from resources.storage import ArtifactStore


class MovieNotFound(LookupError):
    def __init__(self, movie: str):
        super().__init__(f"no movie {movie!r} is registered (see `moviegen list`, or register one with `moviegen new`)")
        self.movie = movie


def load_movie_request(store: ArtifactStore, movie: str) -> MovieRequest:
    try:
        data = json.loads(store.read(request_path(movie)))
    except FileNotFoundError:
        raise MovieNotFound(movie) from None
    return parse_request(data)


def save_movie_request(store: ArtifactStore, movie: str, request: MovieRequest) -> str:
    text = json.dumps(request.to_document(), indent=2, ensure_ascii=False, sort_keys=True)
    return store.write_text(request_path(movie), text + "\n")


def require_stored(store: ArtifactStore, movie: str) -> None:
    """MovieNotFound unless the movie's request is stored (every registered movie has one)."""
    if not store.exists(request_path(movie)):
        raise MovieNotFound(movie)
