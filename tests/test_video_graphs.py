"""Timeline → AnimateDiff graph: built from parts, valid on the recorded object_info."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgen_tui.graphs.graph import GraphError
from imgen_tui.graphs.video import (
    Keyframe,
    RenderSettings,
    Timeline,
    build_video_graph,
    prompt_schedule,
)
from imgen_tui.graphs.video_latents import keyframe_loads, nearest_runs
from imgen_tui.graphs.video_schedule import parse_schedule, prompt_at, schedule_text
from imgen_tui.sim.validation import validate_prompt

RECORDED: dict[str, Any] = json.loads(
    (
        Path(__file__).parent / "fixtures" / "comfyui" / "video" / "object_info_video.json"
    ).read_text()
)
SETTINGS = RenderSettings(checkpoint="sd15-ad-shape.safetensors", width=64, height=64, steps=2)


def classes_of(graph: dict[str, Any]) -> list[str]:
    return sorted(node["class_type"] for node in graph.values())


def without(*names: str) -> dict[str, Any]:
    return {name: spec for name, spec in RECORDED.items() if name not in names}


descriptions = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40
).filter(lambda text: text.strip() != "")


@st.composite
def timelines(draw: st.DrawFn) -> Timeline:
    length = draw(st.integers(1, 64))
    frames = draw(st.lists(st.integers(0, length - 1), min_size=1, max_size=5, unique=True))
    return Timeline(
        keyframes=tuple(Keyframe(frame, draw(descriptions)) for frame in frames),
        length=length,
        fps=draw(st.sampled_from([6.0, 8.0, 12.0, 24.0])),
    )


@settings(max_examples=60, deadline=None)
@given(
    timeline=timelines(),
    interpolation=st.integers(1, 4),
    output=st.sampled_from(["webp", "mp4", "gif"]),
    gen1_only=st.booleans(),
)
def test_any_timeline_validates_against_the_recorded_object_info(
    timeline: Timeline, interpolation: int, output: str, gen1_only: bool
) -> None:
    classes = without("ADE_LoadAnimateDiffModel") if gen1_only else RECORDED
    render = RenderSettings(
        checkpoint="sd15-ad-shape.safetensors",
        interpolation=interpolation,
        output=output,  # type: ignore[arg-type]
    )
    graph = build_video_graph(timeline, render, classes)
    # what ComfyUI's own validation (as the simulator reproduces it) says of it
    result = validate_prompt(copy.deepcopy(graph), classes)
    assert result.error is None and result.node_errors == {}
    kinds = classes_of(graph)
    assert ("ADE_StandardUniformContextOptions" in kinds) == (timeline.length > 16)
    assert ("ADE_AnimateDiffLoaderGen1" in kinds) == gen1_only
    assert ("RIFE VFI" in kinds) == (interpolation > 1)
    (latent,) = [n for n in graph.values() if n["class_type"] == "EmptyLatentImage"]
    assert latent["inputs"]["batch_size"] == timeline.length
    if len({keyframe.description for keyframe in timeline.keyframes}) > 1:
        (travel,) = [n for n in graph.values() if n["class_type"] == "ADE_PromptScheduling"]
        scheduled = parse_schedule(travel["inputs"]["prompts"])
        assert scheduled[0][0] == 0
        assert [text for _, text in scheduled] == [
            " ".join(keyframe.description.split())
            for keyframe in sorted(timeline.keyframes, key=lambda keyframe: keyframe.frame)
        ]


def test_the_schedule_text_is_what_prompt_travel_nodes_read() -> None:
    timeline = Timeline(
        keyframes=(Keyframe(16, "a fox running"), Keyframe(0, 'a fox "asleep" in snow')),
        length=32,
    )
    assert prompt_schedule(timeline) == '"0": "a fox \\"asleep\\" in snow",\n"16": "a fox running"'


def test_the_first_keyframe_holds_from_frame_zero() -> None:
    timeline = Timeline(keyframes=(Keyframe(4, "dawn"), Keyframe(12, "dusk")), length=16)
    assert parse_schedule(prompt_schedule(timeline)) == [(0, "dawn"), (12, "dusk")]


@given(st.lists(st.tuples(st.integers(0, 500), descriptions), min_size=1, max_size=8))
def test_schedule_text_reads_back_as_written(entries: list[tuple[int, str]]) -> None:
    expected = dict(entries)  # a later duplicate frame wins
    assert parse_schedule(schedule_text(entries)) == sorted(
        (frame, " ".join(text.split())) for frame, text in expected.items()
    )


def test_frames_between_keyframes_travel_linearly() -> None:
    entries = [(0, "a"), (16, "b")]
    assert prompt_at(entries, 0) == ("a", "b", 0.0)
    assert prompt_at(entries, 4) == ("a", "b", 0.25)
    assert prompt_at(entries, 20) == ("b", "b", 0.0)


def test_a_short_timeline_has_no_context_options_and_interpolation_doubles_the_rate() -> None:
    timeline = Timeline(keyframes=(Keyframe(0, "a fox"),), length=8, fps=8)
    graph = build_video_graph(
        timeline, RenderSettings("sd15-ad-shape.safetensors", interpolation=2), RECORDED
    )
    assert classes_of(graph) == sorted(
        [
            "ADE_ApplyAnimateDiffModelSimple",
            "ADE_LoadAnimateDiffModel",
            "ADE_UseEvolvedSampling",
            "CLIPTextEncode",
            "CLIPTextEncode",
            "CheckpointLoaderSimple",
            "EmptyLatentImage",
            "KSampler",
            "RIFE VFI",
            "SaveAnimatedWEBP",
            "VAEDecode",
        ]
    )
    (saver,) = [n for n in graph.values() if n["class_type"] == "SaveAnimatedWEBP"]
    assert saver["inputs"]["fps"] == 16.0


def test_interpolation_inputs_come_from_the_nodes_own_spec() -> None:
    """An older Frame-Interpolation without 2026's torch_compile and batch_size gets neither."""
    older = copy.deepcopy(RECORDED)
    for name in ("torch_compile", "batch_size"):
        del older["RIFE VFI"]["input"]["required"][name]
    timeline = Timeline(keyframes=(Keyframe(0, "a fox"),), length=8)
    render = RenderSettings("sd15-ad-shape.safetensors", interpolation=3)
    (new,) = [
        n
        for n in build_video_graph(timeline, render, RECORDED).values()
        if n["class_type"] == "RIFE VFI"
    ]
    (old,) = [
        n
        for n in build_video_graph(timeline, render, older).values()
        if n["class_type"] == "RIFE VFI"
    ]
    assert new["inputs"]["torch_compile"] is False and new["inputs"]["batch_size"] == 1
    assert "torch_compile" not in old["inputs"] and "batch_size" not in old["inputs"]
    assert new["inputs"]["ckpt_name"] == "rife49.pth" and new["inputs"]["multiplier"] == 3
    film = build_video_graph(timeline, render, without("RIFE VFI"))
    assert "FILM VFI" in classes_of(film)


def test_core_frame_interpolation_gets_its_model_loader() -> None:
    """Newer ComfyUI's FrameInterpolate takes a model from FrameInterpolationModelLoader."""
    classes = copy.deepcopy(RECORDED)
    classes["FrameInterpolationModelLoader"] = {
        "input": {"required": {"model_name": [["rife47.safetensors"]]}},
        "output": ["INTERPOLATION_MODEL"],
    }
    classes["FrameInterpolate"] = {
        "input": {
            "required": {
                "model": ["INTERPOLATION_MODEL"],
                "images": ["IMAGE"],
                "multiplier": ["INT", {"default": 2, "min": 2, "max": 16}],
            }
        },
        "output": ["IMAGE"],
    }
    timeline = Timeline(keyframes=(Keyframe(0, "a fox"),), length=8)
    graph = build_video_graph(
        timeline, RenderSettings("sd15-ad-shape.safetensors", interpolation=2), classes
    )
    (interpolate,) = [n for n in graph.values() if n["class_type"] == "FrameInterpolate"]
    loader = graph[interpolate["inputs"]["model"][0]]
    assert loader == {
        "class_type": "FrameInterpolationModelLoader",
        "inputs": {"model_name": "rife47.safetensors"},
    }


@pytest.mark.parametrize(
    ("classes", "render", "message"),
    [
        (
            without("ADE_LoadAnimateDiffModel", "ADE_AnimateDiffLoaderGen1"),
            SETTINGS,
            "gpu-x has no AnimateDiff (ADE_LoadAnimateDiffModel or ADE_AnimateDiffLoaderGen1); install ComfyUI-AnimateDiff-Evolved there",
        ),
        (
            RECORDED,
            RenderSettings("sd15-ad-shape.safetensors", motion_model="mm_sd_v15_v2.ckpt"),
            "gpu-x has no motion model mm_sd_v15_v2.ckpt (its animatediff_models: tiny-mm-sd15.safetensors); put one in models/animatediff_models",
        ),
        (
            without("RIFE VFI", "FILM VFI"),
            RenderSettings("sd15-ad-shape.safetensors", interpolation=2),
            "gpu-x cannot interpolate: it has no FrameInterpolate, RIFE VFI or FILM VFI; render without interpolation or install ComfyUI-Frame-Interpolation",
        ),
        (
            RECORDED,
            RenderSettings("v1-5-pruned-emaonly.safetensors"),
            "gpu-x: CheckpointLoaderSimple (node 1) input 'ckpt_name' is 'v1-5-pruned-emaonly.safetensors', not one of the node's choices (sd15-ad-shape.safetensors, tiny-sd15.safetensors, tiny-sdxl.safetensors)",
        ),
    ],
)
def test_a_node_that_would_refuse_the_graph_is_refused_here_by_name(
    classes: dict[str, Any], render: RenderSettings, message: str
) -> None:
    timeline = Timeline(keyframes=(Keyframe(0, "a fox"), Keyframe(8, "a fox running")), length=16)
    with pytest.raises(GraphError) as refused:
        build_video_graph(timeline, render, classes, node="gpu-x")
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("timeline", "message"),
    [
        (Timeline(keyframes=()), "the timeline has no keyframes: add one with a description"),
        (
            Timeline(keyframes=(Keyframe(20, "late"),), length=16),
            "keyframe 'late' is at frame 20, outside the timeline's 0..15",
        ),
        (
            Timeline(keyframes=(Keyframe(0, "a"),), length=0),
            "the timeline is 0 frames; make it 1 to 1024",
        ),
    ],
)
def test_a_bad_timeline_says_what_to_change(timeline: Timeline, message: str) -> None:
    with pytest.raises(GraphError) as refused:
        build_video_graph(timeline, SETTINGS, RECORDED)
    assert str(refused.value) == message


# -- keyframe images as starting latents -------------------------------------------------------

UPLOADED = "imgen-0bb0ad79e9ed8ed59020.png"  # a name the recorded node lists under LoadImage


def latent_frames(graph: dict[str, Any], link: list[Any]) -> list[int]:
    """The keyframe frame each latent of the batch was encoded from, walked from the graph."""
    node = graph[link[0]]
    inputs = node["inputs"]
    if node["class_type"] == "RepeatLatentBatch":
        amount: int = inputs["amount"]
        return latent_frames(graph, inputs["samples"]) * amount
    if node["class_type"] == "LatentBatch":
        return latent_frames(graph, inputs["samples1"]) + latent_frames(graph, inputs["samples2"])
    assert node["class_type"] == "VAEEncode"
    scaled = graph[inputs["pixels"][0]]
    assert scaled["class_type"] == "ImageScale"
    load = graph[scaled["inputs"]["image"][0]]
    assert load["class_type"] == "LoadImage"
    name: str = load["inputs"]["image"]
    return [int(name.removeprefix("still-").removesuffix(".png"))]


@st.composite
def imaged_timelines(draw: st.DrawFn) -> Timeline:
    length = draw(st.integers(1, 300))
    frames = draw(st.lists(st.integers(0, length - 1), min_size=1, max_size=5, unique=True))
    imaged = draw(st.lists(st.booleans(), min_size=len(frames), max_size=len(frames)))
    if not any(imaged):
        imaged[0] = True
    return Timeline(
        keyframes=tuple(
            Keyframe(frame, draw(descriptions), f"still-{frame}.png" if has else None)
            for frame, has in zip(frames, imaged, strict=True)
        ),
        length=length,
    )


@settings(max_examples=60, deadline=None)
@given(
    timeline=imaged_timelines(),
    denoise=st.floats(0.05, 0.95),
    gen1_only=st.booleans(),
    interpolation=st.integers(1, 3),
)
def test_any_timeline_with_stills_starts_from_them_and_validates(
    timeline: Timeline, denoise: float, gen1_only: bool, interpolation: int
) -> None:
    classes = without("ADE_LoadAnimateDiffModel") if gen1_only else RECORDED
    render = RenderSettings(
        "sd15-ad-shape.safetensors",
        width=256,
        height=192,
        denoise=denoise,
        interpolation=interpolation,
    )
    graph = build_video_graph(timeline, render, classes, node="gpu-x")
    loads = keyframe_loads(graph)
    imaged = sorted(k.frame for k in timeline.keyframes if k.image)
    assert sorted(loads.values()) == imaged  # one LoadImage per still, found by its title
    # every frame starts from the still of its nearest keyframe (the earlier one on a tie)
    (sampler,) = [n for n in graph.values() if n["class_type"] == "KSampler"]
    assert sampler["inputs"]["denoise"] == denoise
    starts = latent_frames(graph, sampler["inputs"]["latent_image"])
    assert len(starts) == timeline.length
    for frame, start in enumerate(starts):
        assert abs(start - frame) == min(abs(other - frame) for other in imaged)
        nearer_before = [o for o in imaged if o < start and abs(o - frame) == abs(start - frame)]
        assert not nearer_before
    assert all(
        n["inputs"]["amount"] <= 64
        for n in graph.values()
        if n["class_type"] == "RepeatLatentBatch"
    )
    assert not [n for n in graph.values() if n["class_type"] == "EmptyLatentImage"]
    scaled = [n["inputs"] for n in graph.values() if n["class_type"] == "ImageScale"]
    assert {(s["width"], s["height"], s["crop"]) for s in scaled} == {(256, 192, "center")}
    # after the scheduler's upload each LoadImage reads a name the node lists: ComfyUI's check
    bound = copy.deepcopy(graph)
    for load_id in loads:
        bound[load_id]["inputs"]["image"] = UPLOADED
    result = validate_prompt(bound, classes)
    assert result.error is None and result.node_errors == {}


def test_nearest_runs_switch_halfway_between_keyframes() -> None:
    assert nearest_runs(16, [0, 8, 12]) == [(0, 5), (1, 6), (2, 5)]  # ties: the earlier
    assert nearest_runs(5, [3]) == [(0, 5)]
    assert nearest_runs(10, [9, 0]) == [(1, 5), (0, 5)]  # in frame order, whatever the input order


def test_without_stills_or_at_full_denoise_the_render_starts_from_noise() -> None:
    imaged = Timeline(keyframes=(Keyframe(0, "a fox", "still-0.png"), Keyframe(8, "b")), length=16)
    for timeline, denoise in ((imaged, 1.0), (Timeline(keyframes=(Keyframe(0, "a"),)), 0.5)):
        graph = build_video_graph(
            timeline, RenderSettings(SETTINGS.checkpoint, denoise=denoise), RECORDED
        )
        assert "LoadImage" not in classes_of(graph) and "EmptyLatentImage" in classes_of(graph)
        (sampler,) = [n for n in graph.values() if n["class_type"] == "KSampler"]
        assert sampler["inputs"]["denoise"] == 1.0


@pytest.mark.parametrize(
    ("missing", "denoise", "message"),
    [
        ("RepeatLatentBatch", 0.7, "gpu-x has no RepeatLatentBatch node (graph node 7)"),
        ("VAEEncode", 0.7, "gpu-x has no VAEEncode node (graph node 6)"),
        (None, 1.5, "a denoise of 1.5: choose above 0 and at most 1"),
    ],
)
def test_a_node_without_the_latent_parts_is_refused_by_name(
    missing: str | None, denoise: float, message: str
) -> None:
    timeline = Timeline(keyframes=(Keyframe(0, "a fox", "still-0.png"),), length=8)
    classes = without(missing) if missing else RECORDED
    with pytest.raises(GraphError) as refused:
        build_video_graph(
            timeline, RenderSettings(SETTINGS.checkpoint, denoise=denoise), classes, node="gpu-x"
        )
    assert str(refused.value) == message
