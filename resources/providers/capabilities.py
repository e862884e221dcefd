"""What each video model can make, per provider: the capability tables of the provider catalogs
(offline/catalog.py, replicate/catalog.py), read by the plan's pre-flight and the recipes. No SDK import."""

from __future__ import annotations

from resources.providers.base import VideoCapability
from resources.providers.catalog import DEBUG_OVERLAY_SUFFIX
from resources.providers.offline.catalog import VIDEO_MODELS as OFFLINE_VIDEO_MODELS
from resources.providers.replicate.catalog import VIDEO_MODELS as REPLICATE_VIDEO_MODELS

VIDEO_MODELS: dict[str, dict[str, VideoCapability]] = {"offline": OFFLINE_VIDEO_MODELS, "replicate": REPLICATE_VIDEO_MODELS}


def video_capability(provider: str, model: str) -> VideoCapability | None:
    """The capability row of a video model (None: a model the catalog does not know). The offline clips with
    the developer's marks are the same model drawn with them."""
    return VIDEO_MODELS.get(provider, {}).get(model.removesuffix(DEBUG_OVERLAY_SUFFIX) if provider == "offline" else model)
