"""Recovery with reduced settings: the next lower settings a failed call is tried once at.

A provider call that failed for a reason less work can fix (the provider's size limit, a model out of GPU
memory, a timeout, too many diffusion steps: a ``Limit``, resources/providers/base.py) is made once more at
the next lower settings before the build falls back to a placeholder or a failure. What it made is marked
``degraded`` (from, to, why); the next generation plans it again at full settings. A pure function of the
settings asked and the limit met: the same answer on every machine.

What each limit lowers, in order (the first that can go lower):

- ``size``: the picture or clip size, one step down the size ladder (2160p -> 1080p -> 720p -> 480p);
- ``memory``: the size, else the diffusion steps (halved), else a lighter model of the same provider;
- ``timeout``: the same;
- ``steps``: the steps (halved, at least 1).

A lighter model (``gpt-4o`` -> ``gpt-4o-mini``, ``tts-1-hd`` -> ``tts-1``: the provider catalogs'
``LIGHTER_MODELS``) is what the script, the other texts and the narration audio can be made with less of.

A clip's length is not among them: every video model makes its own length and the segment's 10 s are
reached by holding its last frame, so a shorter clip would ask the provider nothing less.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from movie_assets.domain.request import AspectRatio, Size, frame_size

# Smallest first: the quality ladder of picture and clip sizes.
SIZE_LADDER: tuple[Size, ...] = (Size.p480, Size.p720, Size.p1080, Size.p2160)
# What each limit may lower, in the order tried.
LOWERS: dict[str, tuple[str, ...]] = {
    "size": ("size",),
    "memory": ("size", "steps", "model"),
    "timeout": ("size", "steps", "model"),
    "steps": ("steps",),
}
# The model parameters that are a number of diffusion steps (MOVIEGEN_MODEL_PARAMS), by provider convention.
STEP_PARAMS = ("num_inference_steps", "steps")


@dataclass(frozen=True)
class Ask:
    """The settings of a call that recovery may lower: the picture or clip size (the frame is made from it
    and the movie's aspect ratio), the diffusion steps (None: the model has no steps configured) and the
    model (``lighter``: the provider's lighter model, "" when it has none)."""

    size: Size
    steps: int | None = None
    model: str = ""
    lighter: str = ""

    def describe(self, what: str, aspect: AspectRatio) -> str:
        if what == "size":
            w, h = frame_size(self.size, aspect)
            return f"{w}x{h}"
        if what == "model":
            return self.model
        return f"{self.steps} steps"


@dataclass(frozen=True)
class Reduction:
    """One step down: the settings to try (``to``), what was lowered and why (the failure's message)."""

    full: Ask
    to: Ask
    lowered: str  # "size", "steps" or "model"
    reason: str

    def metadata(self, aspect: AspectRatio) -> dict[str, str | bool]:
        """What the artifact's metadata says: ``degraded`` and from, to, why (plain values: Dagster shows them)."""
        return {"degraded": True, "degraded_from": self.full.describe(self.lowered, aspect),
                "degraded_to": self.to.describe(self.lowered, aspect), "degraded_reason": self.reason[:500]}


def lower_size(size: Size) -> Size | None:
    """The next lower size of the ladder (None: already the lowest)."""
    at = SIZE_LADDER.index(size)
    return SIZE_LADDER[at - 1] if at > 0 else None


def lower_steps(steps: int | None) -> int | None:
    """Half the steps, at least 1 (None: no steps to lower, or already 1)."""
    return max(1, steps // 2) if steps is not None and steps > 1 else None


def next_lower(full: Ask, limit: str, reason: str = "", *, same_call: frozenset[str] = frozenset()) -> Reduction | None:
    """The settings one step below ``full`` that may get past ``limit`` (a ``Limit`` value), or None when
    nothing can go lower (the lowest size, no steps, no lighter model) or the limit is not reducible. ``same_call``: what
    lowering would not change in what the provider is asked (a model that makes one size whatever the
    frame), skipped as it would only repeat the call."""
    for what in LOWERS.get(str(limit), ()):
        if what in same_call:
            continue
        if what == "size" and (size := lower_size(full.size)) is not None:
            return Reduction(full, replace(full, size=size), "size", reason)
        if what == "steps" and (steps := lower_steps(full.steps)) is not None:
            return Reduction(full, replace(full, steps=steps), "steps", reason)
        if what == "model" and full.lighter and full.lighter != full.model:
            return Reduction(full, replace(full, model=full.lighter, lighter=""), "model", reason)
    return None


def step_param(params: dict[str, object]) -> str | None:
    """The parameter that holds the diffusion steps a model is configured with (None: none configured)."""
    return next((name for name in STEP_PARAMS
                 if isinstance(value := params.get(name), int) and not isinstance(value, bool)), None)


def steps_of(params: dict[str, object]) -> int | None:
    """The diffusion steps a model is configured with (None: none configured)."""
    value = params.get(step_param(params) or "")
    return value if isinstance(value, int) else None
