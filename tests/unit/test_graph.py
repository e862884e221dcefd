"""The build graph as data: Kahn layers, cycles refused, critical-path priority; the engine's slots
and strategies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from movie_assets.builder.checks import EVALUATIONS
from movie_assets.builder.code_versions import code_versions
from movie_assets.builder.context import Produced, RecipeContext
from movie_assets.builder.engine import BuildEngine
from movie_assets.builder.recipes import RECIPES
from movie_assets.domain.blueprint import (
    ARTIFACTS,
    ArtifactDecl,
    Blueprint,
    GraphError,
    Level,
    Node,
    NodeKey,
    ProviderKind,
    expand,
)
from movie_assets.domain.plan import reasons
from movie_assets.domain.records import MovieState
from movie_assets.domain.request import Strategy
from movie_assets.orchestration.specs import artifact_specs
from resources.runtime.monitor import adaptive_slots
from resources.runtime.slots import PRIORITY, Slots
from resources.settings import Settings
from tests.unit.fakes import MOVIE, Fakes, blueprint_of, new_store, run_engine, small_request


def test_a_cycle_is_refused_naming_the_nodes_on_it() -> None:
    a, b, c = NodeKey("segment_narration", 0), NodeKey("segment_audio", 0), NodeKey("script")
    nodes = {c: Node(c, ()), a: Node(a, (c, b)), b: Node(b, (a,))}
    with pytest.raises(GraphError, match=r"cycle: segment_audio\[00\] -> segment_narration\[00\] -> segment_audio\[00\]"):
        Blueprint(small_request(), nodes)


def test_a_dependency_on_a_node_the_blueprint_lacks_is_refused() -> None:
    a = NodeKey("segment_audio", 0)
    with pytest.raises(GraphError, match=r"segment_audio\[00\] needs segment_narration\[00\]"):
        Blueprint(small_request(), {a: Node(a, (NodeKey("segment_narration", 0),))})


def test_layers_put_every_node_after_its_dependencies() -> None:
    bp = expand(small_request(duration_seconds=30, segments={"2": {"use_video": True}}), render=True)
    assert bp.layers[0] == [NodeKey("research")] and bp.layers[1] == [NodeKey("script")]
    assert sum(len(x) for x in bp.layers) == len(bp.nodes) == len(set(bp.order))
    for key, node in bp.nodes.items():
        assert all(bp.layer[d] < bp.layer[key] for d in node.deps), key
    assert bp.layer[NodeKey("movie_video")] == len(bp.layers) - 1


def test_priority_is_the_longest_remaining_critical_path() -> None:
    bp = expand(small_request(duration_seconds=30, segments={"2": {"use_video": True}}))
    p = bp.priority
    assert max(p, key=p.get) == NodeKey("research")  # the research comes first, then the script
    # look 10 + prompt 5 + clip 90, before the pictures' 30 s and the narration's 10 s
    assert p[NodeKey("text_to_video_prompt", 2)] > p[NodeKey("image_prompt", 0, 0)] > p[NodeKey("segment_audio", 0)]
    assert round(p[NodeKey("research")]) == round(bp.critical_path_s())
    assert round(p[NodeKey("script")]) == round(bp.critical_path_s()) - 20


def test_slots_go_to_the_highest_priority_waiter_and_can_be_resized() -> None:
    async def scenario() -> list[str]:
        slots = Slots(1)
        order: list[str] = []

        async def job(name: str, priority: float) -> None:
            PRIORITY.set(priority)
            async with slots:
                order.append(name)
                await asyncio.sleep(0)

        await slots.acquire()  # held: the jobs queue up
        tasks = [asyncio.ensure_future(job(n, p)) for n, p in [("low", 1), ("high", 9), ("mid", 5), ("high2", 9)]]
        await asyncio.sleep(0)
        cancelled = asyncio.ensure_future(job("cancelled", 99))
        await asyncio.sleep(0)
        cancelled.cancel()
        slots.release()
        await asyncio.gather(*tasks)
        slots.resize(3)
        assert slots.capacity == 3 and slots.in_use == 0 and slots.usage()["capacity_max"] == 3
        return order

    assert asyncio.run(scenario()) == ["high", "high2", "mid", "low"]


def test_the_engine_gives_a_free_provider_slot_to_the_longer_path(tmp_path: Path) -> None:
    """One LLM slot, held by the music prompt until the three segments' prompts wait for it: the video
    segment's prompt (a 90 s clip ahead of it) goes first, then the picture segments' (30 s pictures
    ahead, equal priority: in the order they came). First come, first served would serve the video
    segment last."""
    request = small_request(duration_seconds=30, consistent_look=False, segments={"2": {"use_video": True}})
    fakes = Fakes(in_flight={ProviderKind.llm: 1})
    engine = BuildEngine(movie=MOVIE, blueprint=blueprint_of(request), state=MovieState(MOVIE), store=new_store(tmp_path),
                         clients=fakes, emit=lambda item: None, strategy=Strategy.parallel)
    enter = fakes.enter

    async def held_until_three_wait(producer: str, detail: str) -> object:
        if detail.startswith("music_prompt"):
            deadline = asyncio.get_running_loop().time() + 10  # only reached if the waiters never come
            while engine.slots[ProviderKind.llm].waiting < 3 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
        return await enter(producer, detail)

    fakes.enter = held_until_three_wait  # type: ignore[method-assign]
    summary = asyncio.run(engine.run({k: "missing" for k in engine.blueprint.nodes}))
    assert not summary.failed
    llm = [detail for _, detail in fakes.log if detail.split(":")[0] in ("music_prompt", "image_prompts", "text_to_video_prompt")]
    assert llm[:2] == ["music_prompt:", "text_to_video_prompt:2"] and sorted(llm[2:]) == ["image_prompts:0", "image_prompts:1"], llm
    assert summary.strategy == "parallel" and summary.slots["llm"]["peak_in_use"] == 1


def test_sequential_builds_one_node_at_a_time_and_records_its_strategy(tmp_path: Path) -> None:
    bp = blueprint_of(small_request())
    # parallel: the four pictures are in flight together (each call waits, within a bound, for a second one)
    parallel = Fakes(gates={ProviderKind.images: 2})
    engine = BuildEngine(movie=MOVIE, blueprint=bp, state=MovieState(MOVIE), store=new_store(tmp_path / "p"),
                         clients=parallel, emit=lambda item: None, strategy=Strategy.parallel)
    asyncio.run(engine.run({k: "missing" for k in bp.nodes}))
    assert parallel.concurrency[ProviderKind.images].max >= 2
    fakes = Fakes()
    engine = BuildEngine(movie=MOVIE, blueprint=bp, state=MovieState(MOVIE), store=new_store(tmp_path), clients=fakes,
                         emit=lambda item: None, strategy=Strategy.sequential)
    summary = asyncio.run(engine.run({k: "missing" for k in bp.nodes}))
    assert not summary.failed and sum(fakes.calls.values()) == 13
    assert max(c.max for c in fakes.concurrency.values()) == 1
    report = summary.to_report(MOVIE, "run-1")
    assert report.strategy == "sequential" and report.slots["local"]["capacity_max"] == 1
    assert report.critical_path_s == bp.critical_path_s()


def test_adaptive_slots_follow_other_work_and_memory() -> None:
    assert adaptive_slots(2, 0.0, 16_000) == 2  # idle
    assert adaptive_slots(2, 1.9, 16_000) == 1  # others use both cores
    assert adaptive_slots(8, 3.2, 16_000) == 5
    assert adaptive_slots(8, 0.0, 1_000) == 1  # short of memory
    assert adaptive_slots(8, 0.0, 2_000) == 5  # 400 MB a job


def test_every_declared_check_has_an_evaluation() -> None:
    declared = {d.check.name for d in ARTIFACTS.values() if d.check is not None}
    assert declared and declared <= set(EVALUATIONS), declared - set(EVALUATIONS)


def test_every_producer_reads_only_its_declared_deps(tmp_path: Path) -> None:
    """Every producer, on a blueprint with every subgraph (pictures, text-to-video, image-to-video, the
    look, an off-look segment): a read outside a node's declared deps would fail that node."""
    request = small_request(duration_seconds=40, segments={"1": {"use_video": True}, "2": {"use_video": True, "is_image_to_video": True},
                                                          "3": {"look": False}})
    bp = blueprint_of(request)
    assert {k.asset for k in bp.nodes} == {a.name for a in ARTIFACTS.values() if a.subgraph != "Render"}
    run = run_engine(new_store(tmp_path), Fakes(), bp)
    assert not run.failed and len(run.built) == len(bp.nodes)


def test_a_read_outside_the_declared_deps_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def reads_the_script_too(ctx: RecipeContext, key: NodeKey) -> Produced:
        await ctx.need(NodeKey("script"))  # segment_audio's row declares segment_narration only
        return await original(ctx, key)

    original = RECIPES["segment_audio"]
    monkeypatch.setitem(RECIPES, "segment_audio", reads_the_script_too)
    run = run_engine(new_store(tmp_path), Fakes())
    assert set(run.failed) == {NodeKey(asset, s) for asset in ("segment_audio", "narration_timing") for s in (0, 1)}
    assert "upstream segment_audio[00] failed" in run.failed[NodeKey("narration_timing", 0)].message
    assert "segment_audio[00] read script, which is not among its declared deps (segment_narration[00])" in \
        run.failed[NodeKey("segment_audio", 0)].message


def test_a_new_artifact_is_one_row_and_one_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A toy artifact, added as the docs show (docs/architecture.md): one row and one recipe.
    The blueprint, its layers, the engine, the plan and the Dagster spec all follow."""
    row = ArtifactDecl("segment_fact", Level.segment, "AudioNarrationGeneration", None, ("segment_narration", "script"),
                       ("narration_override",), "json", "A fact about each segment: its words, under the title")

    async def produce(ctx: RecipeContext, key: NodeKey) -> Produced:
        text = (await ctx.need(NodeKey("segment_narration", key.segment)))["text"]
        title = (await ctx.need(NodeKey("script")))["title"]
        return Produced.json({"fact": f"{title}: {len(text.split())} words"})

    monkeypatch.setitem(ARTIFACTS, row.name, row)
    monkeypatch.setitem(RECIPES, row.name, produce)

    request = small_request()
    bp = blueprint_of(request)
    fact = NodeKey("segment_fact", 1)
    assert set(bp.nodes[fact].deps) == {NodeKey("segment_narration", 1), NodeKey("script")}
    assert bp.layer[fact] == bp.layer[NodeKey("segment_narration", 1)] + 1
    store = new_store(tmp_path)
    first = run_engine(store, Fakes(), bp)
    assert not first.failed and first.value(fact)["fact"].endswith("words")

    edited = blueprint_of(small_request(segments={"1": {"narration": "A short new narration."}}))
    planned = {k: why for k, (why, _) in reasons(edited, first.state, code_versions(Settings())).items()}
    assert planned[fact] == "stale" and NodeKey("segment_fact", 0) not in planned
    second = run_engine(store, Fakes(), edited, state=first.state, targets=planned)
    assert second.value(fact)["fact"].endswith(": 4 words")

    spec = artifact_specs.__wrapped__(Settings())[row.name]
    assert {d.asset_key.to_user_string() for d in spec.deps} == {"segment_narration", "script", "narration_override"}
    assert spec.group_name == "AudioNarrationGeneration" and spec.code_version == "1"
