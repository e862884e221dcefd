"""Failures as recorded: a generate repeating the same failures records no new revision; storage failures
are categorized ``storage``; the build jobs select the step's checks but not the plan check."""

from __future__ import annotations

import errno
from pathlib import Path

import dagster as dg
import pytest

from movie_assets.domain.blueprint import NodeKey, expand
from movie_assets.domain.records import ArtifactRecord, MovieState
from movie_assets.movie_files.layout import revisions_folder
from movie_assets.movie_files.reports import RunReport
from movie_assets.movie_files.revisions import write_revision
from resources.providers.base import SUGGESTIONS, ErrorCategory, categorize, describe_failure
from resources.storage import ArtifactStore, StorageError
from tests.conftest import small_request

MOVIE = "m"
FAILED = str(NodeKey("segment_image", 0, 0))
OTHER = str(NodeKey("segment_image", 0, 1))

# --- D1: revisions -------------------------------------------------------------------------------


def _record(key: NodeKey, version: str) -> ArtifactRecord:
    return ArtifactRecord(key, version, f"file:///nowhere/{key.asset}/{version}", 0, "", 0.0, {})


def _generate(store: ArtifactStore, run: str, failed: dict[str, str], version: str = "v1") -> int:
    blueprint = expand(small_request())
    state = MovieState(MOVIE, records={NodeKey("timeline"): _record(NodeKey("timeline"), version)})
    report = RunReport(movie=MOVIE, run_id=run, failed=failed)
    return write_revision(store, MOVIE, blueprint=blueprint, state=state, run_id=run, report=report, edits=[]).revision


def _count(store: ArtifactStore) -> int:
    return len(store.list(revisions_folder(MOVIE)))


def test_repeating_the_same_failures_records_no_new_revision(tmp_path: Path) -> None:
    store = ArtifactStore(root=str(tmp_path / "artifacts"))
    assert _generate(store, "r1", {FAILED: "outage"}) == 1
    # The same node fails again (its message may differ): nothing changed, no new revision.
    assert _generate(store, "r2", {FAILED: "outage again"}) == 1
    assert _count(store) == 1


def test_a_different_failure_set_records_a_new_revision(tmp_path: Path) -> None:
    store = ArtifactStore(root=str(tmp_path / "artifacts"))
    assert _generate(store, "r1", {FAILED: "outage"}) == 1
    assert _generate(store, "r2", {FAILED: "outage", OTHER: "outage"}) == 2  # a new failure
    assert _generate(store, "r3", {OTHER: "outage"}) == 3  # one healed
    assert _generate(store, "r4", {}) == 4  # all healed
    assert _generate(store, "r5", {}) == 4  # nothing changed, nothing failed: as before
    assert _generate(store, "r6", {}, version="v2") == 5  # a new artifact version
    assert _count(store) == 5


# --- D2: storage failures ------------------------------------------------------------------------


def test_storage_error_is_a_storage_failure() -> None:
    e = StorageError("S3 refused movies/m/timeline (AccessDenied): check AWS_ACCESS_KEY_ID")
    assert categorize(e) == (ErrorCategory.storage, SUGGESTIONS[ErrorCategory.storage])
    info = describe_failure(e)
    assert info["category"] == "storage" and info["suggestion"] == SUGGESTIONS[ErrorCategory.storage]
    assert info["message"].startswith("StorageError: S3 refused")


def test_a_named_category_is_honoured_only_when_valid() -> None:
    class Tagged(Exception):
        category = "rate_limit"
        suggestion = "wait a minute"

    class Unknown(Exception):
        category = "weather"

    assert categorize(Tagged()) == (ErrorCategory.rate_limit, "wait a minute")
    assert categorize(Unknown())[0] is ErrorCategory.local
    # An OSError not raised by the store keeps its category.
    assert categorize(PermissionError(errno.EACCES, "denied"))[0] is ErrorCategory.local
    assert categorize(OSError(errno.ENOSPC, "No space left on device"))[0] is ErrorCategory.local


def test_a_storage_folder_that_cannot_hold_artifacts_is_a_storage_failure(tmp_path: Path) -> None:
    a_file = tmp_path / "hostname"
    a_file.write_text("not a folder")
    store = ArtifactStore(root=str(a_file))  # as MOVIEGEN_STORAGE=/etc/hostname
    with pytest.raises(NotADirectoryError) as written:  # its type is kept: callers catching OSError still do
        store.write_text("movies/m/timeline/_/x.json", "{}")
    assert categorize(written.value) == (ErrorCategory.storage, SUGGESTIONS[ErrorCategory.storage])
    with pytest.raises(NotADirectoryError) as read:
        store.read("movies/m/timeline/_/x.json")
    assert categorize(read.value)[0] is ErrorCategory.storage
    with pytest.raises(NotADirectoryError) as listed:
        store.list("movies/m/revisions")
    assert categorize(listed.value)[0] is ErrorCategory.storage
    # A missing artifact is still just missing.
    good = ArtifactStore(root=str(tmp_path / "artifacts"))
    with pytest.raises(FileNotFoundError):
        good.read("movies/m/timeline/_/x.json")
    assert good.list("movies/m/revisions") == []


# --- D6: the up_to_date checks are not part of build runs ---------------------------------

PLAN_CHECK_KEYS = {dg.AssetCheckKey(dg.AssetKey(a), "up_to_date") for a in ("timeline", "segment_image", "movie_video")}
OWN_CHECKS = {dg.AssetCheckKey(dg.AssetKey("timeline"), "timeline_complete"),
              dg.AssetCheckKey(dg.AssetKey("movie_video"), "movie_matches_timeline")}


def test_build_jobs_keep_the_step_checks_but_not_the_plan_check() -> None:
    from movie_assets.definitions import defs
    from movie_assets.orchestration.jobs import BUILD_JOB, GENERATE_JOB

    assert PLAN_CHECK_KEYS <= defs().resolve_asset_graph().asset_check_keys  # still defined, run from the UI
    for name in (BUILD_JOB, GENERATE_JOB):
        checks = defs().resolve_job_def(name).asset_layer.asset_graph.asset_check_keys
        assert not PLAN_CHECK_KEYS & checks and OWN_CHECKS <= checks, name


def test_a_placeholder_suggestion_names_the_movie_but_keeps_setting_names_whole() -> None:
    from movie_assets.builder.timeline import placeholder_error

    entry = placeholder_error(NodeKey("segment_image", 0, 0), "m", {"fallback": True, "fallback_category": "configuration"})
    assert entry is not None and "MOVIEGEN_PROVIDERS" in entry["suggestion"] and entry["category"] == "configuration"
    retry = placeholder_error(NodeKey("segment_image", 0, 0), "m", {"fallback": True, "fallback_category": "outage"})
    assert retry is not None and "`moviegen generate m`" in retry["suggestion"]
