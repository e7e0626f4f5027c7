"""The keyframe video builder without a terminal: timeline, stills, preview, full render, export."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.flows.keyframes import FLOW, AnimatingNode, KeyframeError, KeyframeFlow, node_for
from imgen_tui.flows.keyframes_config import KeyframeConfig, load_keyframe_config
from imgen_tui.flows.keyframes_export import export_video
from imgen_tui.flows.keyframes_session import KeyframeSession
from imgen_tui.flows.rounds import Cell, Round, RoundHistory
from imgen_tui.graphs import load_library
from imgen_tui.graphs.video_latents import keyframe_loads
from imgen_tui.graphs.video_savers import prompt_schedule_of
from imgen_tui.locations import bundled_dir
from imgen_tui.scheduler.jobs import JobState
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.sim.references import difference
from imgen_tui.store.animation import frames_of, read_animation
from imgen_tui.store.records import ImageRecord
from imgen_tui.yamlfile import ConfigError
from tests.round_helpers import Farm, Follower, demo_farm, until

LIBRARY = load_library([bundled_dir("workflows")])


def flow() -> KeyframeFlow:
    return KeyframeFlow(LIBRARY, DEFAULT_MODELS, scene="a red fox", rng=random.Random(3))


def animating_nodes(scheduler: Scheduler) -> list[AnimatingNode]:
    return [
        AnimatingNode(
            runtime.id,
            runtime.config.tier,
            runtime.capabilities,
            runtime.object_info.classes if runtime.object_info else {},
        )
        for runtime in scheduler.nodes.values()
    ]


def test_keyframes_are_added_moved_reordered_and_removed() -> None:
    builder = flow()
    first = builder.add("asleep in the snow")
    assert first.frame == 0
    builder.add("waking up")  # halfway into the longest stretch
    builder.add("running", frame=15)
    assert [(s.frame, s.description) for s in builder.keyframes] == [
        (0, "asleep in the snow"),
        (8, "waking up"),
        (15, "running"),
    ]
    assert builder.move(1, 20) == 14  # stops short of its neighbour
    builder.reorder(1, -1)  # "waking up" swaps places with the first moment
    assert [(s.frame, s.description) for s in builder.keyframes] == [
        (0, "waking up"),
        (14, "asleep in the snow"),
        (15, "running"),
    ]
    assert builder.selected == 0
    with pytest.raises(KeyframeError, match="frame 15 already has a keyframe"):
        builder.add("again", frame=15)
    with pytest.raises(KeyframeError, match="move or remove it before shortening"):
        builder.set_length(12)
    builder.remove(2)
    builder.set_length(24)
    builder.set_fps(12)
    timeline = builder.timeline()
    assert timeline.length == 24 and timeline.fps == 12.0
    assert [k.description for k in timeline.keyframes] == [
        "a red fox, waking up",
        "a red fox, asleep in the snow",
    ]
    with pytest.raises(KeyframeError, match="a keyframe needs a description"):
        builder.add("   ")


def test_a_saved_timeline_comes_back_as_it_was() -> None:
    builder = flow()
    builder.add("asleep")
    builder.add("running", frame=12)
    again = flow()
    again.restore(json.loads(json.dumps(builder.state())), {})
    assert again.state() == builder.state()
    assert again.add("leaping").key == "k3"  # keys never repeat


def test_a_farm_without_animatediff_is_refused_with_each_nodes_reason() -> None:
    nodes = [AnimatingNode("gpu-draft", "draft", frozenset({"sd15"}), {})]
    with pytest.raises(KeyframeError) as refused:
        node_for("preview", nodes)
    assert str(refused.value) == "no node can animate: gpu-draft: no animatediff, video"


async def test_three_keyframes_refine_one_lock_it_preview_full_render_export(
    tmp_path: Path,
) -> None:
    builder = flow()
    for text in ("asleep in the snow", "waking up", "running through the trees"):
        builder.add(text)
    async with demo_farm(tmp_path / "data") as farm:
        follower = asyncio.create_task(Follower(builder.history).run(farm.scheduler))
        await asyncio.sleep(0)
        runner = farm.runner(FLOW)
        await until(lambda: all(r.confirmed for r in farm.scheduler.nodes.values()))
        specs = builder.refine(1)
        current = builder.history.current
        assert current is not None and current.meta["keyframe"] == builder.keyframes[1].key
        await runner.launch(current, specs, title="a red fox", state=builder.state())
        await until(lambda: current.done == len(current.cells))
        chosen = current.cells[2]
        await runner.judge(chosen, "picked")
        builder.lock(1, chosen)
        assert builder.keyframes[1].locked and builder.keyframes[1].still == chosen.image

        nodes = animating_nodes(farm.scheduler)
        preview_node = node_for("preview", nodes)
        assert preview_node.id == "gpu-standard"  # the lowest tier that animates
        preview, spec = builder.render("preview", preview_node.classes, node=preview_node.id)
        await runner.launch(preview, [spec], title="a red fox", state=builder.state())
        await until(lambda: preview.done == 1, seconds=60)
        video = preview.cells[0].image
        assert video is not None and video.node_id in ("gpu-standard", "gpu-premium")
        animation = read_animation(video.sidecar_path)
        assert animation is not None and animation.frames == 16 and animation.fps == 8.0
        assert (video.width, video.height) == (256, 256)
        sidecar = json.loads(video.sidecar_path.read_text())
        assert [text for _, text in prompt_schedule_of(sidecar["graph"])] == [
            "a red fox, asleep in the snow",
            "a red fox, waking up",
            "a red fox, running through the trees",
        ]

        full_node = node_for("full", nodes)
        assert full_node.id == "gpu-premium"  # the only one with interpolation
        full, spec = builder.render("full", full_node.classes, node=full_node.id)
        assert "interpolation" in spec.needs and spec.min_tier == "premium"
        await runner.launch(full, [spec], title="a red fox", state=builder.state())
        await until(lambda: full.done == 1, seconds=90)
        rendered = full.cells[0].image
        assert rendered is not None and rendered.node_id == "gpu-premium"
        assert builder.latest_video() == rendered
        animation = read_animation(rendered.sidecar_path)
        assert animation is not None and animation.frames == 31 and animation.fps == 16.0

        written = export_video(builder.latest_video(), builder.keyframes, tmp_path / "export")
        follower.cancel()
    names = sorted(path.name for path in written)
    assert names == [
        "keyframe-02-frame-008-waking-up.json",
        "keyframe-02-frame-008-waking-up.png",
        "video.json",
        "video.webp",
    ]
    with Image.open(tmp_path / "export" / "video.webp") as exported:
        assert getattr(exported, "n_frames", 1) == 31


def test_nothing_to_export_says_so(tmp_path: Path) -> None:
    builder = flow()
    builder.add("asleep")
    with pytest.raises(ValueError, match="nothing to export yet"):
        export_video(None, builder.keyframes, tmp_path / "out")


# -- sessions: saved, reopened, rendered from; stills as starting latents ------------------------


def keyframe_session(farm: Farm, config: KeyframeConfig | None = None) -> KeyframeSession:
    """A fresh flow and session on the farm, as the screen makes one (nothing carried over)."""
    builder = KeyframeFlow(
        LIBRARY,
        DEFAULT_MODELS,
        rng=random.Random(3),
        config=config or load_keyframe_config(),
    )
    return KeyframeSession(builder, farm.store, farm.scheduler)


@asynccontextmanager
async def follow(farm: Farm, history: RoundHistory) -> AsyncIterator[Follower]:
    follower = Follower(history)
    task = asyncio.create_task(follower.run(farm.scheduler))
    await asyncio.sleep(0)
    try:
        yield follower
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def confirmed(farm: Farm) -> None:
    await until(lambda: all(r.confirmed for r in farm.scheduler.nodes.values()))


async def made_stills(session: KeyframeSession, index: int) -> Round:
    stills = await session.refine(index)
    await until(lambda: stills.done == len(stills.cells), seconds=60)
    return stills


def timeline_of(builder: KeyframeFlow) -> list[tuple[str, int, str, str | None]]:
    return [
        (s.key, s.frame, s.description, s.still.id if s.still else None) for s in builder.keyframes
    ]


def sent_graph(farm: Farm, job_id: str) -> dict[str, Any]:
    graph = farm.scheduler.jobs[job_id].graph_sent
    assert graph is not None
    return graph


def image_of(cell: Cell) -> ImageRecord:
    assert cell.image is not None
    return cell.image


def picture_of(cell: Cell) -> Image.Image:
    with Image.open(image_of(cell).path) as picture:
        return picture.convert("RGB")


def picture_difference(first: Image.Image, second: Image.Image) -> float:
    size = (64, 64)
    return difference(first.convert("RGB").resize(size), second.convert("RGB").resize(size))


def test_the_bundled_config_takes_both_and_a_bad_choice_names_the_file(tmp_path: Path) -> None:
    bundled = load_keyframe_config()
    assert bundled.keyframe_images == "both" and bundled.latent_denoise == 0.75
    wrong = tmp_path / "keyframes.yaml"
    wrong.write_text("keyframe_images: both\nlatent_denoise: 1.0\n")
    with pytest.raises(ConfigError) as refused:
        load_keyframe_config(wrong)
    assert str(wrong) in str(refused.value) and "latent_denoise" in str(refused.value)


async def test_build_refine_lock_quit_reopen_and_render_from_the_reopened_session(
    tmp_path: Path,
) -> None:
    async with demo_farm(tmp_path / "data") as farm:
        await confirmed(farm)
        first = keyframe_session(farm)
        builder = first.flow
        builder.scene = "a red fox"
        for text in ("asleep in the snow", "waking up", "running through the trees"):
            builder.add(text)
        builder.set_length(24)
        builder.set_fps(12)
        builder.move(2, 6)  # 12 -> 18
        async with follow(farm, builder.history):
            stills = await made_stills(first, 1)
            await first.judge(stills.cells[0], "rejected")
            assert await first.toggle_seed_lock(stills.cells[3])
            subject = await first.lock_still(1, stills.cells[2])
            assert subject is not None and subject.image_id == stills.cells[2].image.id  # type: ignore[union-attr]
            others = await made_stills(first, 0)  # back and forth: the first keyframe's stills
            await first.select(1)  # ... and back to the second's, where the lock is
        session_id = first.session_id
        assert session_id is not None
        saved = builder.state()

        # quit: a new flow and session, from nothing but the store
        second = keyframe_session(farm)
        await second.reopen(session_id)
        again = second.flow
        assert again.scene == "a red fox" and (again.length, again.fps) == (24, 12.0)
        assert timeline_of(again) == timeline_of(builder)
        assert [s.frame for s in again.keyframes] == [0, 8, 18]
        assert again.keyframes[1].still is not None
        assert again.keyframes[1].still.id == stills.cells[2].image.id  # type: ignore[union-attr]
        assert again.selected == 1
        shown = again.history.current
        assert shown is not None and shown.round_id == stills.round_id
        assert shown.recipe.label == "Keyframe 2 (frame 8)"
        assert [c.verdict for c in shown.cells] == ["rejected", "none", "picked", "none"]
        assert [c.locked for c in shown.cells] == [False, False, False, True]
        assert [c.image.id for c in shown.cells] == [c.image.id for c in stills.cells]  # type: ignore[union-attr]
        assert [r.round_id for r in again.history.rounds] == [stills.round_id, others.round_id]
        assert [(p.kind, p.image_id) for p in second.references.pins] == [
            ("subject", stills.cells[2].image.id)  # type: ignore[union-attr]
        ]
        assert again.state() == saved

        # render from the reopened session: the lock is its starting latent and its subject
        async with follow(farm, again.history):
            preview, _ = await second.render("preview")
            await until(lambda: preview.done == 1, seconds=90)
        video = preview.cells[0].image
        assert video is not None and preview.cells[0].state == "done"
        animation = read_animation(video.sidecar_path)
        assert animation is not None and animation.frames == 24 and animation.fps == 12.0
        graph = sent_graph(farm, preview.cells[0].job_id)
        loads = keyframe_loads(graph)
        assert list(loads.values()) == [8]
        (load_id,) = loads
        assert graph[load_id]["inputs"]["image"] != Path(stills.cells[2].image.path).name  # type: ignore[union-attr]
        (sampler,) = [n for n in graph.values() if n["class_type"] == "KSampler"]
        assert sampler["inputs"]["denoise"] == 0.75
        assert any(n["class_type"] == "IPAdapterAdvanced" for n in graph.values())
        assert preview.meta["start"] == "keyframes"

        # and once more: the render is back, the newest video
        third = keyframe_session(farm)
        await third.reopen(session_id)
        assert [r.meta["render"] for r in third.flow.renders()] == ["preview"]
        assert third.flow.latest_video() is not None
        assert third.flow.latest_video().id == video.id  # type: ignore[union-attr]
        assert third.flow.history.current is not None
        assert third.flow.history.current.recipe.label == "Motion preview"


async def test_the_render_follows_the_keyframe_stills_it_starts_from(tmp_path: Path) -> None:
    async with demo_farm(tmp_path / "data") as farm:
        await confirmed(farm)
        session = keyframe_session(farm)
        builder = session.flow
        builder.scene = "a lighthouse"
        for text, frame in (("at dawn", 0), ("at noon", 8), ("at night", 15)):
            builder.add(text, frame=frame)
        async with follow(farm, builder.history):
            dawn = await made_stills(session, 0)
            await session.lock_still(0, dawn.cells[0])
            night = await made_stills(session, 2)
            await session.lock_still(2, night.cells[1])
            await session.references.drop(0)  # only the latents: the subject would blend too
            from_stills, _ = await session.render("preview")
            await until(lambda: from_stills.done == 1, seconds=90)
            builder.config = KeyframeConfig(keyframe_images="reference")
            from_noise, _ = await session.render("preview")
            await until(lambda: from_noise.done == 1, seconds=90)
        assert from_noise.meta["start"] == "noise" and from_stills.meta["start"] == "keyframes"
        dawn_still, night_still = (picture_of(c) for c in (dawn.cells[0], night.cells[1]))
        following = list(frames_of(image_of(from_stills.cells[0]).path))
        unguided = list(frames_of(image_of(from_noise.cells[0]).path))
    assert len(following) == len(unguided) == 16
    # each end of the clip looks like its own still, and more so than a render from noise
    assert picture_difference(following[0], dawn_still) < picture_difference(
        following[0], night_still
    )
    assert picture_difference(following[15], night_still) < picture_difference(
        following[15], dawn_still
    )
    for index, still in ((0, dawn_still), (15, night_still)):
        assert picture_difference(following[index], still) < 0.9 * picture_difference(
            unguided[index], still
        )
    # frames up to the halfway point start from dawn, the rest from night (no keyframe still at 8)
    assert picture_difference(following[7], dawn_still) < picture_difference(
        following[7], night_still
    )
    assert picture_difference(following[8], night_still) < picture_difference(
        following[8], dawn_still
    )


async def test_a_render_cancelled_then_reopened_stays_cancelled(tmp_path: Path) -> None:
    async with demo_farm(tmp_path / "data", speed=0.5) as farm:
        await confirmed(farm)
        session = keyframe_session(farm)
        builder = session.flow
        builder.add("a fox asleep")
        builder.add("a fox running")
        async with follow(farm, builder.history):
            stills = await made_stills(session, 0)
            await session.lock_still(0, stills.cells[0])
            full, _ = await session.render("full")
            cell = full.cells[0]
            await until(lambda: cell.state == "running", seconds=60)
            await session.cancel_all()
            await until(lambda: cell.state == "cancelled")
        session_id = session.session_id
        assert session_id is not None
        reopened = keyframe_session(farm)
        await reopened.reopen(session_id)
        (render,) = reopened.flow.renders()
        assert render.cells[0].state == "cancelled" and render.cells[0].image is None
        assert reopened.flow.latest_video() is None
        assert reopened.flow.keyframes[0].still is not None
        assert reopened.flow.keyframes[0].still.id == stills.cells[0].image.id  # type: ignore[union-attr]
        await asyncio.sleep(0.3)
        assert farm.scheduler.jobs[cell.job_id].state == JobState.CANCELLED  # not re-attached
        assert reopened.history.unfinished_jobs() == []


async def test_a_node_dying_mid_render_loses_nothing(tmp_path: Path) -> None:
    async with demo_farm(tmp_path / "data", speed=0.3) as farm:
        await confirmed(farm)
        session = keyframe_session(farm, KeyframeConfig(keyframe_images="latent"))
        builder = session.flow
        builder.add("a fox asleep")
        builder.add("a fox running")
        async with follow(farm, builder.history):
            stills = await made_stills(session, 1)
            await session.lock_still(1, stills.cells[0])
            preview, _ = await session.render("preview")
            cell = preview.cells[0]
            await until(lambda: cell.state == "running" and cell.step > 0, seconds=60)
            dying = cell.node_id
            assert dying is not None
            await farm.sim.node(dying).kill()
            await until(lambda: cell.state == "done", seconds=120)
        assert cell.image is not None and cell.image.node_id != dying
        graph = sent_graph(farm, cell.job_id)
        assert list(keyframe_loads(graph).values()) == [8]  # the still was uploaded there too
        assert not any(n["class_type"] == "IPAdapterAdvanced" for n in graph.values())
        reopened = keyframe_session(farm)
        await reopened.reopen(session.session_id or "")
        assert reopened.flow.latest_video() is not None
        assert reopened.flow.latest_video().id == cell.image.id  # type: ignore[union-attr]


async def test_a_bad_keyframe_still_is_one_sentence_and_nothing_is_lost(tmp_path: Path) -> None:
    async with demo_farm(tmp_path / "data") as farm:
        await confirmed(farm)
        session = keyframe_session(farm)
        builder = session.flow
        builder.add("a fox asleep")
        builder.add("a fox running")
        async with follow(farm, builder.history):
            stills = await made_stills(session, 1)
            await session.lock_still(1, stills.cells[3])
        still = stills.cells[3].image
        assert still is not None
        still.path.write_bytes(b"not a picture")
        before, rounds = builder.state(), len(builder.history.rounds)
        with pytest.raises(KeyframeError) as refused:
            await session.render("preview")
        assert str(refused.value) == (
            f"keyframe 2 (frame 8): its still {still.path} cannot be read (it is not a "
            "picture); make and lock another still for it (n, L)"
        )
        assert builder.state() == before and len(builder.history.rounds) == rounds
        assert builder.renders() == [] and builder.keyframes[1].still == still
        still.path.unlink()
        with pytest.raises(KeyframeError, match=r"cannot be read \(the file is missing\)"):
            await session.render("full")
        reopened = keyframe_session(farm)
        await reopened.reopen(session.session_id or "")
        assert reopened.flow.state() == before  # the session in the store is untouched


async def test_a_render_still_running_when_reopened_finishes_into_the_reopened_session(
    tmp_path: Path,
) -> None:
    async with demo_farm(tmp_path / "data", speed=0.3) as farm:
        await confirmed(farm)
        session = keyframe_session(farm)
        session.flow.add("a fox asleep")
        session.flow.add("a fox running")
        async with follow(farm, session.flow.history):
            stills = await made_stills(session, 0)
            await session.lock_still(0, stills.cells[1])
            preview, _ = await session.render("preview")
            await until(lambda: preview.cells[0].state == "running", seconds=60)
        reopened = keyframe_session(farm)  # the screen was left without cancelling
        async with follow(farm, reopened.flow.history):
            await reopened.reopen(session.session_id or "")
            (render,) = reopened.flow.renders()
            assert render.cells[0].job_id == preview.cells[0].job_id
            assert render.cells[0].state in ("queued", "running")
            await until(lambda: render.cells[0].state == "done", seconds=120)
        video = reopened.flow.latest_video()
        assert video is not None and video.id == image_of(render.cells[0]).id
        assert farm.scheduler.jobs[render.cells[0].job_id].attempts == 1  # the same run, not again
