"""What exists for a movie: the latest record of each artifact partition and the failures since.

Plain data, read from Dagster's event log by the orchestration layer (``event_log.load_state``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from movie_assets.domain.blueprint import NodeKey


@dataclass(frozen=True)
class ArtifactRecord:
    """The latest materialization of one artifact partition."""

    key: NodeKey
    version: str  # the content hash (Dagster data version)
    # Its reference: the artifact's path under the store's root (``movies/<movie>/<asset>/...``), resolved by
    # the store; an absolute URI in records made before, which the store re-roots (a home copied or moved).
    uri: str
    storage_id: int
    run_id: str
    timestamp: float
    metadata: dict[str, Any]
    input_versions: dict[str, str] = field(default_factory=dict)  # per dependency asset: hash of what it read
    code_version: str = ""


@dataclass(frozen=True)
class FailureRecord:
    """A run planned this partition after its latest materialization and failed."""

    key: NodeKey
    storage_id: int
    run_id: str
    message: str
    category: str = ""  # resources.providers.base.ErrorCategory value ("" when the run left no report)
    suggestion: str = ""


@dataclass
class MovieState:
    movie: str
    records: dict[NodeKey, ArtifactRecord] = field(default_factory=dict)
    failures: dict[NodeKey, FailureRecord] = field(default_factory=dict)
    # Records whose stored artifact is missing, truncated or no longer its recorded content: what was
    # found (see builder/verify.py). They are rebuilt like failed ones.
    damaged: dict[NodeKey, str] = field(default_factory=dict)

    def version(self, key: NodeKey) -> str | None:
        rec = self.records.get(key)
        return rec.version if rec else None
