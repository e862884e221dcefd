"""The movie's Dagster asset specs, made from the blueprint's rows (one row per artifact type).

* User inputs are external assets, observed with a content-hash data version per partition when a
  movie is registered or edited, so Dagster shows exactly the dependent partitions as stale.
* Every artifact type is an asset partitioned by movie or by movie × segment (the segments of its visual
  mode; an image asset's partition holds its segment's images), whose code version, group, kinds, check
  and code reference (its recipe) come from its row.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Mapping

import dagster as dg

from movie_assets.builder.code_versions import code_versions
from movie_assets.builder.recipes import RECIPES
from movie_assets.domain.blueprint import ARTIFACTS, INPUTS, ArtifactDecl, Level
from movie_assets.orchestration.marks import UP_TO_DATE
from partitions import artifact_partitions, input_partitions_def, mapping
from resources.settings import Settings

# Code references are marked beta; they are what links an asset to its code in the UI.
warnings.filterwarnings("ignore", category=dg.BetaWarning, module=__name__)

INPUTS_GROUP = "inputs"

_KINDS = {"json": {"json"}, "mp3": {"audio"}, "m4a": {"audio"}, "png": {"image"}, "mp4": {"video"}}


INPUT_SPECS: dict[str, dg.AssetSpec] = {
    i.name: dg.AssetSpec(
        i.name,
        partitions_def=input_partitions_def(i.name),
        group_name=INPUTS_GROUP,
        description=f"User input: {i.description} ({', '.join(i.fields)}). Observed with a hash of its value.",
        kinds={"yaml"},
        metadata={"request_fields": ", ".join(i.fields)},
    )
    for i in INPUTS.values()
}


# Every file the inbox sensor handles is observed here with its outcome (accepted: the movie and run key;
# rejected: the first errors), so a rejected file shows in the UI, not only in the server's log.
INBOX_SPEC = dg.AssetSpec(
    "inbox",
    group_name=INPUTS_GROUP,
    description="Request and edits files dropped in the inbox (MOVIEGEN_INBOX; default $DAGSTER_HOME/inbox). Each file the "
                "movie_inbox sensor handles is an observation here: accepted (movie, run key) or rejected (its first errors, "
                "the full list in NAME.error.json beside the file).",
    kinds={"yaml"},
)


def _code_reference(decl: ArtifactDecl) -> dg.CodeReferencesMetadataValue:
    """A link from the asset in the UI to the function that produces it."""
    fn = RECIPES[decl.name]
    _, line = inspect.getsourcelines(fn)
    return dg.CodeReferencesMetadataValue(
        code_references=[dg.LocalFileCodeReference(file_path=inspect.getsourcefile(fn) or "", line_number=line,
                                                   label=f"recipe of {decl.name}")]
    )


def _artifact_spec(decl: ArtifactDecl, code_version: str) -> dg.AssetSpec:
    own = artifact_partitions(decl)
    deps = [dg.AssetDep(d, partition_mapping=mapping(own, artifact_partitions(ARTIFACTS[d]))) for d in decl.deps]
    deps += [dg.AssetDep(INPUT_SPECS[i], partition_mapping=mapping(own, input_partitions_def(i))) for i in decl.inputs]
    metadata: dict[str, object] = {"producer": decl.producer or "derived", "media": decl.media,
                                   "dagster/code_references": _code_reference(decl)}
    if decl.template:
        metadata["prompt_template"] = decl.template.version
    return dg.AssetSpec(
        decl.name,
        partitions_def=own,
        deps=deps,
        skippable=True,
        code_version=code_version,
        group_name=decl.subgraph,
        description=decl.description + (f" — {decl.producer}" if decl.producer else " — no provider call"),
        kinds=_KINDS[decl.media] | {"python"},
        metadata=metadata,
    )


ARTIFACT_KEYS: dict[str, dg.AssetKey] = {name: dg.AssetKey(name) for name in ARTIFACTS}


@functools.lru_cache(maxsize=4)
def artifact_specs(settings: Settings) -> Mapping[str, dg.AssetSpec]:
    """Every artifact's spec under these settings (their code versions), made when the definitions load."""
    versions = code_versions(settings)
    return {d.name: _artifact_spec(d, versions[d.name]) for d in ARTIFACTS.values()}

CHECK_SPECS: list[dg.AssetCheckSpec] = [
    dg.AssetCheckSpec(d.check.name, asset=d.name, description=d.check.description)
    for d in ARTIFACTS.values() if d.check is not None
] + [
    # Evaluated (run-less) each time a movie's plan changes; a UI run that selects it reports it again after
    # its build, and "Execute all" plans every movie again. Never part of a generation run.
    dg.AssetCheckSpec(UP_TO_DATE, asset=name, blocking=False,
                      description="Whether the next generate rebuilds any partition of this asset (every movie): a "
                                  "warning lists them with their reasons, calls and estimated cost. Evaluated after each "
                                  "edit and build; Dagster's own staleness shows only the first hop.")
    for name in ARTIFACTS
]

# The three build steps, one per partitions definition (see docs/architecture.md).
BUILD_STEPS = {Level.movie: "movie_build", Level.segment: "segment_build", Level.image: "image_build"}
