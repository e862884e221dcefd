"""The report each build run leaves: what it built, failed and skipped, its calls and cost."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from movie_assets.movie_files.layout import run_report_path
from resources.runtime.secrets import TEXT_LIMIT, redact
from resources.storage import ArtifactStore


@dataclass
class RunReport:
    """What one build run did. An empty report is a generation that built nothing."""

    movie: str = ""
    run_id: str | None = None
    built: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # node -> error
    skipped: list[str] = field(default_factory=list)
    provider_calls: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0
    seconds: float = 0.0
    machine: dict[str, Any] | None = None
    # One entry per built node that a provider made or the build cache gave back: node, producer,
    # provider, model, latency_s, retries, cost_usd, cached (reused with no call), fallback (a placeholder).
    calls: list[dict[str, Any]] = field(default_factory=list)
    # node -> {"message", "category", "suggestion"} for each failed node (``failed`` keeps the message).
    errors: dict[str, dict[str, str]] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)  # nodes whose artifact is an offline placeholder
    # node -> {"from", "to", "reason"}: built at reduced settings after its call failed at full ones (recovery)
    degraded: dict[str, dict[str, str]] = field(default_factory=dict)
    # node -> why its render failed and what its retry reduced: a render chunk made by its reduced retry
    retried: dict[str, str] = field(default_factory=dict)
    time: float = 0.0  # when the build ended (unix time)
    strategy: str = ""  # sequential, parallel or adaptive (empty: a run before strategies)
    critical_path_s: float = 0.0  # the critical path of what it built, at the brief's median latencies
    # How the slots were used: local (capacity first/min/max, peak and mean in use, history) and per provider kind.
    slots: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)  # node -> what its artifact's check found (the check failed)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> RunReport:
        known = RunReport.__dataclass_fields__
        return RunReport(**{k: v for k, v in data.items() if k in known})


def redacted(report: RunReport) -> RunReport:
    """The report with every error text (messages, suggestions, details) free of secrets."""
    report.failed = {node: redact(message, TEXT_LIMIT) for node, message in report.failed.items()}
    report.errors = {node: {k: redact(v, TEXT_LIMIT) if isinstance(v, str) else v for k, v in error.items()}
                     for node, error in report.errors.items()}
    return report


def write_run_report(store: ArtifactStore, report: RunReport) -> str:
    assert report.run_id is not None
    return store.write_text(run_report_path(report.movie, report.run_id),
                            json.dumps(redacted(RunReport.from_json(report.to_json())).to_json(), indent=2) + "\n")


def read_run_report(store: ArtifactStore, movie: str, run_id: str) -> RunReport | None:
    """What a build run did, from its report (None when the run left none)."""
    try:
        return redacted(RunReport.from_json(json.loads(store.read(run_report_path(movie, run_id)))))
    except (FileNotFoundError, ValueError, TypeError, AttributeError):
        return None  # none, or a damaged one: the run's failures then read as "run failed" without detail


def read_run_failures(store: ArtifactStore, movie: str, run_id: str) -> dict[str, dict[str, str]]:
    """The error (message, category, suggestion) of each node that a build run failed, from its
    report ({} when there is none)."""
    report = read_run_report(store, movie, run_id)
    return failures_in(report) if report is not None else {}


def failures_in(report: RunReport) -> dict[str, dict[str, str]]:
    """The error (message, category, suggestion) of each node the report lists as failed."""
    return {node: report.errors.get(node) or {"message": message, "category": "", "suggestion": ""}
            for node, message in report.failed.items()}
