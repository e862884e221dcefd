"""Code versions of the artifacts: they change when an artifact's own version or its prompt template
changes, or the provider/model its producer is routed to (MOVIEGEN_PROVIDERS), or its model
parameters (MOVIEGEN_MODEL_PARAMS); Dagster then marks what the old version made as stale."""

from __future__ import annotations

from movie_assets.build.render.engines import RENDER_ENGINE, engine_fingerprint
from movie_assets.domain.blueprint import ARTIFACTS, ArtifactDecl
from resources.settings import Route, params_fingerprint, params_from_env, routes_from_env

# Renders whose pixels depend on the engine that drew them.
ENGINE_RENDERS = frozenset({"video_chunk", "movie_video"})


def code_version(decl: ArtifactDecl, routes: dict[str, Route], params: dict[str, dict[str, object]] | None = None,
                 engine: str = "") -> str:
    """The artifact's version, its prompt template's, its provider:model (and a fingerprint of its
    model parameters) when not offline, and the render engine for what an engine draws."""
    template = decl.template.version if decl.template else ""
    if decl.name in ENGINE_RENDERS:
        template = engine
    route = routes.get(decl.producer) if decl.producer else None
    model = str(route) if route is not None and route.provider != "offline" else ""
    fingerprint = params_fingerprint((params or {}).get(decl.producer or "", {}))
    return "|".join(p for p in (decl.version, template, model, fingerprint) if p)


_ROUTES = routes_from_env()
_PARAMS = params_from_env(_ROUTES)
ARTIFACT_CODE_VERSIONS: dict[str, str] = {name: code_version(decl, _ROUTES, _PARAMS, engine_fingerprint(RENDER_ENGINE))
                                          for name, decl in ARTIFACTS.items()}
