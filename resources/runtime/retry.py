"""Retries for provider calls: only what can succeed, honouring the provider's wait hints.

Backoff is exponential with full jitter, bounded both in attempts and in total waiting time. A
``retry-after-ms``, ``retry-after`` (seconds or an HTTP date) or ``x-ratelimit-reset-*`` header
replaces the computed backoff when present.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_s: float = 0.5
    cap_s: float = 8.0
    max_total_wait_s: float = 120.0


@dataclass(frozen=True)
class Verdict:
    retryable: bool
    wait_s: float | None = None  # the provider's own hint


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$")


def parse_duration(text: str) -> float | None:
    """'6m0s', '1.5s', '120ms', '2h3m' -> seconds (OpenAI's x-ratelimit-reset-* format)."""
    m = _DURATION.match(text.strip())
    if not m or not any(m.groups()):
        return None
    h, mi, s, ms = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000


def wait_hint(headers: Mapping[str, str]) -> float | None:
    """Seconds the provider asks us to wait, from its response headers."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lower:
        try:
            return float(lower["retry-after-ms"]) / 1000
        except ValueError:
            pass
    if "retry-after" in lower:
        value = lower["retry-after"]
        try:
            return float(value)
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
    for key in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens", "ratelimit-reset"):
        if key in lower:
            seconds = parse_duration(lower[key]) if not lower[key].replace(".", "").isdigit() else float(lower[key])
            if seconds is not None:
                return seconds
    return None


async def with_retries(fn: Callable[[], Awaitable[T]], classify: Callable[[Exception], Verdict],
                       policy: RetryPolicy = RetryPolicy()) -> tuple[T, int]:
    """Call ``fn`` until it succeeds or fails for good; returns (result, retries made)."""
    waited = 0.0
    for attempt in range(policy.max_attempts):
        try:
            return await fn(), attempt
        except Exception as e:
            verdict = classify(e)
            if not verdict.retryable or attempt == policy.max_attempts - 1:
                e.retries = attempt  # type: ignore[attr-defined]
                raise
            backoff = random.uniform(0, min(policy.cap_s, policy.base_s * 2**attempt))
            delay = verdict.wait_s if verdict.wait_s is not None else backoff
            if waited + delay > policy.max_total_wait_s:
                e.retries = attempt  # type: ignore[attr-defined]
                raise
            waited += delay
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
