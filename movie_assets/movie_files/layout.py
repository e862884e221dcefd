"""Where each of a movie's files lives on artifact storage (the same layout on disk and on S3).

    movies/<movie>/request.json                            the current request
    movies/<movie>/requests/<n>.json                       a copy of the request after edit n (0: as registered)
    movies/<movie>/<asset>/<partition or _>/<version16>.<ext>   every artifact version, content-addressed
    movies/<movie>/runs/<run id>.json                      what each build run did
    movies/<movie>/edits/<n>.json                          each edit
    movies/<movie>/revisions/<n>.json                      each revision, with its manifest
    movies/<movie>/prunes/<n>.json                         each prune: the revisions it kept and let go, what it removed
    movies/<movie>/cache/<asset>/<partition>/<key>.json    build cache: which artifact these exact inputs made
    movies/<movie>/answers/<asset>/<partition>/<key>.json  a paid call's answer as it arrived (and <key>.<i>.bin,
                                                           its files), kept until its artifact is in the build cache
    movies/<movie>/own/<sha256 16>.<ext>                   a file of the user's (a picture, clip or sound given for a slot),
                                                           by its content hash
    deleted/<movie>.json                                   a deleted movie's id, not given out again
"""

from __future__ import annotations

import re


def movie_folder(movie: str) -> str:
    return f"movies/{movie}"


def request_path(movie: str) -> str:
    return f"movies/{movie}/request.json"


def request_copy_path(movie: str, seq: int) -> str:
    return f"movies/{movie}/requests/{seq:06d}.json"


def request_copies_folder(movie: str) -> str:
    return f"movies/{movie}/requests"


def artifact_path(movie: str, asset: str, partition_suffix: str | None, version: str, ext: str) -> str:
    return f"movies/{movie}/{asset}/{partition_suffix or '_'}/{version[:16]}.{ext}"


def own_file_path(movie: str, sha256: str, ext: str) -> str:
    """Where a file of the user's is kept (content-addressed; ``moviegen prune`` leaves it, ``delete`` removes it)."""
    return f"movies/{movie}/own/{sha256[:16]}.{ext}"


def tombstone_path(movie: str) -> str:
    """Left when a movie is deleted: its id is not given out again (Dagster's event log keeps its
    partitions' history, which a new movie of that id would read as its own). Never served."""
    return f"deleted/{movie}.json"


def runs_folder(movie: str) -> str:
    return f"movies/{movie}/runs"


def run_report_path(movie: str, run_id: str) -> str:
    return f"{runs_folder(movie)}/{run_id}.json"


def edits_folder(movie: str) -> str:
    return f"movies/{movie}/edits"


def edit_path(movie: str, seq: int) -> str:
    return f"{edits_folder(movie)}/{seq:06d}.json"


def revisions_folder(movie: str) -> str:
    return f"movies/{movie}/revisions"


def revision_path(movie: str, revision: int) -> str:
    return f"{revisions_folder(movie)}/{revision:06d}.json"


def prunes_folder(movie: str) -> str:
    return f"movies/{movie}/prunes"


def prune_path(movie: str, seq: int) -> str:
    return f"{prunes_folder(movie)}/{seq:06d}.json"


def cache_folder(movie: str) -> str:
    return f"movies/{movie}/cache"


def cache_path(movie: str, asset: str, partition_suffix: str | None, key: str) -> str:
    return f"movies/{movie}/cache/{asset}/{partition_suffix or '_'}/{key}.json"


def answers_folder(movie: str) -> str:
    return f"movies/{movie}/answers"


def answer_path(movie: str, asset: str, partition_suffix: str | None, key: str) -> str:
    return f"{answers_folder(movie)}/{asset}/{partition_suffix or '_'}/{key}.json"


# Paths the media server answers: the files of a movie (artifacts, renders, requests, revisions), nothing else.
SERVED_PATH = re.compile(r"movies/[a-z0-9][a-z0-9-]{0,79}(/[A-Za-z0-9_.|=-]{1,120}){1,6}")


def media_link(media_url: str, rel: str | None) -> str | None:
    """The media server's URL of a file at ``rel`` under the artifact root (None: no server, or not a
    movie's file)."""
    if not media_url or rel is None or not SERVED_PATH.fullmatch(rel) or ".." in rel.split("/"):
        return None
    return f"{media_url}/artifacts/{rel}"
