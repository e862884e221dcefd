"""Progress of builds in this process, as it happens: listeners get every build result."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

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
