"""Partitions of the movie assets and the built-in mappings between them.

Movie-level assets are partitioned by the dynamic ``movies`` definition; segment-level assets by
movie × segment (``civil-war|03``); image-level assets by movie × segment_image (``civil-war|03_2``,
segment 3, image 2). Static dimensions are sized for the largest movie (30 segments, 5 images each);
keys beyond a movie's n and m simply stay missing and are never materialized.

Only built-in partition mappings are used: the webserver drops custom ones (see docs/architecture.md).
"""

from __future__ import annotations

import warnings

import dagster as dg

from movie_assets.domain.blueprint import NodeKey, image_suffix, segment_suffix
from movie_assets.domain.request import MAX_IMAGES_PER_SEGMENT, MAX_SEGMENTS

MOVIE_DIM = "movie"
SEGMENT_DIM = "segment"
IMAGE_DIM = "segment_image"


SEGMENT_KEYS = [segment_suffix(i) for i in range(MAX_SEGMENTS)]
IMAGE_KEYS = [image_suffix(i, j) for i in range(MAX_SEGMENTS) for j in range(MAX_IMAGES_PER_SEGMENT)]

movies_partitions = dg.DynamicPartitionsDefinition(name="movies")
segment_partitions = dg.MultiPartitionsDefinition(
    {MOVIE_DIM: movies_partitions, SEGMENT_DIM: dg.StaticPartitionsDefinition(SEGMENT_KEYS)}
)
image_partitions = dg.MultiPartitionsDefinition(
    {MOVIE_DIM: movies_partitions, IMAGE_DIM: dg.StaticPartitionsDefinition(IMAGE_KEYS)}
)

# The multi-partition mappings are marked beta; they are the built-in ones that work in the UI.
warnings.filterwarnings("ignore", category=dg.BetaWarning, module=__name__)

# Between a movie-level asset and a segment- or image-level one, Dagster infers the built-in
# MultiToSingleDimensionPartitionMapping on the movie dimension (the timeline reads at most 30
# segment partitions: under Dagster's 100-partition staleness threshold).

# An image-level asset reading its segment (03_2 -> 03).
segment_to_image = dg.MultiPartitionMapping(
    {
        MOVIE_DIM: dg.DimensionPartitionMapping(MOVIE_DIM, dg.IdentityPartitionMapping()),
        SEGMENT_DIM: dg.DimensionPartitionMapping(
            IMAGE_DIM,
            dg.StaticPartitionMapping(
                {
                    segment_suffix(i): [image_suffix(i, j) for j in range(MAX_IMAGES_PER_SEGMENT)]
                    for i in range(MAX_SEGMENTS)
                }
            ),
        ),
    }
)

# A segment-level asset reading its images (03 <- 03_0..03_4).
image_to_segment = dg.MultiPartitionMapping(
    {
        MOVIE_DIM: dg.DimensionPartitionMapping(MOVIE_DIM, dg.IdentityPartitionMapping()),
        IMAGE_DIM: dg.DimensionPartitionMapping(
            SEGMENT_DIM,
            dg.StaticPartitionMapping(
                {image_suffix(i, j): segment_suffix(i) for i in range(MAX_SEGMENTS) for j in range(MAX_IMAGES_PER_SEGMENT)}
            ),
        ),
    }
)


def partition_key(movie: str, segment: int | None = None, image: int | None = None) -> str | dg.MultiPartitionKey:
    """The Dagster partition key of a movie-, segment- or image-level partition; its string form is
    ``NodeKey.partition_key`` (``civil-war|03_2``: Dagster joins dimensions in name order)."""
    if segment is None:
        return movie
    if image is None:
        return dg.MultiPartitionKey({MOVIE_DIM: movie, SEGMENT_DIM: segment_suffix(segment)})
    return dg.MultiPartitionKey({MOVIE_DIM: movie, IMAGE_DIM: image_suffix(segment, image)})


def node_partition(movie: str, key: NodeKey) -> str | dg.MultiPartitionKey:
    """The Dagster partition key of one of a movie's nodes."""
    return partition_key(movie, key.segment, key.image)
