"""Partitions of the movie assets: only the partitions registered movies have.

* Movie-level assets are partitioned by the dynamic ``movies`` definition (``civil-war``).
* Segment-level assets by movie × segment (``civil-war|03``), where the segment keys are a dynamic
  set that grows with the segments registered movies have. Each visual branch has its own set: the
  picture, text-to-video and image-to-video assets count only segments some movie builds in that
  mode, so an image-only movie has no video partitions at all.
* The images of a segment (``segment_image[03_0]``, ``[03_1]``…) are one partition of the image
  assets, their segment's: the build still plans, calls and records each image on its own (a
  re-roll of one image rebuilds that image alone), and the materialization lists every image.

Only built-in mappings relate them (the webserver drops custom ones): identity on both dimensions
between segment-level assets of different sets (an identity mapping of two dynamic sets keeps the
keys they share) and Dagster's inferred ``MultiToSingleDimensionPartitionMapping`` on ``movie``
between a movie-level and a segment-level asset. No built-in mapping relates a segment key to
image keys of two dynamic sets, hence images as part of their segment's partition.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import dagster as dg

from movie_assets.domain.blueprint import ARTIFACTS, INPUTS, SUBGRAPHS, ArtifactDecl, Level, NodeKey, segment_suffix
from movie_assets.domain.request import VisualMode

MOVIE_DIM = "movie"
SEGMENT_DIM = "segment"

movies_partitions = dg.DynamicPartitionsDefinition(name="movies")

# The segment sets: every segment of a registered movie, and those built in each visual mode.
SEGMENT_SETS: dict[VisualMode | None, dg.DynamicPartitionsDefinition] = {
    None: dg.DynamicPartitionsDefinition(name="segments"),
    VisualMode.image_only: dg.DynamicPartitionsDefinition(name="picture_segments"),
    VisualMode.video_by_text: dg.DynamicPartitionsDefinition(name="text_to_video_segments"),
    VisualMode.video_by_image: dg.DynamicPartitionsDefinition(name="image_to_video_segments"),
}
SEGMENT_PARTITIONS: dict[VisualMode | None, dg.MultiPartitionsDefinition] = {
    mode: dg.MultiPartitionsDefinition({MOVIE_DIM: movies_partitions, SEGMENT_DIM: keys}) for mode, keys in SEGMENT_SETS.items()
}

# The multi-partition mappings are marked beta; they are the built-in ones that work in the UI.
warnings.filterwarnings("ignore", category=dg.BetaWarning, module=__name__)

# Between segment-level assets of two sets: the same movie and segment (keys both sets have).
SAME_SEGMENT = dg.MultiPartitionMapping({
    MOVIE_DIM: dg.DimensionPartitionMapping(MOVIE_DIM, dg.IdentityPartitionMapping()),
    SEGMENT_DIM: dg.DimensionPartitionMapping(SEGMENT_DIM, dg.IdentityPartitionMapping()),
})


def mode_of(decl: ArtifactDecl) -> VisualMode | None:
    return SUBGRAPHS[decl.subgraph].condition


def artifact_partitions(decl: ArtifactDecl) -> dg.PartitionsDefinition:
    """The partitions definition of an artifact type: movies, or movie × its mode's segment set."""
    return movies_partitions if decl.level is Level.movie else SEGMENT_PARTITIONS[mode_of(decl)]


def input_partitions_def(name: str) -> dg.PartitionsDefinition:
    """User inputs are observed for every segment of a movie (image inputs: a segment's images together)."""
    return movies_partitions if INPUTS[name].level is Level.movie else SEGMENT_PARTITIONS[None]


def mapping(downstream: dg.PartitionsDefinition, upstream: dg.PartitionsDefinition) -> dg.PartitionMapping | None:
    """The explicit mapping of a dependency, None where Dagster infers it (same definition, or movie-level
    on one side: a multi_asset allows one explicit mapping per upstream asset)."""
    if downstream is upstream or movies_partitions in (downstream, upstream):
        return None
    return SAME_SEGMENT


def partition_key(movie: str, segment: int | None = None) -> str | dg.MultiPartitionKey:
    """The Dagster partition key of a movie- or segment-level partition (``civil-war|03``: Dagster joins
    dimensions in name order)."""
    if segment is None:
        return movie
    return dg.MultiPartitionKey({MOVIE_DIM: movie, SEGMENT_DIM: segment_suffix(segment)})


def node_partition(movie: str, key: NodeKey) -> str | dg.MultiPartitionKey:
    """The Dagster partition of one of a movie's nodes (an image: its segment's)."""
    return partition_key(movie, key.segment)


def segment_keys(nodes: Iterable[NodeKey]) -> dict[str, set[str]]:
    """The keys each segment set needs for these nodes (a movie's blueprint): every segment of the movie
    in ``segments``, and each segment in the set of the modes its artifacts belong to."""
    keys: dict[str, set[str]] = {d.name: set() for d in SEGMENT_SETS.values()}
    for key in nodes:
        if key.segment is not None:
            keys[SEGMENT_SETS[None].name].add(segment_suffix(key.segment))
            keys[SEGMENT_SETS[mode_of(ARTIFACTS[key.asset])].name].add(segment_suffix(key.segment))
    return keys
