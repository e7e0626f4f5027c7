"""The keyframe video builder without a terminal: timeline, stills, preview, full render, export."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest
from PIL import Image

from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.flows.keyframes import FLOW, AnimatingNode, KeyframeError, KeyframeFlow, node_for
from imgen_tui.flows.keyframes_export import export_video
from imgen_tui.graphs import load_library
from imgen_tui.graphs.video_savers import prompt_schedule_of
from imgen_tui.locations import bundled_dir
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.store.animation import read_animation
from tests.round_helpers import Follower, demo_farm, until

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
