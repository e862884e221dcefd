"""A fingerprint of what draws the chunks, for their code version."""

from __future__ import annotations

import functools
import hashlib

from movie_assets.builder.render.ffmpeg_engine import ENGINE_VERSION
from resources.settings import RENDERER_DIR, RenderEngine


@functools.cache
def engine_fingerprint(engine: RenderEngine) -> str:
    """What draws the chunks, down to its code: the ffmpeg engine's version, or a hash of the Remotion
    composition, render script and locked packages (an edit there re-renders every chunk). Read from the
    project's own files, the same on every machine with this checkout (never from node_modules or
    whether Node and Chromium are installed)."""
    if engine is RenderEngine.ffmpeg:
        return f"ffmpeg-{ENGINE_VERSION}"
    digest = hashlib.sha256()
    for path in sorted([*(RENDERER_DIR / "src").glob("*"), RENDERER_DIR / "render.mjs", RENDERER_DIR / "package-lock.json"]):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"remotion-{digest.hexdigest()[:10]}"
