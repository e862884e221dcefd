"""Registering movies: the stored request, the dynamic partition and the observed user inputs."""

from __future__ import annotations

import json
import re

import dagster as dg

from partitions import movies_partitions, partition_key
from resources import ArtifactStore

from .blueprint import INPUTS, input_partitions, input_values
from .request import MovieRequest, RequestError, parse_request, validate_movie_id
from .versions import value_version


class MovieNotFound(LookupError):
    def __init__(self, movie: str):
        super().__init__(f"no movie {movie!r} is registered (see `moviegen list`, or register one with `moviegen new`)")
        self.movie = movie


def request_relpath(movie: str) -> str:
    return f"movies/{movie}/request.json"


def load_movie_request(store: ArtifactStore, movie: str) -> MovieRequest:
    try:
        data = json.loads(store.read(request_relpath(movie)))
    except FileNotFoundError:
        raise MovieNotFound(movie) from None
    return parse_request(data)


def save_movie_request(store: ArtifactStore, movie: str, request: MovieRequest) -> str:
    text = json.dumps(request.to_document(), indent=2, ensure_ascii=False, sort_keys=True)
    return store.write_text(request_relpath(movie), text + "\n")


def movie_exists(instance: dg.DagsterInstance, movie: str) -> bool:
    return instance.has_dynamic_partition(movies_partitions.name, movie)


def list_movies(instance: dg.DagsterInstance) -> list[str]:
    return sorted(instance.get_dynamic_partitions(movies_partitions.name))


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (slug[:40].rstrip("-") or "movie")


def new_movie_id(instance: dg.DagsterInstance, request: MovieRequest) -> str:
    from resources.offline_text import topic_of

    base = slugify(topic_of(request.inquiry_prompt))
    candidate, k = base, 2
    while movie_exists(instance, candidate):
        candidate, k = f"{base}-{k}", k + 1
    return candidate


def observe_inputs(instance: dg.DagsterInstance, movie: str, request: MovieRequest,
                   known: dict[tuple[str, str], str] | None = None) -> int:
    """Record each user-input partition's value hash as an observation; unchanged ones are skipped."""
    count = 0
    for name in INPUTS:
        for segment, image in input_partitions(request, name):
            value = input_values(request, name, segment, image)
            version = value_version(value)
            partition = partition_key(movie, segment, image)
            if known is not None and known.get((name, str(partition))) == version:
                continue
            instance.report_runless_asset_event(
                dg.AssetObservation(
                    name, partition=partition, tags={"dagster/data_version": version},
                    metadata={"value": dg.MetadataValue.json(value)},
                )
            )
            count += 1
    return count


def register_movie(instance: dg.DagsterInstance, store: ArtifactStore, request: MovieRequest,
                   movie: str | None = None) -> str:
    """Validate, store the request, add the movie's partition and observe its inputs. Returns the id."""
    if movie is None:
        movie = new_movie_id(instance, request)
    validate_movie_id(movie)
    if movie_exists(instance, movie):
        raise RequestError([f"movie id: {movie!r} is already registered; choose another --id (edits arrive with `moviegen edit`)"])
    save_movie_request(store, movie, request)
    instance.add_dynamic_partitions(movies_partitions.name, [movie])
    observe_inputs(instance, movie, request)
    return movie
