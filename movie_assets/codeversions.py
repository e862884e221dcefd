"""Code versions of the producers: they change when a prompt template or the provider/model a
producer is routed to changes (MOVIEGEN_PROVIDERS), and Dagster then marks what the old version made
as stale."""

from __future__ import annotations

from resources.routing import Route, routes_from_env

from .blueprint import ARTIFACTS, ArtifactDecl
from .prompts import TEMPLATE_VERSIONS

_TEMPLATE_OF = {
    "script": "script",
    "music_prompt": "music_prompt",
    "image_prompt": "image_prompts",
    "text_to_video_prompt": "text_to_video_prompt",
    "image_to_video_prompt": "image_to_video_prompt",
}


def code_version(decl: ArtifactDecl, routes: dict[str, Route]) -> str:
    """The artifact's version, its prompt template's, and its provider:model when not offline."""
    template = TEMPLATE_VERSIONS.get(_TEMPLATE_OF.get(decl.name, ""), "")
    route = routes.get(decl.producer) if decl.producer else None
    model = str(route) if route is not None and route.provider != "offline" else ""
    return "|".join(p for p in (decl.code_version, template, model) if p)


ARTIFACT_CODE_VERSIONS: dict[str, str] = {name: code_version(decl, routes_from_env()) for name, decl in ARTIFACTS.items()}
