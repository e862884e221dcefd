"""Shared fixtures: a real Dagster instance in a temporary DAGSTER_HOME, and small requests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from tests.servers.processes import TEST_SETTINGS, clean_env

os.environ.update(TEST_SETTINGS)  # before the project's modules read them (render engine: at import)

from movie_assets.domain.request import MovieRequest, parse_request  # noqa: E402
from resources.storage import ArtifactStore  # noqa: E402
from tests.servers.s3_server import SeaweedS3  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# The sample request (examples/civil-war.yaml, 30 s: 3 segments x 2 images) cut to its first segment: 10 s,
# for tests where the length proves nothing (its segment overrides, for segment 2, go with the rest).
_DEMO = (REPO / "examples" / "civil-war.yaml").read_text()
DEMO_10S = (_DEMO[:_DEMO.index("\nsegments:\n") + 1].replace("\nduration_seconds: 30\n", "\nduration_seconds: 10\n")
            .replace("a 30 s image-only explainer (3 segments x 2 images)", "a 10 s image-only explainer (1 segment x 2 images)"))

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def real_part(missing: str | None) -> pytest.MarkDecorator:
    """The mark of a test that needs a real part (a PostgreSQL server, Chromium): skipped where ``missing``
    says it is not installed, but under CI=true a missing real part fails the test instead, so CI can
    never pass by skipping the production parts."""
    if missing is None:
        return pytest.mark.real_part()
    if os.environ.get("CI") == "true":
        return pytest.mark.real_part(missing=missing)
    return pytest.mark.skip(reason=missing)


# ffprobe, a reader of the rendered files apart from the product's own probe: Debian's where installed, else the
# one Remotion's compositor package ships in renderer/node_modules (the renderer's locked npm packages).
FFPROBE = shutil.which("ffprobe") or next(
    (str(p) for p in sorted((REPO / "renderer" / "node_modules" / "@remotion").glob("compositor-*/ffprobe")) if p.is_file()), None)
NO_FFPROBE = None if FFPROBE else "no ffprobe: Debian's ffmpeg, or the renderer's npm packages (make setup)"


def ffprobe(path: Path) -> dict[str, Any]:
    """The first video stream as ffprobe reads it: width, height, r_frame_rate, bit_rate, nb_frames..."""
    assert FFPROBE is not None
    out = subprocess.run([FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return json.loads(out)["streams"][0]


LAYERS = ("e2e", "integration", "unit")  # slowest per file first


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Test files in the order `make test` hands them to its workers (``-n 2 --dist loadfile
    --no-loadscope-reorder``): the layer with the slowest files first, within a layer the files with
    the most tests first, the many short unit files last, so both workers run out of work together
    (docs/performance.md). A file's own tests keep their order."""
    count = Counter(item.nodeid.split("::")[0] for item in items)

    def key(item: pytest.Item) -> tuple[int, int, str]:
        path = item.nodeid.split("::")[0]
        layer = next((i for i, name in enumerate(LAYERS) if f"tests/{name}/" in path), len(LAYERS))
        return layer, -count[path], path

    items.sort(key=key)  # stable


def pytest_runtest_setup(item: pytest.Item) -> None:
    mark = item.get_closest_marker("real_part")
    if mark is not None and mark.kwargs.get("missing"):
        pytest.fail(f"CI=true and a real part this test needs is missing: {mark.kwargs['missing']} (.ci/run installs it)",
                    pytrace=False)


def new_home(path: Path) -> Path:
    """A DAGSTER_HOME with the project's dagster.yaml."""
    path.mkdir(parents=True)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", path / "dagster.yaml")
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DAGSTER_HOME with the project's dagster.yaml."""
    home = new_home(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


class HomeSnapshot:
    """A DAGSTER_HOME (instance and artifacts) made once and restored, at the same path, before each test
    that uses it: tests that change a generated movie each start from the same movie without paying for
    its generation again. (Stored references are paths under the artifact root, so a copy would work at
    any path: tests/e2e/test_home_copy.py; the same path keeps the UI metadata's ``uri`` right too.)"""

    def __init__(self, path: Path, build: Callable[[dg.DagsterInstance, ArtifactStore], Any]):
        self.path = new_home(path)
        self.saved = path.with_name(path.name + ".saved")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DAGSTER_HOME", str(path))
            instance = dg.DagsterInstance.get()
            try:
                self.built = build(instance, ArtifactStore())  # what the tests need to know of it
            finally:
                instance.dispose()
        shutil.copytree(path, self.saved, symlinks=True)

    def restore(self, monkeypatch: pytest.MonkeyPatch) -> Path:
        shutil.rmtree(self.path)
        shutil.copytree(self.saved, self.path, symlinks=True)
        monkeypatch.setenv("DAGSTER_HOME", str(self.path))
        return self.path


def local_file(ref: str) -> Path:
    """The file of an artifact on the local store of $DAGSTER_HOME, by its reference (its path under the
    store's root, as records, timelines and revisions hold it) or its URI."""
    path = ArtifactStore().local_path(ref)
    assert path is not None, ref
    return path


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A real S3-compatible server (SeaweedFS) on loopback, shared by the session's tests."""
    with SeaweedS3(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


def moviegen(home: Path, env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, on ``home``, with only ``env``'s moviegen/provider/storage settings."""
    return subprocess.run([str(BIN / "moviegen"), *args], cwd=REPO, env={**clean_env(), "DAGSTER_HOME": str(home), **env},
                          capture_output=True, text=True, timeout=timeout)


# The Python API's generate in its own process (argv[1] = the movie), printing its JSON result.
GENERATE = """
import json, sys
import dagster as dg
from movie_assets.interfaces import api
from resources.storage import ArtifactStore
result = api.generate(api.open_instance(), ArtifactStore(), sys.argv[1])
print(json.dumps(result.to_json()))
"""


def generate_at_once(jobs: list[tuple[str, dict[str, str]]]) -> list[dict]:
    """Generate each (movie, full environment) in its own process, all at the same time; every one must
    succeed. Returns their results."""
    procs = [subprocess.Popen([str(BIN / "python"), "-c", GENERATE, movie], cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for movie, env in jobs]
    outs = [p.communicate(timeout=300) for p in procs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    failed = {r["movie"]: r["failed"] for r in results if r["failed"]}
    assert not failed, f"what failed: {json.dumps(failed, indent=1)[:6000]}\nstderr: {[err[-2000:] for _, err in outs]}"
    return results


@pytest.fixture
def instance(home: Path) -> Iterator[dg.DagsterInstance]:
    inst = dg.DagsterInstance.get()
    try:
        yield inst
    finally:
        inst.dispose()


@pytest.fixture
def store(home: Path) -> ArtifactStore:
    return ArtifactStore()


def small_request(**overrides: object) -> MovieRequest:
    data: dict[str, object] = {
        "inquiry_prompt": "Tell me about the Civil War",
        "duration_seconds": 30,
        "images_per_segment": 2,
        "size": "480p",
        "aspect_ratio": "16:9",
    }
    data.update(overrides)
    return parse_request(data)
