"""Build metrics: a movie's run reports added up (movie_metrics), and the OpenMetrics exposition of them and
of the budget ledger (openmetrics), read back with prometheus_client's OpenMetrics parser."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from movie_assets.movie_files import metrics as metrics_module
from movie_assets.movie_files.layout import run_report_path
from movie_assets.movie_files.metrics import movie_metrics, openmetrics
from movie_assets.movie_files.reports import RunReport, write_run_report
from resources.runtime.budget import SqliteLedger
from resources.storage import ArtifactStore

IMAGE, SCRIPT, AUDIO = "TextToImageProducer", "ScriptProducer", "AudioProducer"
ODD_MODEL = 'flux "pro"\\v1\nbeta'  # a label value with a quote, a backslash and a newline


def _call(node: str, producer: str, provider: str, model: str, latency_s: float, *, retries: int = 0,
          cost_usd: float = 0.0, cached: bool = False, fallback: bool = False) -> dict[str, Any]:
    return {"node": node, "producer": producer, "provider": provider, "model": model, "latency_s": latency_s,
            "retries": retries, "cost_usd": cost_usd, "cached": cached, "fallback": fallback}


def _write_reports(store: ArtifactStore) -> None:
    """Three readable reports of movie m (one from before per-call entries), a broken one and one of the
    wrong shape; one report of movie other."""
    write_run_report(store, RunReport(
        movie="m", run_id="run-1", time=1000.0, seconds=12.5, cost_usd=0.19,
        built=["script", "segment_image[00_0]", "segment_image[00_1]", "segment_image[01_0]", "segment_audio[00]"],
        failed={"segment_image[01_1]": "rate limited", "timeline": "upstream segment_image[01_1] failed"},
        errors={"segment_image[01_1]": {"message": "rate limited", "category": "rate_limit", "suggestion": "wait"},
                "timeline": {"message": "upstream failed", "category": "upstream", "suggestion": "fix it"}},
        provider_calls={SCRIPT: 1, IMAGE: 3},
        calls=[
            _call("script", SCRIPT, "openai", "gpt-4o", 4.0, cost_usd=0.03),
            _call("segment_image[00_0]", IMAGE, "openai", "gpt-image-1", 1.0, retries=2, cost_usd=0.04),
            _call("segment_image[00_1]", IMAGE, "openai", "gpt-image-1", 3.0, cost_usd=0.04),
            _call("segment_image[01_0]", IMAGE, "replicate", ODD_MODEL, 9.0, retries=1, cost_usd=0.08),
            _call("segment_audio[00]", AUDIO, "offline", "piper", 0.5, fallback=True),
        ],
        fallbacks=["segment_audio[00]", "segment_audio[01]"],  # the second one has no call entry
    ))
    write_run_report(store, RunReport(
        movie="m", run_id="run-2", time=2000.0, seconds=3.0, cost_usd=0.04,
        built=["segment_image[00_0]", "segment_image[01_1]", "movie_video"], skipped=["segment_visuals[00]"],
        provider_calls={IMAGE: 1},
        calls=[
            # A cache hit: its latency, retries and cost are the original call's and must not count again.
            _call("segment_image[00_0]", IMAGE, "openai", "gpt-image-1", 7.0, retries=5, cost_usd=0.04, cached=True),
            _call("segment_image[01_1]", IMAGE, "openai", "gpt-image-1", 2.0, cost_usd=0.04),
            {"node": "movie_video", "latency_s": 0.0, "cached": True},  # a render the cache gave back
        ],
    ))
    # From before per-call entries: calls per producer and one cost, a failure with no category.
    store.write_text(run_report_path("m", "run-0"), json.dumps({
        "movie": "m", "run_id": "run-0", "built": ["script"], "failed": {"music": "boom"}, "skipped": [],
        "provider_calls": {SCRIPT: 1, "MusicProducer": 2}, "cost_usd": 0.5, "seconds": 20.0, "machine": None}))
    store.write_text(run_report_path("m", "run-broken"), '{"movie": "m", "run_id": "run-broken", "built": [')
    store.write_text(run_report_path("m", "run-list"), "[1, 2, 3]\n")
    store.write_text(run_report_path("m", "run-shape"), json.dumps({"movie": "m", "calls": [{"latency_s": "fast"}]}))
    store.write_text("movies/m/runs/notes.txt", "not a report")
    write_run_report(store, RunReport(
        movie="other", run_id="run-9", time=500.0, seconds=1.0, cost_usd=0.02, built=["script"],
        provider_calls={SCRIPT: 1}, calls=[_call("script", SCRIPT, "openai", "gpt-4o", 2.0, cost_usd=0.02)]))


def test_movie_metrics_aggregates_reports(tmp_path: Path) -> None:
    store = ArtifactStore(root=str(tmp_path))
    _write_reports(store)
    m = movie_metrics(store, "m")

    assert (m.runs, m.unreadable_reports) == (3, 3)
    assert (m.built, m.failed, m.skipped) == (5 + 3 + 1, 2 + 1, 1)
    assert m.seconds == pytest.approx(35.5)
    assert m.cost_usd == pytest.approx(0.73)
    assert m.last_build_time == 2000.0
    assert m.failures == {"rate_limit": 1, "upstream": 1, "unknown": 1}

    image = m.by_producer[IMAGE]
    assert (image.calls, image.cached, image.fallbacks, image.retries) == (4, 1, 0, 3)
    assert image.cost_usd == pytest.approx(0.20)
    assert sorted(image.latency.samples) == [1.0, 2.0, 3.0, 9.0]
    assert (image.latency.count, image.latency.sum_s, image.latency.max_s) == (4, 15.0, 9.0)
    assert (image.latency.quantile(0.5), image.latency.quantile(0.95)) == (2.0, 9.0)  # nearest rank
    assert image.failures == {"rate_limit": 1}  # the timeline is derived: no producer

    script = m.by_producer[SCRIPT]
    assert (script.calls, script.latency.count) == (2, 1)  # one from the old report, which has no latency
    assert m.by_producer["MusicProducer"].calls == 2
    assert m.by_producer["MusicProducer"].failures == {"unknown": 1}
    audio = m.by_producer[AUDIO]
    assert (audio.calls, audio.fallbacks) == (1, 2)
    assert m.by_producer["movie_video"].cached == 1  # a derived node: counted under its asset

    openai = m.by_provider["openai"]
    assert (openai.calls, openai.cached, openai.retries) == (4, 1, 2)  # the render has no provider
    assert openai.cost_usd == pytest.approx(0.15)
    assert sorted(openai.latency.samples) == [1.0, 2.0, 3.0, 4.0]
    assert m.by_provider["replicate"].cost_usd == pytest.approx(0.08)
    assert m.by_provider["unknown"].cost_usd == pytest.approx(0.5)  # the old report's cost
    assert m.routes[(IMAGE, "replicate", ODD_MODEL)].calls == 1

    totals = m.totals
    assert (totals.calls, totals.cached, totals.fallbacks, totals.retries) == (4 + 1 + 1 + 3, 2, 2, 3)
    assert totals.cost_usd == pytest.approx(0.73)
    assert totals.failures == m.failures
    assert totals.latency.max_s == 9.0

    data = json.loads(json.dumps(m.to_json()))
    assert data["movie"] == "m" and data["unreadable_reports"] == 3 and data["runs"] == 3
    assert data["producers"][IMAGE]["latency"] == {"count": 4, "sum_s": 15.0, "max_s": 9.0, "p50_s": 2.0, "p95_s": 9.0}
    assert data["producers"][IMAGE]["failures"] == {"rate_limit": 1}
    assert data["providers"]["openai"]["cost_usd"] == 0.15
    assert data["totals"]["failures"] == {"rate_limit": 1, "unknown": 1, "upstream": 1}
    assert {"producer": IMAGE, "provider": "replicate", "model": ODD_MODEL} == {
        k: v for k, v in data["routes"][[r["model"] for r in data["routes"]].index(ODD_MODEL)].items()
        if k in ("producer", "provider", "model")}


def test_movie_metrics_without_reports(tmp_path: Path) -> None:
    m = movie_metrics(ArtifactStore(root=str(tmp_path)), "nothing")
    assert (m.runs, m.unreadable_reports, m.built, m.last_build_time, m.routes) == (0, 0, 0, None, {})
    assert m.to_json()["totals"]["latency"] == {"count": 0, "sum_s": 0.0, "max_s": None, "p50_s": None, "p95_s": None}


def test_a_report_too_large_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ArtifactStore(root=str(tmp_path))
    _write_reports(store)
    monkeypatch.setattr(metrics_module, "MAX_REPORT_BYTES", 500)  # only the old report is this small
    m = movie_metrics(store, "m")
    assert (m.runs, m.unreadable_reports) == (1, 5)


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    found = [s.value for s in families[family].samples if s.name == sample and s.labels == labels]
    assert len(found) == 1, (family, sample, labels, families[family].samples)
    return found[0]


def test_openmetrics_parses_and_matches(tmp_path: Path) -> None:
    store = ArtifactStore(root=str(tmp_path / "artifacts"))
    _write_reports(store)
    now = time.time()
    clock = type("Clock", (), {"now": now - 3 * 86400, "__call__": lambda self: self.now})()
    ledger = SqliteLedger(tmp_path / "limits" / "budget.sqlite", clock=clock)
    old = ledger.reserve(movie="m", provider="openai", model="gpt-image-1", node="segment_image[00_0]",
                         estimate_usd=0.05, caps=[])
    ledger.settle(old, 0.04)  # three days ago
    clock.now = now
    today = ledger.reserve(movie="m", provider="replicate", model="flux", node="segment_image[01_0]",
                           estimate_usd=0.10, caps=[])
    ledger.settle(today, 0.08)
    ledger.reserve(movie="other", provider="openai", model="gpt-4o", node="script", estimate_usd=0.25, caps=[])  # open
    try:
        text = openmetrics(store, ["m", "other", "m"], ledger)
    finally:
        ledger.close()

    assert text.endswith("# EOF\n")
    assert "# UNIT moviegen_provider_cost_usd usd\n" in text
    assert "# UNIT moviegen_call_latency_seconds seconds\n" in text
    assert 'model="flux \\"pro\\"\\\\v1\\nbeta"' in text  # escaped quote, backslash and newline
    fams = _families(text)  # the OpenMetrics parser rejects malformed text, duplicates included

    assert fams["moviegen_provider_calls"].type == "counter"
    assert _value(fams, "moviegen_provider_calls", "moviegen_provider_calls_total",
                  movie="m", producer=IMAGE, provider="openai", model="gpt-image-1") == 3
    assert _value(fams, "moviegen_provider_calls", "moviegen_provider_calls_total",
                  movie="m", producer=IMAGE, provider="replicate", model=ODD_MODEL) == 1  # round-trips unescaped
    assert _value(fams, "moviegen_provider_calls", "moviegen_provider_calls_total",
                  movie="m", producer="MusicProducer", provider="unknown", model="unknown") == 2
    assert _value(fams, "moviegen_provider_calls", "moviegen_provider_calls_total",
                  movie="other", producer=SCRIPT, provider="openai", model="gpt-4o") == 1
    assert _value(fams, "moviegen_cache_hits", "moviegen_cache_hits_total", movie="m", producer=IMAGE) == 1
    assert _value(fams, "moviegen_cache_hits", "moviegen_cache_hits_total", movie="m", producer="movie_video") == 1
    assert _value(fams, "moviegen_fallbacks", "moviegen_fallbacks_total", movie="m", producer=AUDIO) == 2
    assert _value(fams, "moviegen_call_retries", "moviegen_call_retries_total",
                  movie="m", producer=IMAGE, provider="openai") == 2
    assert _value(fams, "moviegen_provider_cost_usd", "moviegen_provider_cost_usd_total",
                  movie="m", provider="openai") == pytest.approx(0.15)
    assert fams["moviegen_provider_cost_usd"].unit == "usd"

    latency = fams["moviegen_call_latency_seconds"]
    assert (latency.type, latency.unit) == ("summary", "seconds")
    labels = {"movie": "m", "producer": IMAGE, "provider": "openai"}
    assert _value(fams, "moviegen_call_latency_seconds", "moviegen_call_latency_seconds_count", **labels) == 3
    assert _value(fams, "moviegen_call_latency_seconds", "moviegen_call_latency_seconds_sum", **labels) == 6.0
    assert _value(fams, "moviegen_call_latency_seconds", "moviegen_call_latency_seconds", **labels, quantile="0.5") == 2.0
    assert _value(fams, "moviegen_call_latency_seconds", "moviegen_call_latency_seconds", **labels, quantile="0.95") == 3.0
    assert _value(fams, "moviegen_call_latency_max_seconds", "moviegen_call_latency_max_seconds", **labels) == 3.0

    assert _value(fams, "moviegen_failures", "moviegen_failures_total", movie="m", category="rate_limit") == 1
    assert _value(fams, "moviegen_failures", "moviegen_failures_total", movie="m", category="unknown") == 1
    assert _value(fams, "moviegen_runs", "moviegen_runs_total", movie="m") == 3  # "m" listed twice, counted once
    assert _value(fams, "moviegen_unreadable_reports", "moviegen_unreadable_reports", movie="m") == 3
    assert _value(fams, "moviegen_build_seconds", "moviegen_build_seconds_total", movie="m") == 35.5
    assert _value(fams, "moviegen_last_build_timestamp_seconds", "moviegen_last_build_timestamp_seconds", movie="m") == 2000

    assert fams["moviegen_budget_spent_usd"].type == "gauge"
    assert _value(fams, "moviegen_budget_spent_usd", "moviegen_budget_spent_usd", scope="all") == pytest.approx(0.37)
    assert _value(fams, "moviegen_budget_spent_usd", "moviegen_budget_spent_usd", scope="day") == pytest.approx(0.33)
    assert _value(fams, "moviegen_budget_movie_spent_usd", "moviegen_budget_movie_spent_usd", movie="m") == pytest.approx(0.12)
    assert _value(fams, "moviegen_budget_unsettled_usd", "moviegen_budget_unsettled_usd") == pytest.approx(0.25)
    assert _value(fams, "moviegen_budget_unsettled_reservations", "moviegen_budget_unsettled_reservations") == 1


def test_openmetrics_without_ledger_or_reports(tmp_path: Path) -> None:
    text = openmetrics(ArtifactStore(root=str(tmp_path)), ["new"], None)
    fams = _families(text)
    assert "moviegen_budget_spent_usd" not in fams
    assert _value(fams, "moviegen_runs", "moviegen_runs_total", movie="new") == 0
    assert fams["moviegen_provider_calls"].samples == []
    assert _families(openmetrics(ArtifactStore(root=str(tmp_path)), [], None))["moviegen_runs"].samples == []
