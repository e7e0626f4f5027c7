"""Video on a simulated node: AnimateDiff, prompt travel, interpolation and the video savers.

The classes and their input specs are the recorded ones (AnimateDiff-Evolved,
VideoHelperSuite and Frame-Interpolation as installed for the v2 recordings,
plus core's animated savers). What they produce is made to be checkable:
every frame is a blend of the two keyframe pictures around it (the picture a
still of that keyframe's prompt would get), so a test can read frame order and
prompt travel back out of the file; frames whose latent was encoded from a
keyframe's image keep `1 - denoise` of it, as an img2img still does;
RIFE/FILM really insert frames between each pair; the savers answer as the
real ones do (core under `images` with `"animated": [true]`, VHS under
`gifs` after its own per-frame progress). The sampler's time grows with the
batch (frames, however the latent batch was built) times steps.
"""

from __future__ import annotations

import asyncio
import copy
import io
import itertools
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps

from imgen_tui.graphs.graph import is_link
from imgen_tui.graphs.video_schedule import parse_schedule, prompt_at
from imgen_tui.sim import images

if TYPE_CHECKING:
    from imgen_tui.sim.execution import PromptRun
    from imgen_tui.sim.spec import SimNodeSpec

#: core ComfyUI 0.3.64 has these on every node
CORE_VIDEO_CLASSES = (
    "SaveAnimatedWEBP",
    "SaveAnimatedPNG",
    "SaveWEBM",
    "CreateVideo",
    "SaveVideo",
    "RepeatLatentBatch",
    "ImageBatch",
    "LatentBatch",
    "LatentFromBatch",
    "ImageFromBatch",
)
#: the node classes whose inputs name a motion model file (folder `animatediff_models`)
MOTION_MODEL_INPUTS = (
    ("ADE_LoadAnimateDiffModel", "model_name"),
    ("ADE_AnimateDiffLoaderGen1", "model_name"),
)
INTERPOLATORS = ("RIFE VFI", "FILM VFI")
SAVERS = ("SaveAnimatedWEBP", "SaveAnimatedPNG", "SaveWEBM", "SaveVideo", "VHS_VideoCombine")
#: seconds per interpolated frame at 512x512 on a node with sd15 at 0.1 s/step
INTERPOLATION_SHARE = 0.2


@cache
def recorded_video_classes() -> dict[str, Any]:
    text = (
        resources.files("imgen_tui.sim").joinpath("data/object_info_video.json").read_text("utf-8")
    )
    data: dict[str, Any] = json.loads(text)
    return data


def add_video_classes(classes: dict[str, Any], spec: SimNodeSpec) -> None:
    """Core's video savers everywhere; the packs' classes where the node lists them."""
    recorded = recorded_video_classes()
    for name, description in recorded.items():
        if name in CORE_VIDEO_CLASSES or name in spec.extra_classes:
            classes[name] = copy.deepcopy(description)
    motion_models = list(spec.models.get("animatediff_models", []))
    for class_type, input_name in MOTION_MODEL_INPUTS:
        if class_type in classes:
            classes[class_type]["input"]["required"][input_name] = [motion_models]


_CONTENT_TYPES = {
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".jpg": "image/jpeg",
}


def content_type_of(filename: str) -> str:
    """What `/view` answers for a file, as the recordings show (PNG and APNG: image/png)."""
    return _CONTENT_TYPES.get(Path(filename).suffix.lower(), "image/png")


def handles(class_type: str) -> bool:
    return class_type in SAVERS or class_type in INTERPOLATORS


async def execute(
    run: PromptRun, node_id: str, class_type: str, inputs: dict[str, Any]
) -> dict[str, Any] | None:
    """Run one video node; savers return their history output, interpolators None."""
    if class_type in INTERPOLATORS:
        await _interpolate(run, node_id, class_type)
        return None
    if class_type == "SaveVideo":
        return await _save(run, node_id, class_type, inputs, _linked(run.graph, inputs, "video"))
    return await _save(run, node_id, class_type, inputs, _linked(run.graph, inputs, "images"))


# -- frames -----------------------------------------------------------------------------------


def frames_for(
    graph: dict[str, Any],
    node_id: str | None,
    size: tuple[int, int],
    input_dir: Path | None = None,
) -> list[Any]:
    """The frames node `node_id` outputs: a picture per latent, following the prompt schedule.

    With `input_dir` (the node's input folder) latents encoded from images
    start from those pictures, as img2img does; without it only the count
    and the prompts matter.
    """
    if node_id is None or node_id not in graph:
        return []
    node = graph[node_id]
    class_type, inputs = node.get("class_type"), node.get("inputs") or {}
    if class_type in INTERPOLATORS:
        source = frames_for(graph, _linked(graph, inputs, "frames"), size, input_dir)
        return interpolate(source, int(inputs.get("multiplier") or 2))
    if class_type == "CreateVideo":
        return frames_for(graph, _linked(graph, inputs, "images"), size, input_dir)
    if class_type == "VAEDecode":
        return frames_for(graph, _linked(graph, inputs, "samples"), size, input_dir)
    if class_type in ("KSampler", "KSamplerAdvanced"):
        return _sampled_frames(graph, inputs, size, input_dir)
    return []


def _sampled_frames(
    graph: dict[str, Any],
    sampler: dict[str, Any],
    size: tuple[int, int],
    input_dir: Path | None,
) -> list[Image.Image]:
    """Each frame: its prompt's picture (blended along the schedule), then its starting image.

    A latent encoded from a keyframe's still keeps `1 - denoise` of that
    still, as `images.blend_with_source` does for an img2img still, so the
    frames near a keyframe visibly look like it.
    """
    starts = latent_sources(graph, _linked(graph, sampler, "latent_image"), input_dir)
    seed = int(sampler.get("seed") or sampler.get("noise_seed") or 0)
    denoise = float(sampler.get("denoise", 1.0))
    schedule = _schedule(graph, _linked(graph, sampler, "positive"))
    rendered: dict[str, Image.Image] = {}
    fitted: dict[int, Image.Image] = {}

    def picture(prompt: str) -> Image.Image:
        if prompt not in rendered:
            rendered[prompt] = images.render_picture(prompt, seed, *size)
        return rendered[prompt]

    frames = []
    for index, start in enumerate(starts):
        first, second, share = prompt_at(schedule, index)
        frame = picture(first)
        frame = Image.blend(frame, picture(second), share) if share > 0 else frame.copy()
        if start is not None and denoise < 1.0:
            if id(start) not in fitted:
                fitted[id(start)] = ImageOps.fit(start.convert("RGB"), size)
            frame = images.blend_with_source(frame, fitted[id(start)], denoise)
        frames.append(_mark_frame(frame, index))
    return frames


def _mark_frame(frame: Image.Image, index: int) -> Image.Image:
    """A white pixel walking along the bottom row: motion, even where the prompt holds still.

    Without it frames of one prompt are identical and GIF encoders merge them
    into one (Pillow does), which no AnimateDiff output would ever be.
    """
    frame.putpixel((index % frame.width, frame.height - 1), (255, 255, 255))
    return frame


def _schedule(graph: dict[str, Any], node_id: str | None) -> list[tuple[int, str]]:
    """Prompt travel from the sampler's positive input: scheduled, or one prompt for all."""
    if node_id is None or node_id not in graph:
        return [(0, "")]
    node = graph[node_id]
    inputs = node.get("inputs") or {}
    if node.get("class_type") in ("ADE_PromptScheduling", "BatchPromptSchedule"):
        text = inputs.get("prompts", inputs.get("text", ""))
        return parse_schedule(str(text)) or [(0, "")]
    if node.get("class_type") == "CLIPTextEncode":
        return [(0, str(inputs.get("text") or ""))]
    for value in inputs.values():  # e.g. a ControlNet apply between the prompt and the sampler
        if is_link(value) and graph.get(value[0], {}).get("class_type") != "CheckpointLoaderSimple":
            found = _schedule(graph, value[0])
            if found != [(0, "")]:
                return found
    return [(0, "")]


def latent_count(graph: dict[str, Any], node_id: str | None) -> int:
    """How many latents a batch node outputs (the frames a sampler makes from it)."""
    return len(latent_sources(graph, node_id, None))


def latent_sources(
    graph: dict[str, Any], node_id: str | None, input_dir: Path | None
) -> list[Image.Image | None]:
    """What each latent of a batch starts from: an encoded picture, or noise (None).

    Follows the core batch nodes as ComfyUI does: `RepeatLatentBatch`
    repeats, `LatentBatch` appends its second batch to its first; a
    `VAEEncode` of one loaded (and scaled) image is one latent of it.
    """
    if node_id is None or node_id not in graph:
        return [None]
    node = graph[node_id]
    class_type, inputs = node.get("class_type"), node.get("inputs") or {}
    if class_type in ("EmptyLatentImage", "EmptySD3LatentImage"):
        return [None] * max(1, int(inputs.get("batch_size") or 1))
    if class_type == "RepeatLatentBatch":
        repeated = latent_sources(graph, _linked(graph, inputs, "samples"), input_dir)
        return repeated * max(1, int(inputs.get("amount") or 1))
    if class_type == "LatentBatch":
        first = latent_sources(graph, _linked(graph, inputs, "samples1"), input_dir)
        return first + latent_sources(graph, _linked(graph, inputs, "samples2"), input_dir)
    if class_type == "VAEEncode":
        return [_pixels(graph, _linked(graph, inputs, "pixels"), input_dir)]
    if class_type in ("KSampler", "KSamplerAdvanced"):
        return latent_sources(graph, _linked(graph, inputs, "latent_image"), input_dir)
    linked = [value[0] for value in inputs.values() if is_link(value)]
    return latent_sources(graph, linked[0], input_dir) if linked else [None]


def _pixels(graph: dict[str, Any], node_id: str | None, input_dir: Path | None) -> Any:
    """The picture a LoadImage (through any ImageScale) gives, read from the input folder."""
    if input_dir is None or node_id is None or node_id not in graph:
        return None
    node = graph[node_id]
    inputs = node.get("inputs") or {}
    if node.get("class_type") == "LoadImage":
        path = input_dir / str(inputs.get("image"))
        if not path.is_file():
            return None
        with Image.open(path) as image:
            return image.convert("RGB")
    if node.get("class_type") == "ImageScale":
        inner = _pixels(graph, _linked(graph, inputs, "image"), input_dir)
        size = (int(inputs.get("width") or 512), int(inputs.get("height") or 512))
        if inner is None:
            return None
        if inputs.get("crop") == "center":
            return ImageOps.fit(inner, size)
        return inner.resize(size)
    return None


def interpolate(frames: list[Any], multiplier: int) -> list[Any]:
    """What Frame-Interpolation returns: each pair with `multiplier - 1` frames between."""
    if multiplier <= 1 or len(frames) < 2:
        return list(frames)
    result = []
    for first, second in itertools.pairwise(frames):
        result.append(first)
        for step in range(1, multiplier):
            result.append(Image.blend(first, second, step / multiplier))
    result.append(frames[-1])
    return result


def _linked(graph: dict[str, Any], inputs: dict[str, Any], name: str) -> str | None:
    value = inputs.get(name)
    return str(value[0]) if is_link(value) and value[0] in graph else None


# -- node behaviour ---------------------------------------------------------------------------


async def _interpolate(run: PromptRun, node_id: str, class_type: str) -> None:
    width, height = run._output_size()
    count = len(await asyncio.to_thread(frames_for, run.graph, node_id, (8, 8)))
    per_frame = run.spec.step_seconds("sd15", width, height) * INTERPOLATION_SHARE
    for index in range(count):
        if run.interrupted():
            from imgen_tui.sim.execution import PromptInterrupted

            raise PromptInterrupted(node_id, class_type)
        if per_frame:
            await asyncio.sleep(per_frame)
        await run.send(
            "progress",
            {"value": index + 1, "max": count, "prompt_id": run.item.prompt_id, "node": node_id},
        )


async def _save(
    run: PromptRun,
    node_id: str,
    class_type: str,
    inputs: dict[str, Any],
    source: str | None,
) -> dict[str, Any]:
    size = run._sampled_size()
    frames = await asyncio.to_thread(frames_for, run.graph, source, size, run.root / "input")
    if not frames:
        frames = [Image.new("RGB", size, "gray")]
    fps = _fps(run.graph, class_type, inputs)
    folder, prefix = _prefix(inputs.get("filename_prefix"), class_type)
    if class_type == "VHS_VideoCombine":
        return await _vhs(run, node_id, inputs, frames, fps, folder, prefix)
    extension = {"SaveAnimatedWEBP": ".webp", "SaveAnimatedPNG": ".png", "SaveWEBM": ".webm"}.get(
        class_type, ".mp4"
    )
    name = _next_name(run, folder, prefix, f"_{extension}")
    path = run.root / "output" / folder / name
    encoder = {".webp": "WEBP", ".png": "PNG", ".webm": "webm", ".mp4": "mp4"}[extension]
    await asyncio.to_thread(_write, path, frames, fps, encoder)
    return {
        "images": [{"filename": name, "subfolder": folder, "type": "output"}],
        "animated": [len(frames) != 1],
    }


async def _vhs(
    run: PromptRun,
    node_id: str,
    inputs: dict[str, Any],
    frames: list[Any],
    fps: float,
    folder: str,
    prefix: str,
) -> dict[str, Any]:
    """VHS's own progress (one per frame), then its `gifs` item and the sibling workflow PNG."""
    for index in range(len(frames)):
        await run.send(
            "progress",
            {
                "value": index + 1,
                "max": len(frames),
                "prompt_id": run.item.prompt_id,
                "node": node_id,
            },
        )
    fmt = str(inputs.get("format") or "image/gif")
    extension, encoder = {
        "image/gif": (".gif", "GIF"),
        "image/webp": (".webp", "WEBP"),
        "video/webm": (".webm", "webm"),
    }.get(fmt, (".mp4", "mp4"))
    kind = "output" if inputs.get("save_output", True) else "temp"
    name = _next_name(run, folder, prefix, extension)
    path = run.root / kind / folder / name
    await asyncio.to_thread(_write, path, frames, fps, encoder)
    workflow = f"{Path(name).stem}.png"
    await asyncio.to_thread(_write_workflow_png, path.with_name(workflow), frames[0], run.graph)
    return {
        "gifs": [
            {
                "filename": name,
                "subfolder": folder,
                "type": kind,
                "format": fmt,
                "frame_rate": fps,
                "workflow": workflow,
                "fullpath": str(path),
            }
        ]
    }


def _fps(graph: dict[str, Any], class_type: str, inputs: dict[str, Any]) -> float:
    if class_type == "SaveVideo":
        created = _linked(graph, inputs, "video")
        inputs = (graph.get(created) or {}).get("inputs") or {} if created else {}
    value = inputs.get("frame_rate", inputs.get("fps", 8.0))
    return float(value) if isinstance(value, int | float) and value > 0 else 8.0


def _prefix(value: object, class_type: str) -> tuple[str, str]:
    """(subfolder, file prefix) as ComfyUI splits `ad/gen2`; nothing may climb out."""
    text = str(value or ("AnimateDiff" if class_type == "VHS_VideoCombine" else "ComfyUI"))
    parts = [re.sub(r"[^A-Za-z0-9_.-]", "_", part) for part in text.split("/") if part]
    parts = [part for part in parts if part not in (".", "..")] or ["ComfyUI"]
    return "/".join(parts[:-1]), parts[-1]


def _next_name(run: PromptRun, folder: str, prefix: str, suffix: str) -> str:
    """`prefix_00001_.webp` for core, `prefix_00001.gif` for VHS (as recorded)."""
    key = f"{folder}/{prefix}"
    counter = run.memory.counters.get(key, 0) + 1
    run.memory.counters[key] = counter
    return f"{prefix}_{counter:05}{suffix}"


def _write(path: Path, frames: list[Any], fps: float, encoder: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(frames, fps, encoder))


def encode(frames: list[Any], fps: float, encoder: str) -> bytes:
    """An animated WEBP/PNG/GIF through Pillow, or an MP4 (h264) / WebM (vp9) through PyAV."""
    if encoder in ("WEBP", "PNG", "GIF"):
        buffer = io.BytesIO()
        options: dict[str, Any] = {"quality": 80} if encoder == "WEBP" else {}
        frames[0].save(
            buffer,
            encoder,
            save_all=True,
            append_images=frames[1:],
            duration=round(1000 / fps),
            loop=0,
            **options,
        )
        return buffer.getvalue()
    from fractions import Fraction

    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=encoder) as container:
        codec = "libx264" if encoder == "mp4" else "libvpx-vp9"
        stream: Any = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        width, height = frames[0].size
        width, height = width - width % 2, height - height % 2  # yuv420p wants even sides
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for picture in frames:
            even = picture.crop((0, 0, width, height))
            frame: Any = av.VideoFrame.from_image(even)  # type: ignore[no-untyped-call]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def _write_workflow_png(path: Path, first: Image.Image, graph: dict[str, Any]) -> None:
    path.write_bytes(images.encode_png(first, graph, None))
