"""Hostile input: whatever a request file, an edits file or the Python API is given, the answer is a
request or a RequestError naming the problem, within a bounded time and memory.

Property-style, without extra libraries: each test draws its cases from a seeded ``random.Random`` (the
seed is in the failure message, so a failure reproduces), and every case must parse or be refused with
RequestError -- never another exception, never more than CASE_S CPU seconds, and all of a test's cases
within PEAK_MB of Python memory (tracemalloc). The bounds are generous (a loaded 2-core machine);
before the bounds existed, one 452-byte alias bomb took 38 s and 2.7 GB before running out of memory.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from movie_assets.domain.edits import edited_request, edits_from_data, load_edits_file, parse_assignment
from movie_assets.domain.request import (
    MAX_DOCUMENT_BYTES,
    MAX_PROBLEMS,
    MovieRequest,
    RequestError,
    load_request,
    parse_document,
    parse_request,
)

REPO = Path(__file__).resolve().parents[2]
SEED = 20240613
CASE_S = 5.0  # CPU seconds for one case (typically milliseconds; a 1 MB document about 1 s); CPU time, not
# wall time, so other processes on a loaded machine do not make a bounded case look unbounded
PEAK_MB = 50.0
MARK = "Zq"  # huge values are made of it; no error message may echo a long run of it
VALID = (REPO / "examples/civil-war.yaml").read_text()
FIELDS = [*MovieRequest.model_fields, "segments", "narration", "image_prompts", "use_video", "0", "1"]
YAML_CHARS = "{}[]:,-&*!|>'\"%@`#?<=~ \t\n\n\n  0123456789abcxyz.eE+_" + "é∑😀\u0085\ufeff\x00"


class Bounded:
    """Runs cases, checking each one's result, time and the whole run's memory peak."""

    def __init__(self, seed: int):
        self.seed = seed
        self.results = {"parsed": 0, "refused": 0}
        self.slowest = (0.0, "")

    def __enter__(self) -> Bounded:
        tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if exc[0] is None:
            assert peak / 1e6 < PEAK_MB, f"seed {self.seed}: Python memory peaked at {peak / 1e6:.1f} MB"

    def check(self, label: str, fn: Callable[..., Any], *args: Any) -> None:
        start = time.process_time()
        try:
            fn(*args)
            self.results["parsed"] += 1
        except RequestError as e:
            self.results["refused"] += 1
            assert e.problems and len(e.problems) <= MAX_PROBLEMS + 1, (label, len(e.problems))
            for problem in e.problems:
                assert isinstance(problem, str) and len(problem) <= 1000, (label, problem[:300])
                assert MARK * 50 not in problem, f"{label}: the message echoes a large value: {problem[:200]}"
        except Exception as e:  # noqa: BLE001 - the property: nothing but RequestError
            raise AssertionError(f"seed {self.seed}, case {label!r}: {type(e).__name__}: {str(e)[:300]}") from e
        elapsed = time.process_time() - start
        assert elapsed < CASE_S, f"seed {self.seed}, case {label!r} took {elapsed:.1f} s"
        self.slowest = max(self.slowest, (elapsed, label))


# --- documents ---------------------------------------------------------------------------------------

def alias_bomb(rng: random.Random) -> str:
    """Nested anchors and aliases ("billion laughs"): as a list, a mapping or through ``<<`` merge keys."""
    width, levels, style = rng.randint(2, 9), rng.randint(6, 14), rng.choice(["seq", "map", "merge"])
    lines = ['a0: &a0 {k: "lol", j: "lol"}' if style == "merge" else 'a0: &a0 ["lol", "lol", "lol"]']
    for i in range(1, levels):
        if style == "seq":
            lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
        elif style == "map":
            lines.append(f"a{i}: &a{i} {{" + ", ".join(f"k{j}: *a{i - 1}" for j in range(width)) + "}")
        else:
            lines.append(f"a{i}: &a{i} {{<<: [" + ", ".join([f"*a{i - 1}"] * width) + f"], x{i}: 1}}")
    lines.append(f"inquiry_prompt: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def deep_yaml(rng: random.Random) -> str:
    n = rng.choice([11, 50, 500, 5_000])
    style = rng.choice(["flow", "block-seq", "block-map", "mixed"])
    if style == "flow":
        return "inquiry_prompt: " + "[" * n + "]" * n + "\n"
    if style == "block-seq":
        return "".join("  " * i + "-\n" for i in range(min(n, 3_000))) + "  " * min(n, 3_000) + "- x\n"
    if style == "block-map":
        return "".join("  " * i + f"k{i}:\n" for i in range(min(n, 3_000))) + "  " * min(n, 3_000) + "v: 1\n"
    return "a: " + "{b: [" * n + "1" + "]}" * n + "\n"


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(YAML_CHARS) for _ in range(rng.randint(0, 400)))


def mutated(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 12)):
        i = rng.randrange(len(chars) + 1)
        op = rng.choice(["insert", "delete", "replace", "duplicate"])
        if op == "insert":
            chars[i:i] = rng.choice(YAML_CHARS)
        elif op == "delete" and chars:
            del chars[i:i + rng.randint(1, 5)]
        elif op == "replace" and i < len(chars):
            chars[i] = rng.choice(YAML_CHARS)
        else:
            chars[i:i] = chars[max(0, i - 20):i]
    return "".join(chars)


def odd_names(rng: random.Random) -> str:
    keys = ["~", "null", "1", "-7", "3.5", "true", "[a]", "2001-01-01", "!!binary aGk=", "0x_", '"\\u0000"', "'  '",
            MARK * rng.randint(1, 5_000), "é" * 70, "segments.1.narration", "? x", "<<"]
    lines = [f"{rng.choice(keys)}: {rng.choice(keys)}" for _ in range(rng.randint(1, 8))]
    if rng.random() < 0.5:
        lines.append("inquiry_prompt: Tell me about rivers")
    return "\n".join(lines) + "\n"


def huge_value(rng: random.Random, as_json: bool) -> str:
    size = rng.choice([2_001, 20_000]) if not as_json else rng.choice([2_001, 300_000, MAX_DOCUMENT_BYTES - 100])
    field = rng.choice(["inquiry_prompt", "voice_id", "music_prompt", "emotion", "colour" * 20])
    value = (MARK * size)[:size]
    if as_json:
        return json.dumps({"inquiry_prompt": "Tell me about rivers", field: value})
    return f"inquiry_prompt: Tell me about rivers\n{field}: {value}\n"


def deep_json(rng: random.Random) -> str:
    n = rng.choice([11, 900, 2_000, 200_000])
    return rng.choice(["[" * n + "]" * n, '{"a":' * n + "1" + "}" * n, '{"inquiry_prompt": ' + "[" * n + "]" * n + "}"])


def many_values(rng: random.Random) -> str:
    n = rng.choice([1_000, 12_000])
    return json.dumps({"inquiry_prompt": "Tell me about rivers", "segments": {str(i): {} for i in range(n)}})


def documents(rng: random.Random) -> Iterator[tuple[str, str, bytes]]:
    """(label, suffix, content) of hostile or odd documents, a few valid ones among them, in random order.
    Cases that make the parser work up to a bound (about 0.4 s each) are fewer: they all cost the same."""
    makers: list[tuple[int, str, str, Callable[[], str | bytes]]] = [
        (12, "random bytes", ".yaml", lambda: rng.randbytes(rng.randint(0, 3_000))),
        (8, "random bytes", ".json", lambda: rng.randbytes(rng.randint(0, 3_000))),
        (2, "utf-16", ".yaml", lambda: VALID.encode("utf-16")),
        (2, "bom", ".json", lambda: b"\xef\xbb\xbf" + b'{"inquiry_prompt": "Why is the sky blue?"}'),
        (20, "random text", ".yaml", lambda: random_text(rng)),
        (10, "random text", ".json", lambda: random_text(rng)),
        (40, "mutated request", ".yaml", lambda: mutated(rng, VALID)),
        (15, "alias bomb", ".yaml", lambda: alias_bomb(rng)),
        (6, "deep yaml", ".yaml", lambda: deep_yaml(rng)),
        (15, "odd names", ".yaml", lambda: odd_names(rng)),
        (3, "huge value", ".yaml", lambda: huge_value(rng, False)),
        (4, "huge value", ".json", lambda: huge_value(rng, True)),
        (6, "deep json", ".json", lambda: deep_json(rng)),
        (3, "many values", ".json", lambda: many_values(rng)),
        (4, "big number", ".yaml", lambda: '{"inquiry_prompt": "rivers", "duration_seconds": '
                                           + "1" * rng.choice([20, 5_000, 100_000]) + "}"),
        (2, "too large", rng.choice([".yaml", ".json"]), lambda: "inquiry_prompt: " + "x" * MAX_DOCUMENT_BYTES),
    ]
    # The costliest documents (YAML up to a bound) are in test_worst_cases_in_a_fresh_process.
    cases = [(label, suffix, make) for count, label, suffix, make in makers for _ in range(count)]
    rng.shuffle(cases)
    for i, (label, suffix, make) in enumerate(cases):
        content = make()
        yield f"{i}: {label}", suffix, content if isinstance(content, bytes) else content.encode("utf-8")


def test_request_and_edits_files_parse_or_are_refused(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    with Bounded(SEED) as run:
        for i, (label, suffix, content) in enumerate(documents(rng)):
            path = tmp_path / f"case{i}{suffix}"
            path.write_bytes(content)
            run.check(label, load_request, path)
            if i % 3 == 0:
                run.check(f"{label} (edits)", load_edits_file, path)
            if i % 5 == 0:
                run.check(f"{label} (text)", parse_document, content.decode("utf-8", "replace"), path.name)
        run.check("a folder", load_request, tmp_path)
        run.check("missing", load_request, tmp_path / "missing.yaml")
    assert run.results["parsed"] >= 3 and run.results["refused"] >= 150, run.results
    print(f"\n{run.results}; slowest case: {run.slowest[0]:.2f} s ({run.slowest[1]})")


WORST_CASES = r"""
import json, resource, sys, time
from movie_assets.domain.request import MAX_DOCUMENT_BYTES, RequestError, load_request
folder = sys.argv[1]
lol = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
lol += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
merge = ['a0: &a0 {k: lol, j: lol}'] + [f"a{i}: &a{i} {{<<: [" + ", ".join([f"*a{i - 1}"] * 9) + "]}" for i in range(1, 12)]
near = MAX_DOCUMENT_BYTES - 100
cases = {
    "billion laughs (452 bytes)": "\n".join(lol) + "\ninquiry_prompt: *a8\n",
    "nested merge keys": "\n".join(merge) + "\ninquiry_prompt: *a11\n",
    "1 MB of one YAML value": "inquiry_prompt: " + "x" * (near - 20),
    "1 MB of YAML values": "segments: [" + "0, " * (near // 3 - 10) + "0]",
    "1 MB of [": "[" * near,
    "1 MB of block nesting": "".join("  " * i + "- \n" for i in range(900)),
    "1 MB of JSON [": "[" * near,
}
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
seconds = {}
for label, text in cases.items():
    path = f"{folder}/{len(seconds)}" + (".json" if "JSON" in label else ".yaml")
    open(path, "w").write(text)
    start = time.process_time()
    try:
        load_request(path)
        outcome = "parsed"
    except RequestError as e:
        outcome = e.problems[0]
    seconds[label] = (round(time.process_time() - start, 2), outcome[:160])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "baseline_mb": baseline, "peak_mb": peak}))
"""


def test_worst_cases_in_a_fresh_process(tmp_path: Path) -> None:
    """The costliest documents -- bombs, and YAML and JSON that make the parser work up to a bound -- in a
    fresh process, whose peak resident memory (Python's and the validators' alike) is measured."""
    proc = subprocess.run([sys.executable, "-c", WORST_CASES, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for label, (seconds, outcome) in result["seconds"].items():
        assert seconds < CASE_S, (label, seconds)
        assert "refused" in outcome or "too large" in outcome or "got" in outcome, (label, outcome)
    assert result["peak_mb"] - result["baseline_mb"] < 100, result
    print(f"\n{json.dumps(result, indent=1)}")


# --- Python data ---------------------------------------------------------------------------------------

def shared_bomb(levels: int = 9) -> list:
    value: list = ["lol"] * 9
    for _ in range(levels):
        value = [value] * 9
    return value


def deeply_nested(n: int) -> Any:
    value: Any = "x"
    for i in range(n):
        value = {"a": value} if i % 2 else [value]
    return value


def random_value(rng: random.Random, depth: int = 0) -> Any:
    scalars: list[Callable[[], Any]] = [
        lambda: None, lambda: rng.random() < 0.5, lambda: rng.randint(-10, 400), lambda: 10 ** rng.choice([20, 5_000]),
        lambda: rng.choice([float("nan"), float("inf"), -0.0, 20.0, 1e308]), lambda: str(rng.randint(0, 400)),
        lambda: rng.choice(["true", "480p", "16:9", "cut", "", " ", "\x00", "é" * 3]),
        lambda: (MARK * rng.choice([1, 1_000, 500_000]))[:rng.choice([3, 2_001, 1_000_000])],
        lambda: rng.randbytes(rng.randint(0, 20)), lambda: object(), lambda: shared_bomb(rng.randint(3, 9)),
        lambda: deeply_nested(rng.choice([50, 3_000])),
    ]
    if depth > 3 or rng.random() < 0.6:
        return rng.choice(scalars)()
    kind = rng.choice(["dict", "list", "tuple", "set", "cycle"])
    if kind == "cycle":
        cyclic: list = []
        cyclic.append(cyclic)
        return cyclic
    items = [random_value(rng, depth + 1) for _ in range(rng.randint(0, 6))]
    if kind == "dict":
        return {random_key(rng): item for item in items}
    if kind == "set":
        return {i for i in items if isinstance(i, str | int | float | bytes)}
    return items if kind == "list" else tuple(items)


def random_key(rng: random.Random) -> Any:
    return rng.choice([rng.choice(FIELDS), rng.choice(FIELDS), 1, None, 2.5, True, (1, 2), frozenset({"a"}), "",
                       MARK * 10_000, str(rng.randint(0, 40)), 10 ** 5_000])


def random_request(rng: random.Random) -> Any:
    if rng.random() < 0.15:
        return random_value(rng)
    data = {"inquiry_prompt": "Tell me about rivers"} if rng.random() < 0.7 else {}
    for _ in range(rng.randint(0, 6)):
        data[random_key(rng)] = random_value(rng)
    if rng.random() < 0.3:
        data["segments"] = {random_key(rng): {rng.choice(FIELDS): random_value(rng)} for _ in range(rng.randint(1, 4))}
    return data


def test_parse_request_with_any_python_data() -> None:
    rng = random.Random(SEED + 1)
    with Bounded(SEED + 1) as run:
        for i in range(150):
            run.check(f"{i}: data", parse_request, random_request(rng))
        run.check("many segments", parse_request, {"inquiry_prompt": "Rivers", "segments": {str(i): {} for i in range(20_000)}})
        run.check("many unknown fields", parse_request, {f"f{i}": i for i in range(20_000)})
    assert run.results["parsed"] >= 5 and run.results["refused"] >= 100, run.results


def test_edits_from_the_command_line_files_and_the_api() -> None:
    rng = random.Random(SEED + 2)
    current = parse_request({"inquiry_prompt": "Tell me about rivers", "duration_seconds": 30})
    paths = ["voice_id", "duration_seconds", "use_video", "segments.1.narration", "segments.2.image_prompts.0",
             "segments.99999999999999999999.narration", "segments.٣.narration", "segments.1", "", ".", MARK * 5_000]

    def apply(edits: list[tuple[str, Any]]) -> None:
        edited_request(current, edits)

    with Bounded(SEED + 2) as run:
        for i in range(100):
            text = rng.choice([random_text(rng), alias_bomb(rng), deep_yaml(rng)[:300], MARK * 3_000])
            assignment = f"{rng.choice(paths)}={text}" if rng.random() < 0.8 else text
            run.check(f"{i}: --set", lambda a: apply([parse_assignment(a)]), assignment)
            run.check(f"{i}: edits data", lambda d: apply(edits_from_data(d)), random_request(rng))
    assert run.results["parsed"] >= 3 and run.results["refused"] >= 100, run.results


# --- what the bounds must still allow, and the CLI's typed edits ---------------------------------------

@pytest.mark.parametrize(("assignment", "value"), [
    ("duration_seconds=20", 20), ("use_video=true", True), ("budget_usd=5", 5), ("budget_usd=0.5", 0.5),
    ("voice_id=nova", "nova"), ("segments.1.narration=Yes: a colon", "Yes: a colon"),
])
def test_command_line_edits_are_typed_as_yaml(assignment: str, value: object) -> None:
    path, parsed = parse_assignment(assignment)
    assert parsed == value and type(parsed) is type(value)
    current = parse_request({"inquiry_prompt": "Tell me about rivers", "duration_seconds": 30, "use_video": False})
    edited_request(current, [(path, parsed)])  # accepted by the strict model


def test_a_few_anchors_for_repeated_text_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("inquiry_prompt: Tell me about rivers\nduration_seconds: 30\nsegments:\n"
                    "  0: {image_prompts: {0: &p a wide river at dawn, 1: *p}}\n  1: {image_prompts: {0: *p}}\n")
    assert load_request(path).overrides(1).image_prompts == {0: "a wide river at dawn"}


def test_the_largest_request_there_can_be_is_within_the_bounds(tmp_path: Path) -> None:
    """30 segments, every prompt at its longest: well under the size, nesting and value limits."""
    long = {"narration": "n" * 1000, "use_video": True, "is_image_to_video": True, "starting_image_prompt": "s" * 2000,
            "movie_direction_prompt": "m" * 2000, "transition": "wipe", "image_prompts": {j: "i" * 2000 for j in range(5)}}
    data = {"inquiry_prompt": "q" * 2000, "duration_seconds": 300, "images_per_segment": 5, "voice_id": "v" * 64,
            "emotion": "e" * 64, "music_prompt": "p" * 2000, "budget_usd": 10, "segments": {i: long for i in range(30)}}
    for suffix, text in ((".json", json.dumps(data)), (".yaml", json.dumps(data, indent=1))):
        path = tmp_path / f"big{suffix}"
        path.write_text(text)
        assert len(text) < MAX_DOCUMENT_BYTES
        assert load_request(path).segment_count == 30
