"""Progress of a build as it happens, and the report each build run leaves behind."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from resources import ArtifactStore

_listeners: list[Callable[[str, Any], None]] = []
_lock = threading.Lock()


def add_listener(fn: Callable[[str, Any], None]) -> None:
    """Called with (movie, Built|Failed|Skipped) for every result of a build in this process."""
    with _lock:
        _listeners.append(fn)


def remove_listener(fn: Callable[[str, Any], None]) -> None:
    with _lock:
        if fn in _listeners:
            _listeners.remove(fn)


def notify(movie: str, item: Any) -> None:
    with _lock:
        listeners = list(_listeners)
    for fn in listeners:
        fn(movie, item)


def run_report_relpath(movie: str, run_id: str) -> str:
    return f"movies/{movie}/runs/{run_id}.json"


def write_run_report(store: ArtifactStore, movie: str, run_id: str, summary: Any) -> str:
    """What one build run did: built, failed and skipped partitions and provider calls."""
    report = {
        "movie": movie,
        "run_id": run_id,
        "built": [str(k) for k in summary.built],
        "failed": {str(k): m for k, m in summary.failed.items()},
        "skipped": [str(k) for k in summary.skipped],
        "provider_calls": dict(sorted(summary.calls.items())),
        "cost_usd": round(summary.cost_usd, 6),
        "seconds": round(summary.seconds, 3),
        "machine": summary.machine.to_json() if summary.machine else None,
    }
    return store.write_text(run_report_relpath(movie, run_id), json.dumps(report, indent=2) + "\n")


def empty_report() -> dict[str, Any]:
    """The report of a generation that built nothing."""
    return {"provider_calls": {}, "built": [], "failed": {}, "skipped": [], "cost_usd": 0.0}


def read_run_report(store: ArtifactStore, movie: str, run_id: str) -> dict[str, Any] | None:
    """What a build run did, from its report (None when the run left none)."""
    try:
        return json.loads(store.read(run_report_relpath(movie, run_id)))
    except FileNotFoundError:
        return None


def read_run_failures(store: ArtifactStore, movie: str, run_id: str) -> dict[str, str]:
    """The error of each node that a build run failed, from its report ({} when there is none)."""
    report = read_run_report(store, movie, run_id)
    return report.get("failed", {}) if report else {}
