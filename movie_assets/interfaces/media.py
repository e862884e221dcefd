"""The media server: every artifact at ``/artifacts/PATH`` (PATH relative to the artifact root), so the
Dagster UI's links play in a browser (``file://`` links do not open there).

On disk a file is answered with HTTP Range (a video seeks without downloading it whole); on S3 the
answer is a redirect to a presigned link. Only artifact paths are served: nothing outside the artifact
root, no folder listings, no links followed. ``moviegen media`` listens on loopback (127.0.0.1:3070) unless
told otherwise; the hosted service serves the same routes behind its accounts.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from movie_assets.movie_files.layout import SERVED_PATH
from resources.storage import ArtifactStore

_TYPES = {"json": "application/json", "png": "image/png", "jpg": "image/jpeg", "mp3": "audio/mpeg", "m4a": "audio/mp4",
          "mp4": "video/mp4", "wav": "audio/wav", "txt": "text/plain; charset=utf-8", "yaml": "application/yaml",
          "otio": "application/json", "fcpxml": "application/xml", "edl": "text/plain; charset=utf-8"}


def _not_found(rel: str) -> Response:
    return PlainTextResponse(f"no such artifact: {rel[:200]}", status_code=404)


def artifact_response(store: ArtifactStore, rel: str) -> Response:
    """The answer for the artifact at ``rel`` (a path under the artifact root): the file with HTTP Range on
    disk, a redirect to a presigned (or public) link on S3, 404 for anything that is not an artifact file
    inside the root reached without a symbolic link. The media server and the hosted service answer with it."""
    if not SERVED_PATH.fullmatch(rel) or ".." in rel.split("/"):
        return _not_found(rel)
    media_type = _TYPES.get(rel.rsplit(".", 1)[-1], "application/octet-stream")
    root = store.root_folder()
    if root is None:  # S3: the object itself, through a presigned (or public) link
        if not store.exists(rel):
            return _not_found(rel)
        return RedirectResponse(store.link(store.uri(rel)), status_code=307)
    path = Path(root, rel)
    try:  # only a regular file inside the root, reached without a symbolic link
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(os.path.realpath(root)) or real != path.absolute() or not real.is_file():
            return _not_found(rel)
    except OSError:
        return _not_found(rel)
    return FileResponse(real, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


def media_app(store: ArtifactStore | None = None) -> Starlette:
    """The Starlette app serving ``store``'s artifacts (default: MOVIEGEN_STORAGE / the home's artifacts)."""
    store = store or ArtifactStore()

    async def artifact(request: Request) -> Response:
        return artifact_response(store, request.path_params["path"])

    async def index(request: Request) -> Response:
        return PlainTextResponse("moviegen media server: GET /artifacts/PATH (PATH relative to the artifact root)\n")

    return Starlette(routes=[Route("/", index), Route("/artifacts/{path:path}", artifact, methods=["GET", "HEAD"])])
