"""The user's own media: files recognised by content and checked before anything is stored or called
(hostile files refused with what they are and what is allowed), fetched once from a URL, stored by their hash,
fitted to their slot; the request fields, the edit language and the graph (no call for a slot with a file)."""

from __future__ import annotations

import hashlib
import io
import os
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from PIL import Image

from movie_assets.domain.blueprint import NodeKey, call_group, expand
from movie_assets.domain.edits import UNSET, edited_request, load_edits_file, parse_assignment
from movie_assets.domain.inputs import input_values, is_default_read
from movie_assets.domain.request import RequestError, VisualMode, parse_request
from movie_assets.movie_files.layout import own_file_path
from movie_assets.movie_files.own_media import read_own, store_own_files
from resources.runtime.media import mp3_duration_ms, mp4_info, run_ffmpeg, wav_bytes
from resources.runtime.own_media import (
    OwnMediaError,
    audio_to_length,
    clip_to_segment,
    fetch,
    format_of,
    inspect,
    picture_to_frame,
    read_local,
)
from resources.storage import ArtifactStore
from tests.conftest import small_request
from tests.servers.loopback import LoopbackServer


def png(size: tuple[int, int] = (320, 200), colour: tuple[int, int, int] = (200, 40, 40), fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, fmt)
    return out.getvalue()


def clip(seconds: float, size: str = "96x64", fmt: str = "mp4") -> bytes:
    codec = ["-c:v", "libvpx", "-b:v", "100k"] if fmt == "webm" else ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    return run_ffmpeg(["-f", "lavfi", "-i", f"testsrc=size={size}:rate=5", "-t", str(seconds), *codec], {}, f"out.{fmt}")


def wav(seconds: float = 1.0) -> bytes:
    import numpy as np

    t = np.arange(int(8000 * seconds)) / 8000
    return wav_bytes(0.2 * np.sin(2 * np.pi * 440 * t), 8000)


# --- recognised by content, checked -----------------------------------------------------------------------

def test_pictures_clips_and_sounds_are_recognised_by_their_content() -> None:
    assert inspect(png(), "picture").format == "PNG"
    assert inspect(png(fmt="JPEG"), "picture").format == "JPEG"
    facts = inspect(png((640, 480), fmt="WEBP"), "picture")
    assert (facts.format, facts.width, facts.height) == ("WebP", 640, 480)
    facts = inspect(clip(2), "clip", 60)
    assert (facts.format, facts.width, facts.height) == ("MP4", 96, 64) and 1900 <= (facts.duration_ms or 0) <= 2100
    facts = inspect(wav(1.5), "audio", 60)
    assert facts.format == "WAV" and 1400 <= (facts.duration_ms or 0) <= 1600
    mp3 = run_ffmpeg(["-i", "in.wav", "-codec:a", "libmp3lame"], {"in.wav": wav(1)}, "out.mp3")
    assert inspect(mp3, "audio", 60).format == "MP3"
    flac = run_ffmpeg(["-i", "in.wav"], {"in.wav": wav(1)}, "out.flac")
    assert inspect(flac, "audio", 60).format == "FLAC"
    m4a = run_ffmpeg(["-i", "in.wav", "-c:a", "aac"], {"in.wav": wav(1)}, "out.m4a")
    assert format_of(m4a) == "M4A" and inspect(m4a, "audio", 60).format == "M4A"


@pytest.mark.parametrize(("name", "data", "kind", "why"), [
    ("binary junk", bytes(range(256)) * 40, "picture", "it is 10240 bytes of binary data, not a picture; allowed: pictures (PNG, JPEG, WebP)"),
    ("a text file named .png", b"hello, I am a text file\n", "picture",
     "it is text 'hello, I am a text file', not a picture; allowed: pictures (PNG, JPEG, WebP)"),
    ("a web page", b"<html><body>Not found</body></html>", "clip",
     "it is text '<html><body>Not found</body></html>', not a clip; allowed: clips (MP4, WebM, MOV)"),
    ("a GIF", b"GIF89a" + bytes(40), "picture", "it is GIF data, not a picture; allowed: pictures (PNG, JPEG, WebP)"),
    ("empty", b"", "audio", "it is empty (0 bytes)"),
    ("a picture for a clip", png(), "clip", "it is a PNG file, not a clip; allowed: clips (MP4, WebM, MOV)"),
    ("a clip for a picture", None, "picture", "it is an MP4 file, not a picture; allowed: pictures (PNG, JPEG, WebP)"),
    ("a tiny picture", png((20, 20)), "picture", "it is 20x20 pixels; allowed: 64 to 12000 pixels on each side"),
])
def test_hostile_files_are_refused_with_what_they_are_and_what_is_allowed(name: str, data: bytes | None, kind: str, why: str) -> None:
    with pytest.raises(OwnMediaError) as refused:
        inspect(clip(1) if data is None else data, kind, 60)
    assert str(refused.value) == why


def test_a_truncated_png_and_a_truncated_clip_are_refused() -> None:
    whole = png((400, 300))
    with pytest.raises(OwnMediaError, match=r"^it is a PNG file that cannot be used: truncated.*allowed: pictures"):
        inspect(whole[: len(whole) // 2], "picture")
    mp4 = clip(2)
    with pytest.raises(OwnMediaError, match=r"^it is an MP4 file that cannot be used: truncated or corrupt"):
        inspect(mp4[: len(mp4) // 2], "clip", 60)


def test_a_too_long_clip_and_a_soundless_file_are_refused() -> None:
    with pytest.raises(OwnMediaError) as refused:
        inspect(clip(61, "64x64"), "clip", 60)
    assert str(refused.value) == "it lasts 61.0 s; allowed: at most 60 s for this slot"
    with pytest.raises(OwnMediaError, match="without an audio stream; allowed: a sound file"):
        inspect(clip(1), "audio", 60)


def test_local_files_missing_folders_empty_and_huge_are_refused_without_reading_them(tmp_path: Path) -> None:
    with pytest.raises(OwnMediaError, match=r"does not exist$"):
        read_local(tmp_path / "nothing.png")
    with pytest.raises(OwnMediaError, match=r"is a folder; allowed: a file$"):
        read_local(tmp_path)
    (tmp_path / "zero.png").write_bytes(b"")
    with pytest.raises(OwnMediaError, match=r"is empty \(0 bytes\)$"):
        read_local(tmp_path / "zero.png")
    huge = tmp_path / "huge.mp4"
    with open(huge, "wb") as f:  # sparse: 250 MB that take no room and are never read
        f.truncate(250_000_000)
    with pytest.raises(OwnMediaError, match=r"is too large \(250.0 MB\); allowed: up to 200.0 MB$"):
        read_local(huge)
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.png"
        locked.write_bytes(png())
        locked.chmod(0)
        with pytest.raises(OwnMediaError, match=r"cannot be read \(Permission denied\)"):
            read_local(locked)


# --- fitted to the slot ------------------------------------------------------------------------------------

def test_files_are_fitted_to_their_slot() -> None:
    fitted = Image.open(io.BytesIO(picture_to_frame(png((300, 300)), 854, 480)))
    assert fitted.size == (854, 480) and fitted.format == "PNG"
    w, h, ms = mp4_info(clip_to_segment(clip(3, "128x128"), 854, 480, 10))  # held on its last frame to 10 s
    assert (w, h) == (854, 480) and 9900 <= ms <= 10100
    music, ms = audio_to_length(wav(3), 30, pad=True)  # padded with silence to the movie's length
    assert 29_900 <= ms <= 30_100 and mp3_duration_ms(music) == ms
    narration, ms = audio_to_length(wav(3), 10, pad=False)  # as long as it is (cut at the segment)
    assert 2900 <= ms <= 3200


# --- stored once, by hash; URLs fetched once ---------------------------------------------------------------

class _Files(LoopbackServer):
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.hits = files, 0
        super().__init__()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                server.hits += 1
                body = server.files.get(self.path.split("?")[0])
                if body is not None and body.startswith(b"->"):  # a redirect
                    self.send_response(302)
                    self.send_header("Location", body[2:].decode())
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def test_a_request_stores_each_file_once_by_its_hash(tmp_path: Path) -> None:
    store = ArtifactStore(root=str(tmp_path / "store"))
    picture = png()
    (tmp_path / "pic.png").write_bytes(picture)
    with _Files({"/music.wav": wav(2)}) as server:
        url = f"{server.root_url}/music.wav?token=secret123"
        request = small_request(music_file=url, segments={"1": {"image_files": {"0": "pic.png"}}})
        done = store_own_files(store, "m", request, base=tmp_path)
        assert server.hits == 1
        again = store_own_files(store, "m", done)  # stored files are not read or fetched again
        assert again == done and server.hits == 1
    own = done.overrides(1).image_files[0]
    assert own.sha256 == hashlib.sha256(picture).hexdigest() and (own.format, own.width, own.height) == ("PNG", 320, 200)
    assert read_own(store, "m", own) == picture and store.exists(own_file_path("m", own.sha256, "png"))
    music = done.music_file
    assert music is not None and music.format == "WAV" and music.source == f"{server.root_url}/music.wav"  # no token kept
    assert input_values(done, "image_file", 1, 0) == {"sha256": own.sha256}
    assert is_default_read("image_file", input_values(done, "image_file", 1, 1))  # no file: left out of input versions


def test_bad_files_urls_and_the_services_local_paths_are_refused_naming_the_field(tmp_path: Path) -> None:
    store = ArtifactStore(root=str(tmp_path / "store"))
    (tmp_path / "pic.png").write_bytes(png())
    with _Files({}) as server:
        request = small_request(music_file=f"{server.root_url}/gone.mp3", segments={
            "0": {"image_files": {"1": "missing.png"}}, "1": {"image_files": {"0": "pic.png"}}})
        with pytest.raises(RequestError) as refused:
            store_own_files(store, "m", request, base=tmp_path)
    assert refused.value.problems == [
        f"music_file: '{server.root_url}/gone.mp3': '{server.root_url}/gone.mp3' answered HTTP 404; allowed: a URL that serves the file (200)",
        f"segments.0.image_files.1: 'missing.png': '{tmp_path / 'missing.png'}' does not exist",
    ]
    with pytest.raises(RequestError) as refused:
        store_own_files(store, "m", small_request(segments={"1": {"image_files": {"0": str(tmp_path / "pic.png")}}}), local_files=False)
    assert "a local path is refused here: the service does not read its own disk; allowed: an http(s) URL" in refused.value.problems[0]
    forged = small_request(segments={"1": {"image_files": {"0": {"source": "x.png", "sha256": "ab" * 32, "format": "PNG", "bytes": 9}}}})
    with pytest.raises(RequestError, match="names a stored file .* this movie does not have"):
        store_own_files(store, "m", forged)


def test_fetch_is_bounded_in_size_and_a_service_fetches_from_public_addresses_only() -> None:
    with _Files({"/big.bin": b"x" * 5000}) as server:
        with pytest.raises(OwnMediaError, match=r"is too large \(0.0 MB\); allowed: up to 0.0 MB"):
            fetch(f"{server.root_url}/big.bin", limit=1000)
        server.files |= {"/moved": b"->/big.bin", "/away": b"->file:///etc/passwd", "/loop": b"->/loop"}
        assert fetch(f"{server.root_url}/moved") == b"x" * 5000
        with pytest.raises(OwnMediaError, match=r"redirects to a file URL; allowed: http\(s\) only"):
            fetch(f"{server.root_url}/away")
        with pytest.raises(OwnMediaError, match=r"redirects more than 5 times"):
            fetch(f"{server.root_url}/loop")
        with pytest.raises(OwnMediaError, match=r"its host 127.0.0.1 is at 127.0.0.1, not a public address"):
            fetch(f"{server.root_url}/big.bin", public_only=True)
    with pytest.raises(OwnMediaError, match=r"its host 169.254.169.254 is at 169.254.169.254, not a public address"):
        fetch("http://169.254.169.254/latest/meta-data/", public_only=True)


# --- the request, the edit language, the graph -------------------------------------------------------------

def test_request_fields_and_edit_paths() -> None:
    request = small_request(segments={"2": {"use_video": True}})
    edited = edited_request(request, [parse_assignment("segments.1.image_files.0=/tmp/pic.png"),
                                      parse_assignment("music_file=https://example.com/a.mp3"),
                                      parse_assignment("segments.2.clip_file=clip.mp4"),
                                      parse_assignment("segments.0.audio_file=voice.wav")])
    assert edited.overrides(1).image_files[0].source == "/tmp/pic.png" and edited.music_file is not None
    assert [p for p, _, _ in edited.own_files()] == ["music_file", "segments.0.audio_file", "segments.1.image_files.0",
                                                      "segments.2.clip_file"]
    for bad, why in [
        ("music_file=ftp://example.com/a.mp3", "music_file: got \"ftp://example.com/a.mp3\"; a URL with the scheme 'ftp'"),
        ("segments.0.clip_file=c.mp4", "segments.0.clip_file: given, but segment 0 does not use video"),
        ("segments.2.image_files.0=p.png", "segments.2.image_files: given, but segment 2 uses video"),
        ("segments.1.image_files.5=p.png", "segments.1.image_files.5: image index 5 is out of range; allowed: 0 to 1"),
        ("segments.1.starting_image_file=p.png", "segments.1.starting_image_file: given, but segment 1 is not image-to-video"),
    ]:
        with pytest.raises(RequestError) as refused:
            edited_request(request, [parse_assignment(bad)])
        assert any(why in p for p in refused.value.problems), (bad, refused.value.problems)
    with pytest.raises(RequestError, match="not an editable path"):
        edited_request(request, [parse_assignment("segments.1.image_files.0.sha256=" + "a" * 64)])
    # Removing the file: the document is as it was before.
    assert "1" not in edited_request(edited, [("segments.1.image_files.0", UNSET)]).to_document().get("segments", {})


def test_an_edits_file_reads_relative_files_beside_it(tmp_path: Path) -> None:
    (tmp_path / "edits.yaml").write_text("segments.1.image_files.0: pics/one.png\nmusic_file: https://example.com/m.mp3\n"
                                         "segments.1.narration: pics/one.png\n")
    edits = dict(load_edits_file(tmp_path / "edits.yaml"))
    assert edits["segments.1.image_files.0"] == str(tmp_path / "pics" / "one.png")
    assert edits["music_file"] == "https://example.com/m.mp3" and edits["segments.1.narration"] == "pics/one.png"


def test_a_slot_with_your_file_makes_no_call_and_reads_nothing_it_would_be_made_from() -> None:
    stored = {"source": "p.png", "sha256": "ab" * 32, "format": "PNG", "bytes": 10, "width": 100, "height": 100}
    request = parse_request({**small_request().to_document(), "segments": {
        "1": {"image_files": {"0": stored}}, "2": {"use_video": True, "video_mode": "image", "clip_file": stored | {"format": "MP4"}}},
        "music_file": stored | {"format": "WAV"}})
    blueprint = expand(request)
    assert call_group(request, NodeKey("segment_image", 1, 0)) is None and call_group(request, NodeKey("music")) is None
    assert call_group(request, NodeKey("segment_image", 1, 1)) is not None
    assert blueprint.nodes[NodeKey("segment_image", 1, 0)].deps == ()
    assert blueprint.nodes[NodeKey("segment_image", 1, 1)].deps == (NodeKey("image_prompt", 1, 1),)
    # A clip of yours on an image-to-video segment: no starting image is made for it.
    assert request.mode(2) is VisualMode.video_by_text and NodeKey("starting_image", 2) not in blueprint.nodes
    assert blueprint.nodes[NodeKey("text_to_video_clip", 2)].deps == ()
    assert blueprint.calls(blueprint.nodes)["TextToImageProducer"] == 2 * 2 - 1
    with pytest.raises(RequestError, match=r"segments.1.image_files.0: a WAV file; allowed: pictures"):
        parse_request({**request.to_document(), "segments": {"1": {"image_files": {"0": stored | {"format": "WAV"}}}}})


def test_each_slots_recipe_makes_its_artifact_from_your_file_without_a_client(tmp_path: Path) -> None:
    """The recipes of a picture, a starting image, a clip, narration audio and the music, given files of the
    user's: each fitted to its slot, marked as yours, with no provider client at hand and reading none of its
    deps (the context is bound to what the blueprint declares)."""
    import asyncio
    import dataclasses

    from movie_assets.builder.recipes import RECIPES
    from tests.unit.fakes import MOVIE, hand_context

    store = ArtifactStore(root=str(tmp_path / "store"))
    for name, data in (("p.png", png((500, 500))), ("c.webm", clip(2, fmt="webm")), ("v.wav", wav(12)), ("m.wav", wav(3))):
        (tmp_path / name).write_bytes(data)
    request = store_own_files(store, MOVIE, small_request(music_file="m.wav", segments={
        "0": {"image_files": {"1": "p.png"}, "audio_file": "v.wav"},
        "1": {"use_video": True, "video_mode": "image", "starting_image_file": "p.png"},
        "2": {"use_video": True, "clip_file": "c.webm"}}), base=tmp_path)
    blueprint = expand(request)

    async def own_bytes(own: object) -> bytes:
        return read_own(store, MOVIE, own)  # type: ignore[arg-type]

    context = dataclasses.replace(hand_context(request), own_bytes=own_bytes)
    made = {}
    for key in (NodeKey("segment_image", 0, 1), NodeKey("starting_image", 1), NodeKey("text_to_video_clip", 2),
                NodeKey("segment_audio", 0), NodeKey("music")):
        assert blueprint.nodes[key].deps == ()
        made[key] = asyncio.run(RECIPES[key.asset](context.bound(key, frozenset()), key))
        assert made[key].call is None and made[key].meta["source"] == "your file"
    assert (made[NodeKey("segment_image", 0, 1)].width, made[NodeKey("segment_image", 0, 1)].height) == (854, 480)
    assert made[NodeKey("starting_image", 1)].meta["file"] == "p.png"
    assert mp4_info(made[NodeKey("text_to_video_clip", 2)].data)[:2] == (854, 480)  # the WebM, as the segment's MP4
    assert 9_900 <= (made[NodeKey("segment_audio", 0)].duration_ms or 0) <= 10_100  # 12 s of narration cut at 10 s
    assert 29_900 <= (made[NodeKey("music")].duration_ms or 0) <= 30_100  # 3 s of music padded to the movie's 30 s
