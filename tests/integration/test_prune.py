"""Pruning and deleting: ``moviegen prune`` removes what no kept revision (nor the movie as it is now, nor
the next generate) uses, says how many bytes, and every kept revision still plays; ``delete`` asks first.

The movie: 3 rendered revisions (generate; edit a narration, generate; edit the voice, generate), made once
and restored before each test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from pathlib import Path

import dagster as dg
import pytest

from movie_assets.builder.render import media
from movie_assets.domain.blueprint import NodeKey
from movie_assets.domain.errors import MovieBusy
from movie_assets.interfaces import api, cli
from movie_assets.movie_files.layout import movie_folder
from movie_assets.movie_files.revisions import Revision, list_revisions
from movie_assets.orchestration.event_log import load_state
from movie_assets.orchestration.locks import generation_lock
from resources.storage import ArtifactStore
from tests.conftest import BIN, REPO, HomeSnapshot, local_file, small_request
from tests.servers.processes import clean_env


@pytest.fixture(scope="module")
def revised(tmp_path_factory: pytest.TempPathFactory) -> HomeSnapshot:
    def build(instance: dg.DagsterInstance, store: ArtifactStore) -> str:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MOVIEGEN_RENDER", "on")
            movie = api.new_movie(instance, store, small_request(duration_seconds=10, images_per_segment=1), "pruned")
            for edit in (None, ("segments.0.narration", "A new line about the war."), ("voice_id", "onyx")):
                if edit is not None:
                    api.edit(instance, store, movie, [edit])
                made = api.generate(instance, store, movie)
                assert made.success and made.movie_video, made.failed
        assert [r.revision for r in list_revisions(store, movie)] == [1, 2, 3]
        return movie

    return HomeSnapshot(tmp_path_factory.mktemp("prune") / "dagster_home", build)


@pytest.fixture
def home(revised: HomeSnapshot, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test starts from the movie's 3 revisions, restored."""
    return revised.restore(monkeypatch)


@pytest.fixture
def movie(revised: HomeSnapshot, home: Path) -> str:
    return revised.built


def uses(store: ArtifactStore, r: Revision) -> set[str]:
    """The files a revision uses: its manifest, timeline and movie (paths under the root)."""
    return {store.ref(e["uri"]) for e in r.manifest.values()} | {store.ref(x) for x in (r.timeline, r.movie_video) if x}


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def freed(text: str) -> int:
    found = re.search(r"([\d,]+) bytes \(", text)
    assert found, text
    return int(found.group(1).replace(",", ""))


def test_prune_keeps_every_kept_revision_playable_and_frees_exactly_what_it_says(
        movie: str, instance: dg.DagsterInstance, store: ArtifactStore, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVIEGEN_RENDER", "on")  # as the movie was made
    first, second, third = list_revisions(store, movie)
    only_first = uses(store, first) - uses(store, second) - uses(store, third)
    # What only revision 1 used: its timeline, movie, and what the two edits replaced.
    assert {p.split("/")[2] for p in only_first} >= {"timeline", "movie_video", "segment_audio", "segment_narration"}
    before = store.sizes(movie_folder(movie))

    code, dry, _ = run_cli(capsys, "prune", movie, "--keep-revisions", "2", "--dry-run")
    assert code == 0 and "revision(s) 1 would be pruned" in dry and "nothing was removed" in dry, dry
    assert store.sizes(movie_folder(movie)) == before  # a dry run removes nothing

    code, out, _ = run_cli(capsys, "prune", movie, "--keep-revisions", "2")
    assert code == 0 and "revision(s) 1 are pruned" in out, out
    after = store.sizes(movie_folder(movie))
    removed = set(before) - set(after)
    assert freed(out) == freed(dry) == sum(before[p] for p in removed) > 0  # the figure is the bytes removed
    assert set(after) - set(before) == {f"{movie_folder(movie)}/prunes/000001.json"}  # and the prune's record
    assert only_first <= removed  # revision 1's own artifacts are gone...
    assert not removed & (uses(store, second) | uses(store, third))  # ...nothing a kept revision uses
    for entry in (p for p in after if "/cache/" in p):  # no build-cache entry names a removed file
        assert store.exists(store.ref(json.loads(store.read(entry))["uri"])), entry

    # Every kept revision plays: its movie is there and reads as the whole movie, and a render of it is the same file.
    for r in (second, third):
        assert media.probe(local_file(r.movie_video))["frames"] == 300
        code, out, err = run_cli(capsys, "render", movie, "--revision", str(r.revision))
        assert code == 0 and "already rendered" in out and out.strip().endswith(str(local_file(r.movie_video))), out + err
    assert run_cli(capsys, "verify", movie)[0] == 0
    # The plan tells the truth: the movie as it is now lost nothing, so nothing is to build, and generate agrees.
    assert api.plan(instance, store, movie).items == []
    again = api.generate(instance, store, movie)
    assert again.success and again.provider_calls == {} and again.built == [] and again.revision == 3
    assert api.status(instance, store, movie).damaged == {}

    code, history, _ = run_cli(capsys, "history", movie)
    assert re.search(r"^\s+1 .* pruned ", history, re.M) and re.search(r"^\s+3 .* rendered ", history, re.M), history
    code, status, _ = run_cli(capsys, "status", movie)
    assert code == 0 and "revisions: 3 (1 pruned: 1)" in status and "DAMAGED" not in status, status
    code, _, err = run_cli(capsys, "render", movie, "--revision", "1")
    assert code == cli.EXIT_INVALID and "revision 1 of movie 'pruned' was pruned" in err, err
    code, _, err = run_cli(capsys, "timeline", movie, "--revision", "1")
    assert code == cli.EXIT_INVALID and "was pruned" in err, err
    # Pruning again finds nothing more; keeping every revision keeps what they use.
    assert api.prune(instance, store, movie, 2).files_removed == 0
    assert api.prune(instance, store, movie).kept_revisions == [2, 3]


def test_a_picked_take_waiting_for_the_next_generate_survives_a_prune_of_every_revision(
        movie: str, instance: dg.DagsterInstance, store: ArtifactStore) -> None:
    take0 = load_state(instance, movie, [NodeKey("music")]).records[NodeKey("music")].uri
    api.reroll(instance, store, movie, "music")
    assert api.generate(instance, store, movie).provider_calls == {"MusicProducer": 1}
    picked = api.pick(instance, store, movie, "music", 0)  # back to take 0, made before: no call
    assert picked.plan.provider_calls == {}
    # Take 0 is in no kept revision (none is kept) and not what the movie uses now: only the next generate needs it.
    pruned = api.prune(instance, store, movie, keep_revisions=0)
    assert pruned.pruned_revisions == [1, 2, 3, 4] and pruned.files_removed > 0
    assert store.exists(take0) and store.ref(take0) not in pruned.removed
    planned = api.plan(instance, store, movie)
    assert planned.to_json()["items"] == picked.plan.to_json()["items"]  # the plan is what it was before the prune
    assert planned.provider_calls == {} and "music" in {i.node for i in planned.items}
    made = api.generate(instance, store, movie)
    assert made.success and made.provider_calls == {} and "music" in made.built


def test_prune_and_delete_are_refused_while_the_movie_is_generated(movie: str, instance: dg.DagsterInstance,
                                                                    store: ArtifactStore) -> None:
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with generation_lock(instance, movie):
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    before = store.sizes(movie_folder(movie))
    try:
        assert held.wait(10)
        # delete and prune cannot wait: the message names what they can do (run again), not generate's --wait
        with pytest.raises(MovieBusy, match="is being generated by .*; wait for it to finish, then run it again$"):
            api.prune(instance, store, movie, 1)
        with pytest.raises(MovieBusy, match="is being generated by .*; wait for it to finish, then run it again$"):
            api.delete(instance, store, movie)
    finally:
        release.set()
        t.join()
    assert store.sizes(movie_folder(movie)) == before
    with pytest.raises(ValueError, match="keep revisions: got -1"):
        api.prune(instance, store, movie, -1)


def test_delete_asks_on_a_terminal_and_refuses_without_yes_elsewhere(
        movie: str, revised: HomeSnapshot, instance: dg.DagsterInstance, store: ArtifactStore,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "delete", movie)  # pytest's stdin is no terminal
    assert code == cli.EXIT_INVALID and f"moviegen delete {movie} --yes" in err, err
    # On a real terminal it asks; "n" deletes nothing.
    leader, follower = os.openpty()
    try:
        asked = subprocess.Popen([str(BIN / "moviegen"), "delete", movie], cwd=REPO, stdin=follower, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env={**clean_env(), "DAGSTER_HOME": str(revised.path)})
        os.write(leader, b"n\n")
        out, err = asked.communicate(timeout=120)
    finally:
        os.close(leader)
        os.close(follower)
    assert asked.returncode == cli.EXIT_FAILED and f"delete movie '{movie}': its 3 revision(s)" in out, out + err
    assert "not deleted" in out and movie in api.list_movies(instance)
    code, out, _ = run_cli(capsys, "delete", movie, "--yes")
    assert code == 0 and "deleted" in out and movie not in api.list_movies(instance)
    assert store.sizes(movie_folder(movie)) == {}

