"""What the offline models can make: the offline video model's capability table (its clips are drawn
here, so it makes any call at any size, of any length, with a seed: the take; no reference pictures)."""

from __future__ import annotations

from resources.providers.base import VideoCapability

VIDEO_MODELS: dict[str, VideoCapability] = {
    "offline-ffmpeg-kenburns-2": VideoCapability(frozenset({"t2v", "i2v", "ti2v"}), ("480p", "720p", "1080p"), (10,),
                                                 seed=True, max_hold_s=0),
}
