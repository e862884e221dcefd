"""Code versions of the artifacts: they change when an artifact's own version or its prompt template
changes, or the provider/model its producer is routed to (MOVIEGEN_PROVIDERS), or its model
parameters (MOVIEGEN_MODEL_PARAMS), or the render engine; Dagster then marks what the old version made
as stale. A function of the settings only: two machines with the same settings compute the same
versions, whatever each has installed."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from movie_assets.builder.render.engines import engine_fingerprint
from movie_assets.domain.blueprint import ARTIFACTS, ArtifactDecl
from resources.providers.catalog import UNVERSIONED_OFFLINE_MODELS
from resources.settings import Route, Settings, params_fingerprint


def code_version(decl: ArtifactDecl, routes: Mapping[str, Route], params: Mapping[str, dict[str, object]] | None = None,
                 engine: str = "") -> str:
    """The artifact's version, its prompt template's, its provider:model (and a fingerprint of its
    model parameters) -- offline too, except the offline models made before offline models were
    versioned (a new offline drawing, voice or synth is a new model id) --, and the render engine for
    what an engine draws."""
    template = decl.template.version if decl.template else ""
    if decl.engine_drawn:
        template = engine
    route = routes.get(decl.producer) if decl.producer else None
    model = str(route) if route is not None and (route.provider != "offline" or route.model not in UNVERSIONED_OFFLINE_MODELS) else ""
    fingerprint = params_fingerprint((params or {}).get(decl.producer or "", {}))
    return "|".join(p for p in (decl.version, template, model, fingerprint) if p)


def code_versions(settings: Settings) -> Mapping[str, str]:
    """Every artifact's code version under these settings (computed when asked, never at import; the
    renderer's fingerprint, which reads its files, is computed once)."""
    engine = engine_fingerprint(settings.render_engine)
    return MappingProxyType({name: code_version(decl, settings.routes, settings.params, engine)
                             for name, decl in ARTIFACTS.items()})
