"""The simulator's video nodes, driven over loopback with the recorded graphs."""

from __future__ import annotations

import copy
import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageChops, ImageStat

from imgen_tui.comfy import ComfyClient, NodeEventStream
from imgen_tui.comfy.capabilities import check_capabilities
from imgen_tui.comfy.events import Progress
from imgen_tui.comfy.outputs import animated_outputs
from imgen_tui.comfy.run import run_prompt
from imgen_tui.comfy.websocket import Backoff, StreamEvent
from imgen_tui.graphs.video_schedule import schedule_text
from imgen_tui.sim.images import render_picture
from imgen_tui.sim.node import SimulatedNode
from imgen_tui.sim.spec import SimNodeSpec
from imgen_tui.store.animation import CheckedAnimation, check_output, frames_of

VIDEO = Path(__file__).parent / "fixtures" / "comfyui" / "video"
PACKS = (
    "ADE_AnimateDiffLoaderGen1",
    "ADE_LoadAnimateDiffModel",
    "ADE_ApplyAnimateDiffModelSimple",
    "ADE_UseEvolvedSampling",
    "ADE_StandardUniformContextOptions",
    "ADE_PromptScheduling",
    "VHS_VideoCombine",
    "RIFE VFI",
    "FILM VFI",
)
ANIMATOR = SimNodeSpec(
    id="animator",
    tier="premium",
    capabilities=("sd15", "animatediff", "interpolation", "video"),
    seconds_per_step={"sd15": 0.0},
    models={
        "checkpoints": ["sd15-ad-shape.safetensors"],
        "animatediff_models": ["tiny-mm-sd15.safetensors"],
    },
    extra_classes=PACKS,
)


def recorded_graph(run: str) -> dict[str, Any]:
    runs = json.loads((VIDEO / "history_animated.json").read_text())
    return copy.deepcopy(runs[run]["graph"])


def difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


async def start(tmp_path: Path, spec: SimNodeSpec = ANIMATOR) -> SimulatedNode:
    node = SimulatedNode(spec, root=tmp_path / spec.id)
    await node.start()
    return node


@pytest.fixture
async def animator(tmp_path: Path) -> AsyncIterator[SimulatedNode]:
    node = await start(tmp_path)
    yield node
    await node.stop()


@pytest.fixture
async def connected(
    animator: SimulatedNode,
) -> AsyncIterator[tuple[ComfyClient, NodeEventStream]]:
    async with ComfyClient(animator.url, name="animator") as client:
        stream = NodeEventStream(
            animator.url, client.client_id, name="animator", backoff=Backoff(first=0.05, cap=0.2)
        )
        stream.start()
        try:
            yield client, stream
        finally:
            await stream.close()


def prompt_travel(graph: dict[str, Any], entries: list[tuple[int, str]]) -> None:
    """The recorded Gen2 graph with its prompt replaced by an ADE_PromptScheduling schedule."""
    graph["30"] = {
        "class_type": "ADE_PromptScheduling",
        "inputs": {"prompts": schedule_text(entries), "clip": ["1", 1]},
    }
    graph["5"]["inputs"]["positive"] = ["30", 0]


async def test_object_info_has_the_recorded_classes_where_installed(tmp_path: Path) -> None:
    plain = await start(tmp_path, SimNodeSpec(id="plain", seconds_per_step={"sd15": 0.0}))
    animator = await start(tmp_path)
    try:
        async with httpx.AsyncClient() as http:
            plain_info = (await http.get(f"{plain.url}/object_info")).json()
            info = (await http.get(f"{animator.url}/object_info")).json()
    finally:
        await plain.stop()
        await animator.stop()
    recorded = json.loads((VIDEO / "object_info_video.json").read_text())
    assert "SaveAnimatedWEBP" in plain_info and "ADE_LoadAnimateDiffModel" not in plain_info
    assert plain_info["SaveAnimatedWEBP"] == recorded["SaveAnimatedWEBP"]
    assert info["RIFE VFI"] == recorded["RIFE VFI"]  # 2026's torch_compile and batch_size too
    assert info["ADE_LoadAnimateDiffModel"]["input"]["required"]["model_name"] == [
        ["tiny-mm-sd15.safetensors"]
    ]


async def test_a_missing_motion_model_is_the_recorded_400(animator: SimulatedNode) -> None:
    recorded = json.loads((VIDEO / "ad_missing_motion_model_400.json").read_text())
    for case in recorded.values():
        graph = case["request"]["json"]["prompt"]
        async with httpx.AsyncClient() as http:
            answer = await http.post(f"{animator.url}/prompt", json={"prompt": graph})
        assert answer.status_code == 400
        assert answer.json() == case["json"]


async def test_frames_follow_the_keyframes_in_order(
    connected: tuple[ComfyClient, NodeEventStream],
) -> None:
    client, stream = connected
    graph = recorded_graph("ad_gen2_webp")
    graph["4"]["inputs"]["batch_size"] = 16
    prompt_travel(graph, [(0, "a fox asleep in snow"), (8, "a fox running"), (15, "a fox leaping")])
    entry = await run_prompt(client, stream, graph, time_limit=30)

    (video,) = animated_outputs(entry.outputs)
    assert (video.subfolder, video.format) == ("ad", "image/webp")
    assert entry.outputs["7"]["animated"] == [True]
    data = await client.download(entry.saved_images[0])
    frames = list(frames_of_bytes(data))
    assert len(frames) == 16
    seed = graph["5"]["inputs"]["seed"]
    asleep, running, leaping = (
        render_picture(text, seed, 64, 64)
        for text in ("a fox asleep in snow", "a fox running", "a fox leaping")
    )
    assert difference(frames[0], asleep) < 3 and difference(frames[8], running) < 3
    assert difference(frames[15], leaping) < 3
    # travel: each frame between two keyframes moves steadily from the first to the second
    towards = [difference(frame, running) for frame in frames[:9]]
    assert towards == sorted(towards, reverse=True)
    checked = check_output(data, 64)
    assert isinstance(checked, CheckedAnimation) and checked.fps == 8.0


def frames_of_bytes(data: bytes) -> list[Image.Image]:
    with Image.open(io.BytesIO(data)) as image:
        found = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            found.append(image.convert("RGB"))
        return found


async def test_interpolation_really_inserts_frames_and_vhs_reports_under_gifs(
    connected: tuple[ComfyClient, NodeEventStream], tmp_path: Path
) -> None:
    client, stream = connected
    graph = recorded_graph("ad_gen1_vhs_gif")
    graph["40"] = {
        "class_type": "RIFE VFI",
        "inputs": {
            "ckpt_name": "rife49.pth",
            "frames": ["6", 0],
            "clear_cache_after_n_frames": 10,
            "multiplier": 2,
            "fast_mode": True,
            "ensemble": True,
            "scale_factor": 1.0,
            "dtype": "float32",
            "torch_compile": False,
            "batch_size": 1,
        },
    }
    sampler_node = next(k for k, v in graph.items() if v["class_type"] == "KSampler")
    saver = next(k for k, v in graph.items() if v["class_type"] == "VHS_VideoCombine")
    graph[saver]["inputs"]["images"] = ["40", 0]
    events: list[StreamEvent] = []
    entry = await run_prompt(client, stream, graph, time_limit=30, on_event=events.append)

    (item,) = entry.outputs[saver]["gifs"]
    assert item["format"] == "image/gif" and item["frame_rate"] == 8.0
    assert item["filename"].endswith("_00001.gif") and item["workflow"].endswith("_00001.png")
    data = await client.download(entry.saved_images[0])
    frames = frames_of_bytes(data)
    assert len(frames) == 15  # 8 frames, one new one between each pair
    progress = [(e.node, e.value, e.max) for e in events if isinstance(e, Progress)]
    nodes = [node for node, _, _ in progress]
    # the sampler's steps, RIFE's frames, then VHS's own series over the 15 frames
    assert nodes.index(sampler_node) < nodes.index("40") < nodes.index(saver)
    assert [(v, m) for n, v, m in progress if n == saver] == [(i, 15) for i in range(1, 16)]


async def test_render_time_grows_with_frames_times_steps(tmp_path: Path) -> None:
    slow = ANIMATOR.model_copy(update={"id": "slow", "seconds_per_step": {"sd15": 2.0}})
    node = await start(tmp_path, slow)  # 64x64: 2.0 * 64²/512² = 0.03 s per frame and step
    try:
        async with ComfyClient(node.url, name="slow") as client:
            stream = NodeEventStream(node.url, client.client_id, name="slow")
            stream.start()
            seconds = []
            for frames in (4, 16):
                graph = recorded_graph("ad_gen2_webp")
                graph["4"]["inputs"]["batch_size"] = frames
                graph["5"]["inputs"]["seed"] += frames  # no cache between the two
                begun = time.monotonic()
                await run_prompt(client, stream, graph, time_limit=30)
                seconds.append(time.monotonic() - begun)
            await stream.close()
    finally:
        await node.stop()
    # 2 steps: 4 frames sleep 0.25 s, 16 frames 1.0 s
    assert seconds[1] - seconds[0] > 0.5


async def test_vhs_mp4_is_listed_under_gifs_and_decodes(
    connected: tuple[ComfyClient, NodeEventStream], tmp_path: Path
) -> None:
    client, stream = connected
    graph = recorded_graph("ad_gen1_vhs_gif")
    saver = next(k for k, v in graph.items() if v["class_type"] == "VHS_VideoCombine")
    graph[saver]["inputs"].update({"format": "video/h264-mp4", "pix_fmt": "yuv420p", "crf": 19})
    entry = await run_prompt(client, stream, graph, time_limit=30)
    (video,) = animated_outputs(entry.outputs)
    assert video.format == "video/h264-mp4" and video.filename.endswith(".mp4")
    path = tmp_path / "out.mp4"
    path.write_bytes(await client.download(entry.saved_images[0]))
    assert len(list(frames_of(path))) == 8


async def test_capabilities_are_confirmed_from_object_info_with_the_reason(tmp_path: Path) -> None:
    no_model = ANIMATOR.model_copy(
        update={"id": "no-model", "models": {"checkpoints": ["sd15-ad-shape.safetensors"]}}
    )
    plain = SimNodeSpec(id="plain", capabilities=("sd15", "animatediff", "interpolation"))
    verdicts = {}
    for spec in (ANIMATOR, no_model, plain):
        node = await start(tmp_path, spec)
        try:
            async with ComfyClient(node.url, name=spec.id) as client:
                info = await client.object_info()
        finally:
            await node.stop()
        checks = check_capabilities(info, ("animatediff", "interpolation", "video"), {})
        verdicts[spec.id] = {check.capability: (check.verdict, check.reason) for check in checks}
    assert {name: v[0] for name, v in verdicts["animator"].items()} == {
        "animatediff": "confirmed",
        "interpolation": "confirmed",
        "video": "confirmed",
    }
    assert verdicts["no-model"]["animatediff"] == (
        "missing",
        "AnimateDiff is installed but has no motion model (animatediff_models is empty)",
    )
    assert verdicts["plain"]["animatediff"][0] == "missing"
    assert verdicts["plain"]["interpolation"] == (
        "missing",
        "no FrameInterpolate, RIFE VFI or FILM VFI node is installed",
    )
    assert verdicts["plain"]["video"][0] == "confirmed"  # core's SaveAnimatedWEBP


def test_a_keyframe_latent_chain_counts_its_frames_for_the_sampler_and_its_clock() -> None:
    """The sampler's time grows with the frames however the batch was built (not only Empty)."""
    from imgen_tui.graphs.video import Keyframe, RenderSettings, Timeline, build_video_graph
    from imgen_tui.sim.video import latent_count

    recorded = json.loads((VIDEO / "object_info_video.json").read_text())
    timeline = Timeline(
        keyframes=(Keyframe(0, "dawn", "a.png"), Keyframe(70, "dusk", "b.png")), length=150
    )
    graph = build_video_graph(
        timeline, RenderSettings("sd15-ad-shape.safetensors", denoise=0.6), recorded
    )
    (sampler,) = [i for i, n in graph.items() if n["class_type"] == "KSampler"]
    assert latent_count(graph, sampler) == 150
    repeats = [
        n["inputs"]["amount"] for n in graph.values() if n["class_type"] == "RepeatLatentBatch"
    ]
    assert repeats == [36, 64, 50]  # 0..35 dawn (35 is a tie: the earlier); 36..149 dusk
