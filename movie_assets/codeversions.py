"""Code versions of the producers: they change when a prompt template or the provider/model a
producer is routed to changes (MOVIEGEN_PROVIDERS), or its model parameters (MOVIEGEN_MODEL_PARAMS),
and Dagster then marks what the old version made as stale."""

from __future__ import annotations

from resources.routing import (
    Route,
    params_fingerprint,
    params_from_env,
    routes_from_env,
)

from .blueprint import ARTIFACTS, ArtifactDecl
from .prompts import TEMPLATE_VERSIONS

_TEMPLATE_OF = {
    "script": "script",
    "music_prompt": "music_prompt",
    "image_prompt": "image_prompts",
    "text_to_video_prompt": "text_to_video_prompt",
    "image_to_video_prompt": "image_to_video_prompt",
}


def code_version(decl: ArtifactDecl, routes: dict[str, Route], params: dict[str, dict[str, object]] | None = None) -> str:
    """The artifact's version, its prompt template's, and its provider:model (and a fingerprint of
    its model parameters) when not offline."""
    template = TEMPLATE_VERSIONS.get(_TEMPLATE_OF.get(decl.name, ""), "")
    route = routes.get(decl.producer) if decl.producer else None
    model = str(route) if route is not None and route.provider != "offline" else ""
    fingerprint = params_fingerprint((params or {}).get(decl.producer or "", {}))
    return "|".join(p for p in (decl.code_version, template, model, fingerprint) if p)


_ROUTES = routes_from_env()
_PARAMS = params_from_env(_ROUTES)
ARTIFACT_CODE_VERSIONS: dict[str, str] = {name: code_version(decl, _ROUTES, _PARAMS) for name, decl in ARTIFACTS.items()}
