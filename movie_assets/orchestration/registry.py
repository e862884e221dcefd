"""Registering movies: the stored request, the movie's dynamic partition and its observed user inputs.

Each user-input partition is observed with a content hash of its value, so Dagster shows exactly the
partitions that read a changed input as stale."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import dagster as dg

from movie_assets.domain.blueprint import INPUTS, Level, NodeKey, expand
from movie_assets.domain.inputs import INPUT_NAMES, input_values, value_version
from movie_assets.domain.request import MovieRequest, RequestError, topic_of, validate_movie_id
from movie_assets.movie_files.layout import tombstone_path
from movie_assets.movie_files.movies import MovieNotFound, save_movie_request
from movie_assets.movie_files.own_media import store_own_files
from partitions import movies_partitions, partition_key, segment_keys
from resources.storage import ArtifactStore


def movie_exists(instance: dg.DagsterInstance, movie: str) -> bool:
    return instance.has_dynamic_partition(movies_partitions.name, movie)


def list_movies(instance: dg.DagsterInstance) -> list[str]:
    return sorted(instance.get_dynamic_partitions(movies_partitions.name))


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (slug[:40].rstrip("-") or "movie")


def id_taken(instance: dg.DagsterInstance, store: ArtifactStore, movie: str) -> bool:
    """Registered, or the id of a deleted movie (never given out again: see layout.tombstone_path)."""
    return movie_exists(instance, movie) or store.exists(tombstone_path(movie))


def new_movie_id(instance: dg.DagsterInstance, request: MovieRequest, store: ArtifactStore | None = None,
                 prefix: str = "") -> str:
    base = prefix + slugify(topic_of(request.inquiry_prompt))[:63 - len(prefix) - 4].rstrip("-")
    candidate, k = base, 2
    while movie_exists(instance, candidate) or (store is not None and store.exists(tombstone_path(candidate))):
        candidate, k = f"{base}-{k}", k + 1
    return candidate


def _input_groups(request: MovieRequest, name: str) -> dict[int | None, list[tuple[int | None, int | None]]]:
    """An input's (segment, image) values by Dagster partition: every segment of the movie (its partitions
    are all the movie's segments, so none shows missing), a segment's images together. A take input is
    observed at take 0 where the segment has no such artifact: nothing reads it there."""
    level = INPUTS[name].level
    if level is Level.movie:
        return {None: [(None, None)]}
    images = range(request.images_per_segment) if level is Level.image else [None]
    return {i: [(i, j) for j in images] for i in range(request.segment_count)}


def _input_value(request: MovieRequest, name: str, parts: list[tuple[int | None, int | None]]) -> object:
    """The value Dagster observes for one input partition (an image input: the list of its images' values)."""
    if INPUTS[name].level is Level.image:
        return [input_values(request, name, s, i) for s, i in parts]
    (segment, image), = parts
    return input_values(request, name, segment, image)


def observe_inputs(instance: dg.DagsterInstance, movie: str, request: MovieRequest,
                   known: dict[tuple[str, str], str] | None = None) -> int:
    """Record each user-input partition's value hash as an observation; unchanged ones are skipped.
    Take inputs are observed at take 0 too: a re-roll undone before the next generate (take 0 again)
    then reads as unchanged in Dagster's view, which compares with the observation before the build."""
    add_segment_keys(instance, request)
    count = 0
    for name in INPUT_NAMES:
        for segment, parts in _input_groups(request, name).items():
            value = _input_value(request, name, parts)
            version = value_version(value)
            partition = partition_key(movie, segment)
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


def add_segment_keys(instance: dg.DagsterInstance, request: MovieRequest, nodes: Iterable[NodeKey] | None = None) -> None:
    """Add the segment keys this request's partitions need (``nodes``: its expanded blueprint's, when the
    caller has it); the sets only grow: another movie may use a key."""
    for name, keys in segment_keys(expand(request, render=True).nodes if nodes is None else nodes).items():
        missing = sorted(keys - set(instance.get_dynamic_partitions(name)))
        if missing:
            instance.add_dynamic_partitions(name, missing)


def register_movie(instance: dg.DagsterInstance, store: ArtifactStore, request: MovieRequest,
                   movie: str | None = None, *, base: str | Path | None = None, local_files: bool = True) -> str:
    """Validate, store the user's own files (read or downloaded once: ``base``, the folder relative paths are
    read from; ``local_files`` false: URLs only), store the request, add the movie's partition and observe its
    inputs. Returns the id."""
    if movie is None:
        movie = new_movie_id(instance, request, store)
    validate_movie_id(movie)
    if movie_exists(instance, movie):
        raise RequestError([f"movie id: {movie!r} is already registered; choose another --id (edits arrive with `moviegen edit`)"])
    if store.exists(tombstone_path(movie)):
        raise RequestError([f"movie id: {movie!r} belonged to a deleted movie and is not given out again; choose another --id"])
    request = store_own_files(store, movie, request, base=base, local_files=local_files)
    save_movie_request(store, movie, request)
    instance.add_dynamic_partitions(movies_partitions.name, [movie])
    observe_inputs(instance, movie, request)
    return movie


def require_movie(instance: dg.DagsterInstance, movie: str) -> None:
    if not movie_exists(instance, movie):
        raise MovieNotFound(movie)


def input_hashes(movie: str, request: MovieRequest) -> dict[tuple[str, str], str]:
    """(input, partition) -> value hash, for every user-input partition the request uses."""
    return {(name, str(partition_key(movie, segment))): value_version(_input_value(request, name, parts))
            for name in INPUT_NAMES for segment, parts in _input_groups(request, name).items()}
