"""Artifact storage on both backends with the same assertions: local disk, and a real S3-compatible
server (SeaweedFS) on loopback that checks signatures and link expiry."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from resources.storage import ArtifactStore, StorageError
from tests.conftest import moviegen
from tests.servers.s3_server import ACCESS_KEY, BUCKET, SECRET_KEY, SeaweedS3


def s3_store(s3: SeaweedS3, **kw: object) -> ArtifactStore:
    return ArtifactStore(root=f"s3://{BUCKET}/t-{uuid.uuid4().hex[:8]}", endpoint_url=s3.endpoint,
                         aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return ArtifactStore(root=str(tmp_path))
    return s3_store(request.getfixturevalue("s3"))


def fetch(link: str) -> bytes:
    """What a render host gets from a timeline link."""
    if link.startswith("file://"):
        return Path(urlparse(link).path).read_bytes()
    response = httpx.get(link)
    response.raise_for_status()
    return response.content


def test_write_read_list_and_layout(store: ArtifactStore) -> None:
    rel = store.artifact_relpath("m", "segment_image", "03_2", "ab" * 32, "png")
    assert rel == "movies/m/segment_image/03_2/abababababababab.png"
    uri = store.write(rel, b"png-bytes")
    assert uri == store.uri(rel) and uri.endswith("/" + rel) and uri.split("://")[0] in ("file", "s3")
    assert store.read(uri) == store.read(rel) == b"png-bytes"
    assert store.exists(rel) and not store.exists(rel + ".nope")
    store.write("movies/m/segment_image/03_2/sub/x.png", b"deeper")
    assert store.list("movies/m/segment_image/03_2") == ["abababababababab.png"]  # files of that folder only
    assert store.list("movies/none") == []


def test_versioned_artifacts_are_written_once_and_other_files_replaced(store: ArtifactStore) -> None:
    store.write("a/x.png", b"1234", immutable=True)
    store.write("a/x.png", b"5678", immutable=True)  # the path names its content: the first write stands
    assert store.read("a/x.png") == b"1234"
    store.write("a/request.json", b'{"a": 1}')
    store.write("a/request.json", b'{"a": 2}')  # same size, new content: replaced
    assert store.read("a/request.json") == b'{"a": 2}'


def test_missing_artifact_is_a_clear_error(store: ArtifactStore) -> None:
    with pytest.raises(FileNotFoundError, match="artifact not found: movies/m/timeline/_/nope.json"):
        store.read("movies/m/timeline/_/nope.json")
    missing = store.uri("movies/m/timeline/_/gone.json")
    with pytest.raises(FileNotFoundError, match=f"artifact not found: {missing}"):
        store.read(missing)


def test_a_link_fetches_the_exact_bytes(store: ArtifactStore) -> None:
    data = os.urandom(300_000)
    uri = store.write("movies/m/segment_audio/00/0123456789abcdef.mp3", data, immutable=True)
    assert fetch(store.link(uri)) == data


@pytest.fixture(params=["local", "s3"])
def moved(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[ArtifactStore, ArtifactStore]:
    """The same store before and after its files were copied elsewhere: another folder, another S3 prefix."""
    if request.param == "local":
        return ArtifactStore(root=str(tmp_path / "home")), ArtifactStore(root=str(tmp_path / "restored" / "home"))
    s3 = request.getfixturevalue("s3")
    return s3_store(s3), s3_store(s3)


REL = "movies/m/segment_image/03_2/abababababababab.png"


def test_references_are_paths_under_the_root(store: ArtifactStore) -> None:
    uri = store.write(REL, b"png")
    assert store.ref(uri) == store.ref(REL) == store.rel_of(uri) == REL
    assert store.uri(REL) == store.uri(uri) == uri
    assert store.read(REL) == b"png" and store.exists(REL) and store.size(REL) == 3
    assert fetch(store.link(REL)) == b"png"


def test_an_absolute_uri_from_before_a_move_is_re_rooted(moved: tuple[ArtifactStore, ArtifactStore]) -> None:
    """Records, timelines and caches made before stored absolute URIs: once the files are copied elsewhere
    they name the copy, also while the original is still there, and after it is gone."""
    before, after = moved
    old = before.write(REL, b"png")
    after.write(REL, before.read(REL))  # cp -a, or objects copied to another prefix

    def names_the_copy() -> None:
        assert after.ref(old) == REL and after.uri(old) == after.uri(REL) != old
        assert after.read(old) == b"png" and after.exists(old) and after.size(old) == 3
        assert fetch(after.link(old)) == b"png" and after.link(old) == after.link(REL)
        assert after.local_path(old) == after.local_path(REL)  # the copy's file on disk (None on S3)

    names_the_copy()  # the original still there
    before.delete(REL)
    names_the_copy()  # the original gone
    after.delete(REL)
    with pytest.raises(FileNotFoundError, match=f"artifact not found: {after.uri(REL)}"):  # where it was looked for
        after.read(old)
    assert not after.exists(old) and after.rel_of(old) == REL  # missing here: verify reports it, a plan rebuilds it


def test_an_absolute_uri_only_its_old_root_has_is_kept(moved: tuple[ArtifactStore, ArtifactStore]) -> None:
    """Storage pointed at another folder or prefix with the old one kept: old records still read the old one."""
    before, after = moved
    old = before.write(REL, b"png")
    assert after.ref(old) == old and after.read(old) == b"png" and after.rel_of(old) is None
    other = before.write("movies/m/request.json", b"{}")  # not an artifact's path: never re-rooted
    assert after.ref(other) == other


def test_expired_and_tampered_links_are_refused(s3: SeaweedS3) -> None:
    store = s3_store(s3, link_seconds=600)  # valid throughout, however loaded the machine
    uri = store.write("movies/m/music/_/v.mp3", b"music")
    link = store.link(uri)
    assert "X-Amz-Signature=" in link and fetch(link) == b"music"
    store.write("movies/m/music/_/w.mp3", b"other")  # exists: a refusal is the signature's doing
    tampered = link.replace("/v.mp3?", "/w.mp3?")  # a valid signature for another key
    assert httpx.get(tampered).status_code == 403
    forged = link[:-4] + ("0000" if not link.endswith("0000") else "1111")
    assert httpx.get(forged).status_code == 403
    assert httpx.get(link.split("?")[0]).status_code == 403  # the bucket is private
    short = ArtifactStore(**{**store.__dict__, "link_seconds": 1}).link(uri)  # same object, a 1 s link
    time.sleep(2.2)  # only ever longer under load: the link is past its lifetime either way
    response = httpx.get(short)
    assert response.status_code == 403 and "expired" in response.text


def test_public_bucket_links(s3: SeaweedS3) -> None:
    store = s3_store(s3, public_url="https://cdn.example.com/media")
    uri = store.write("movies/m/music/_/v.mp3", b"music")
    key = urlparse(uri).path.lstrip("/")
    assert store.link(uri) == f"https://cdn.example.com/media/{key}"


def test_an_interrupted_upload_leaves_no_object(s3: SeaweedS3) -> None:
    """A PUT cut off mid-body (a killed process) makes nothing visible at the key."""
    store = s3_store(s3)
    rel = "movies/m/segment_image/00_0/0123456789abcdef.png"
    key = urlparse(store.uri(rel)).path.lstrip("/")
    put = s3.client().generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=60)
    url = urlparse(put)
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: 100000\r\n\r\n".encode()
                     + b"x" * 40_000)
    time.sleep(0.5)
    assert not store.exists(rel)
    with pytest.raises(FileNotFoundError):
        store.read(rel)


def test_crash_mid_write_leaves_nothing_at_the_final_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ArtifactStore(root=str(tmp_path))

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.write("movies/m/music/_/v.mp3", b"x" * 1000)
    folder = tmp_path / "movies/m/music/_"
    assert not (folder / "v.mp3").exists() and list(folder.iterdir()) == []


def test_misconfiguration_is_a_clear_error(s3: SeaweedS3, tmp_path: Path) -> None:
    wrong_key = ArtifactStore(root=f"s3://{BUCKET}/x", endpoint_url=s3.endpoint, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key="wrong")
    with pytest.raises(StorageError, match="S3 refused .* check AWS_ACCESS_KEY_ID"):
        wrong_key.write("a.txt", b"1")
    no_bucket = ArtifactStore(root="s3://no-such-bucket/x", endpoint_url=s3.endpoint, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=SECRET_KEY)
    with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist"):
        no_bucket.read("a.txt")
    with pytest.raises(StorageError, match="expected a folder, file://... or s3://BUCKET"):
        ArtifactStore(root="gs://bucket").read("a.txt")


def test_default_root_follows_dagster_home_or_moviegen_storage(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ArtifactStore().write("x.txt", b"1") == (home / "artifacts" / "x.txt").as_uri()
    monkeypatch.setenv("MOVIEGEN_STORAGE", str(home / "elsewhere"))
    assert ArtifactStore().write("x.txt", b"1") == (home / "elsewhere" / "x.txt").as_uri()


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_a_movie_on_each_backend(backend: str, home: Path, request: pytest.FixtureRequest,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The same generation on disk and on S3: every artifact lands in the chosen store, the stored
    timeline names each by its path under the root, and its links fetch exactly the bytes stored."""
    env: dict[str, str] = {}
    if backend == "s3":
        s3: SeaweedS3 = request.getfixturevalue("s3")
        env = s3.env(f"movie-{uuid.uuid4().hex[:8]}")
    assert moviegen(home, env, "new", "examples/civil-war.yaml", "--id", "cw").returncode == 0
    proc = moviegen(home, env, "generate", "cw", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["failed"] == [] and out["timeline"].startswith("s3://" if backend == "s3" else "file://")
    stored = json.loads(moviegen(home, env, "timeline", "cw", "--revision", "1", "--print").stdout)
    stored_srcs = [c["src"] for t in stored["tracks"] for c in t["clips"] if "src" in c]
    assert len(stored_srcs) == 3 * 2 + 3 + 1  # 6 images, 3 narrations, the music
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    store = ArtifactStore()  # configured from the same environment as the CLI
    raw = json.loads(store.read(out["timeline"]))
    for clip in (c for t in raw["tracks"] for c in t["clips"] if "src" in c):
        linked = next(c for t in stored["tracks"] for c in t["clips"] if c["id"] == clip["id"])
        assert clip["src"].startswith("movies/cw/")  # stored: its path under the root, on either backend
        assert fetch(linked["src"]) == store.read(clip["src"])  # the link serves the stored bytes
    local = home / "artifacts" / "movies" / "cw"
    assert local.exists() == (backend == "local")  # nothing of an S3 movie on local disk

    # Damage: an image deleted and the timeline cut short, behind moviegen's back.
    image = next(c["src"] for t in raw["tracks"] for c in t["clips"] if "/segment_image/" in c.get("src", ""))
    timeline = store.read(out["timeline"])
    store.delete(store.rel_of(image))
    store.write(store.rel_of(out["timeline"]), timeline[: len(timeline) // 2])
    check = moviegen(home, env, "verify", "cw", "--quick", "--json")
    assert check.returncode == 1, check.stderr[-2000:]
    damaged = json.loads(check.stdout)["damaged"]
    assert set(damaged) == {"timeline", next(n for n in damaged if n.startswith("segment_image["))}
    assert "missing" in damaged[next(n for n in damaged if n != "timeline")] and "bytes" in damaged["timeline"]
    proc = moviegen(home, env, "generate", "cw", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    healed = json.loads(proc.stdout)
    assert healed["provider_calls"] == {"TextToImageProducer": 1}  # the image again; the timeline costs nothing
    assert store.read(image) and json.loads(store.read(out["timeline"])) == raw
    assert moviegen(home, env, "verify", "cw").returncode == 0

    # Every object copied under another root (an S3 prefix, a folder) and the old ones removed: the movie
    # is read from the new root, as a bucket restored under another prefix must be.
    root = env.get("MOVIEGEN_STORAGE") or str(home / "artifacts")
    moved = {**env, "MOVIEGEN_STORAGE": f"{root}-moved"}
    target = ArtifactStore(root=moved["MOVIEGEN_STORAGE"])
    for rel in store.sizes("movies/cw"):
        target.write(rel, store.read(rel))
        store.delete(rel)
    assert moviegen(home, moved, "verify", "cw").returncode == 0
    assert "up to date" in moviegen(home, moved, "plan", "cw").stdout
    edl = moviegen(home, moved, "export", "cw", "--format", "edl", "--no-links").stdout
    assert edl.count(f"{root}-moved/movies/cw/segment_image/") == 6 and f"{root}/" not in edl
