"""A timeline of keyframes as an AnimateDiff graph, built from parts for one node.

Which parts depend on what that node has, read from its `/object_info`:

- prompt travel through `ADE_PromptScheduling` (or FizzNodes' `BatchPromptSchedule`);
  a single keyframe needs neither and is a plain `CLIPTextEncode`;
- AnimateDiff Gen2 (`ADE_LoadAnimateDiffModel` → `ADE_ApplyAnimateDiffModelSimple` →
  `ADE_UseEvolvedSampling`), else Gen1's `ADE_AnimateDiffLoaderGen1`; with
  `ADE_StandardUniformContextOptions` once the timeline is longer than the
  motion model's 16-frame window;
- interpolation through core `FrameInterpolate`, else `RIFE VFI`, else `FILM VFI`,
  with every required input filled from the node's own spec (the pack added
  required inputs in 2026, so an older install wants fewer);
- the video written by `SaveAnimatedWEBP`, or `VHS_VideoCombine` / core
  `CreateVideo` + `SaveVideo` for MP4 and GIF;
- keyframes that carry an image, with a denoise below 1, start the sampler from
  those images at their frames (`graphs.video_latents`) instead of from noise.

The result is checked against the same object_info before it is returned, so
a node that would refuse it is refused here with the node and input named.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from imgen_tui.graphs.graph import Graph, GraphError
from imgen_tui.graphs.video_check import check_graph, combo_options, input_sections
from imgen_tui.graphs.video_latents import keyframe_latents
from imgen_tui.graphs.video_schedule import schedule_text

#: AnimateDiff SD1.5 motion models see 16 frames at a time
MOTION_WINDOW = 16
MAX_FRAMES = 1024
VideoFormat = Literal["webp", "mp4", "gif"]


@dataclass(frozen=True)
class Keyframe:
    frame: int
    description: str
    #: the name a LoadImage reads for this moment's still (uploaded at post time), if any
    image: str | None = None


@dataclass(frozen=True)
class Timeline:
    """What the operator settled: keyframes at frame positions, the length and the rate."""

    keyframes: tuple[Keyframe, ...]
    length: int = 16
    fps: float = 8.0
    negative: str = "blurry, low quality, watermark, text"


@dataclass(frozen=True)
class RenderSettings:
    """How hard to render: a motion preview is small and few-step, a full render is not."""

    checkpoint: str
    width: int = 512
    height: int = 512
    steps: int = 20
    cfg: float = 7.5
    seed: int = 0
    sampler: str = "euler_ancestral"
    scheduler: str = "normal"
    motion_model: str | None = None  # None: the node's first
    interpolation: int = 1  # frames per input frame; 1 = none
    output: VideoFormat = "webp"
    filename_prefix: str = "imgen/video"
    context_overlap: int = 4
    #: below 1: keyframes with an image start the sampler from it (img2img); 1: from noise
    denoise: float = 1.0


@dataclass
class _Builder:
    classes: Mapping[str, Any]
    node: str
    graph: Graph = field(default_factory=dict)

    def has(self, *names: str) -> bool:
        return all(isinstance(self.classes.get(name), Mapping) for name in names)

    def add(self, class_type: str, _meta: dict[str, Any] | None = None, **inputs: Any) -> list[Any]:
        node_id = str(len(self.graph) + 1)
        self.graph[node_id] = {"class_type": class_type, "inputs": inputs}
        if _meta is not None:
            self.graph[node_id]["_meta"] = _meta
        return [node_id, 0]


def build_video_graph(
    timeline: Timeline,
    settings: RenderSettings,
    classes: Mapping[str, Any],
    *,
    node: str = "the node",
) -> Graph:
    """The API-format graph for `timeline` on a node with these `/object_info` classes."""
    check_timeline(timeline)
    parts = _Builder(classes, node)
    checkpoint = parts.add("CheckpointLoaderSimple", ckpt_name=settings.checkpoint)
    clip, vae = [checkpoint[0], 1], [checkpoint[0], 2]
    positive = _prompt(parts, timeline, clip)
    negative = parts.add("CLIPTextEncode", text=timeline.negative, clip=clip)
    if not 0 < settings.denoise <= 1:
        raise GraphError(f"a denoise of {settings.denoise:g}: choose above 0 and at most 1")
    imaged = [(k.frame, k.image) for k in _ordered(timeline) if k.image]
    uploaded: list[str] = []
    denoise = 1.0
    if imaged and settings.denoise < 1:
        latent, uploaded = keyframe_latents(
            parts.add,
            imaged,
            length=timeline.length,
            width=settings.width,
            height=settings.height,
            vae=vae,
        )
        denoise = settings.denoise
    else:
        latent = parts.add(
            "EmptyLatentImage",
            width=settings.width,
            height=settings.height,
            batch_size=timeline.length,
        )
    model = _animatediff(parts, timeline, settings, checkpoint)
    samples = parts.add(
        "KSampler",
        seed=settings.seed,
        steps=settings.steps,
        cfg=settings.cfg,
        sampler_name=settings.sampler,
        scheduler=settings.scheduler,
        denoise=denoise,
        model=model,
        positive=positive,
        negative=negative,
        latent_image=latent,
    )
    frames = parts.add("VAEDecode", samples=samples, vae=vae)
    fps = timeline.fps
    if settings.interpolation > 1:
        frames = _interpolate(parts, frames, settings.interpolation)
        fps = timeline.fps * settings.interpolation  # the same seconds, smoother
    _save(parts, frames, fps, settings)
    check_graph(parts.graph, classes, node, uploaded=uploaded)
    return parts.graph


def _ordered(timeline: Timeline) -> list[Keyframe]:
    return sorted(timeline.keyframes, key=lambda keyframe: keyframe.frame)


def check_timeline(timeline: Timeline) -> None:
    """A timeline the builder can turn into a graph, or a sentence saying what to change."""
    if not timeline.keyframes:
        raise GraphError("the timeline has no keyframes: add one with a description")
    if not 1 <= timeline.length <= MAX_FRAMES:
        raise GraphError(f"the timeline is {timeline.length} frames; make it 1 to {MAX_FRAMES}")
    if timeline.fps <= 0:
        raise GraphError(f"the timeline's fps is {timeline.fps}; make it above 0")
    for keyframe in timeline.keyframes:
        if not 0 <= keyframe.frame < timeline.length:
            raise GraphError(
                f"keyframe {keyframe.description[:30]!r} is at frame {keyframe.frame}, outside "
                f"the timeline's 0..{timeline.length - 1}"
            )


def prompt_schedule(timeline: Timeline) -> str:
    """The travel schedule: the first keyframe always holds from frame 0."""
    entries = [(keyframe.frame, keyframe.description) for keyframe in _ordered(timeline)]
    entries[0] = (0, entries[0][1])
    return schedule_text(entries)


def _prompt(parts: _Builder, timeline: Timeline, clip: list[Any]) -> list[Any]:
    distinct = {keyframe.description for keyframe in timeline.keyframes}
    if len(distinct) == 1:
        return parts.add("CLIPTextEncode", text=timeline.keyframes[0].description, clip=clip)
    schedule = prompt_schedule(timeline)
    if parts.has("ADE_PromptScheduling"):
        return parts.add("ADE_PromptScheduling", prompts=schedule, clip=clip)
    if parts.has("BatchPromptSchedule"):
        return _filled(
            parts,
            "BatchPromptSchedule",
            {"text": schedule, "clip": clip, "max_frames": timeline.length},
        )
    raise GraphError(
        f"{parts.node} has no prompt travel node (ADE_PromptScheduling from AnimateDiff-Evolved "
        "or FizzNodes' BatchPromptSchedule); give every keyframe the same description or "
        "install one of them"
    )


def _animatediff(
    parts: _Builder, timeline: Timeline, settings: RenderSettings, checkpoint: list[Any]
) -> list[Any]:
    gen2 = ("ADE_LoadAnimateDiffModel", "ADE_ApplyAnimateDiffModelSimple", "ADE_UseEvolvedSampling")
    loader = gen2[0] if parts.has(*gen2) else "ADE_AnimateDiffLoaderGen1"
    if not parts.has(loader):
        raise GraphError(
            f"{parts.node} has no AnimateDiff (ADE_LoadAnimateDiffModel or "
            "ADE_AnimateDiffLoaderGen1); install ComfyUI-AnimateDiff-Evolved there"
        )
    installed = _choices(parts.classes, loader, "model_name")
    motion_model = settings.motion_model or (installed[0] if installed else None)
    if motion_model is None or motion_model not in installed:
        listing = ", ".join(map(str, installed)) or "none"
        raise GraphError(
            f"{parts.node} has no motion model {motion_model or ''}".rstrip()
            + f" (its animatediff_models: {listing}); put one in models/animatediff_models"
        )
    context: dict[str, Any] = {}
    if timeline.length > MOTION_WINDOW:
        context["context_options"] = parts.add(
            "ADE_StandardUniformContextOptions",
            context_length=MOTION_WINDOW,
            context_stride=1,
            context_overlap=settings.context_overlap,
            fuse_method="pyramid",
            use_on_equal_length=False,
            start_percent=0.0,
            guarantee_steps=1,
        )
    model = [checkpoint[0], 0]
    if loader == "ADE_AnimateDiffLoaderGen1":
        return parts.add(
            loader, model=model, model_name=motion_model, beta_schedule="autoselect", **context
        )
    motion = parts.add(loader, model_name=motion_model)
    applied = parts.add("ADE_ApplyAnimateDiffModelSimple", motion_model=motion)
    return parts.add(
        "ADE_UseEvolvedSampling",
        model=model,
        beta_schedule="autoselect",
        m_models=applied,
        **context,
    )


def interpolator_of(classes: Mapping[str, Any]) -> str | None:
    """The interpolation node a node has, preferring core's over the packs'."""
    for name in ("FrameInterpolate", "RIFE VFI", "FILM VFI"):
        if isinstance(classes.get(name), Mapping):
            return name
    return None


def _interpolate(parts: _Builder, frames: list[Any], multiplier: int) -> list[Any]:
    name = interpolator_of(parts.classes)
    if name is None:
        raise GraphError(
            f"{parts.node} cannot interpolate: it has no FrameInterpolate, RIFE VFI or FILM VFI; "
            "render without interpolation or install ComfyUI-Frame-Interpolation"
        )
    return _filled(parts, name, {"multiplier": multiplier}, images=frames)


def _filled(
    parts: _Builder,
    class_type: str,
    given: Mapping[str, Any],
    *,
    images: list[Any] | None = None,
) -> list[Any]:
    """A node with `given` inputs and every other required one from its spec's defaults.

    An IMAGE input takes `images`; another typed input (core `FrameInterpolate`'s
    model) takes a loader node added for it, the class that outputs that type
    and needs only literals.
    """
    required, _ = input_sections(parts.classes[class_type])
    inputs: dict[str, Any] = {}
    for name, spec in required.items():
        if name in given:
            inputs[name] = given[name]
        elif isinstance(spec, list) and spec and spec[0] == "IMAGE" and images is not None:
            inputs[name] = images
        else:
            inputs[name] = _default(parts, class_type, name, spec)
    return parts.add(class_type, **inputs)


def _default(parts: _Builder, class_type: str, name: str, spec: Any) -> Any:
    if not isinstance(spec, list) or not spec:
        raise GraphError(f"{parts.node}: {class_type} input {name!r} has no readable spec")
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
    choices = combo_options(spec)
    if choices is not None:
        if not choices:
            raise GraphError(
                f"{parts.node}: {class_type} lists no {name} (its model folder is empty)"
            )
        default = options.get("default")
        return default if default in choices else choices[0]
    kind = spec[0]
    if "default" in options:
        return options["default"]
    if kind in ("INT", "FLOAT"):
        return options.get("min", 0)
    if kind == "BOOLEAN":
        return False
    if kind == "STRING":
        return ""
    loader = _loader_for(parts.classes, str(kind))
    if loader is None:
        raise GraphError(
            f"{parts.node}: {class_type} needs a {kind} for {name!r} and no node makes one"
        )
    return _filled(parts, loader, {})


def _loader_for(classes: Mapping[str, Any], kind: str) -> str | None:
    """A class that outputs only `kind` and whose required inputs are all literals."""
    for name, description in classes.items():
        if not isinstance(description, Mapping) or description.get("output") != [kind]:
            continue
        required, _ = input_sections(description)
        if all(_is_literal(spec) for spec in required.values()):
            return name
    return None


def _is_literal(spec: Any) -> bool:
    if not isinstance(spec, list) or not spec:
        return False
    return combo_options(spec) is not None or spec[0] in ("INT", "FLOAT", "BOOLEAN", "STRING")


def _save(parts: _Builder, frames: list[Any], fps: float, settings: RenderSettings) -> None:
    prefix = settings.filename_prefix
    if settings.output == "webp" and parts.has("SaveAnimatedWEBP"):
        parts.add(
            "SaveAnimatedWEBP",
            images=frames,
            filename_prefix=prefix,
            fps=fps,
            lossless=False,
            quality=90,
            method="default",
        )
        return
    vhs_format = {"webp": "image/webp", "gif": "image/gif", "mp4": "video/h264-mp4"}[
        settings.output
    ]
    if parts.has("VHS_VideoCombine"):
        extra: dict[str, Any] = (
            {"pix_fmt": "yuv420p", "crf": 19, "save_metadata": True, "trim_to_audio": False}
            if settings.output == "mp4"
            else {}
        )
        parts.add(
            "VHS_VideoCombine",
            images=frames,
            frame_rate=fps,
            loop_count=0,
            filename_prefix=prefix,
            format=vhs_format,
            pingpong=False,
            save_output=True,
            **extra,
        )
        return
    if settings.output == "mp4" and parts.has("CreateVideo", "SaveVideo"):
        video = parts.add("CreateVideo", images=frames, fps=fps)
        parts.add("SaveVideo", video=video, filename_prefix=prefix, format="mp4", codec="h264")
        return
    raise GraphError(
        f"{parts.node} cannot write a {settings.output} video: it has no "
        + ("SaveAnimatedWEBP or " if settings.output == "webp" else "")
        + "VHS_VideoCombine; choose another format or install ComfyUI-VideoHelperSuite"
    )


def _choices(classes: Mapping[str, Any], class_type: str, name: str) -> list[Any]:
    required, optional = input_sections(classes.get(class_type) or {})
    spec = required.get(name, optional.get(name))
    return (combo_options(spec) or []) if isinstance(spec, list) else []


def keyframes_of(pairs: Sequence[tuple[int, str]]) -> tuple[Keyframe, ...]:
    return tuple(Keyframe(frame, text) for frame, text in pairs)
