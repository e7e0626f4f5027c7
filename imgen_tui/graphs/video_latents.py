"""Keyframe images as the render's starting latents: img2img, frame by frame.

A keyframe's still says how its moment looks; IP-Adapter (the subject
reference) only says who is in it. Starting the sampler from the stills
themselves, with denoise below 1, makes the frames around each keyframe keep
its composition and colours while AnimateDiff and prompt travel still move
between them.

Only core classes that every ComfyUI has (and the v2 recordings list):
`LoadImage` → `ImageScale` (to the render size, centre-cropped) → `VAEEncode`
once per still, then each run of frames nearest to one keyframe is that
latent repeated (`RepeatLatentBatch`, at most 64 per node) and the runs are
joined in frame order by a `LatentBatch` chain. Frames switch to the next
still halfway between two keyframes; the motion model smooths the seam. A
`LatentBlend` per frame would cross-fade instead, but it is not in the
recorded object_info and costs two nodes a frame on a 1024-frame timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

#: RepeatLatentBatch's `amount` maximum (recorded spec)
MAX_REPEAT = 64
#: `_meta.title` of a keyframe's LoadImage: the flow finds the files to upload by it
TITLE = "keyframe image at frame"

Add = Callable[..., list[Any]]


def nearest_runs(length: int, frames: Sequence[int]) -> list[tuple[int, int]]:
    """(index into `frames`, run length) in frame order: each frame takes the nearest keyframe.

    A frame exactly halfway between two keyframes takes the earlier one; the
    runs add up to `length`.
    """
    if not frames:
        return []
    order = sorted(range(len(frames)), key=lambda index: frames[index])
    runs: list[tuple[int, int]] = []
    for frame in range(length):
        nearest = min(order, key=lambda index: (abs(frames[index] - frame), frames[index]))
        if runs and runs[-1][0] == nearest:
            runs[-1] = (nearest, runs[-1][1] + 1)
        else:
            runs.append((nearest, 1))
    return runs


def keyframe_latents(
    add: Add,
    images: Sequence[tuple[int, str]],
    *,
    length: int,
    width: int,
    height: int,
    vae: list[Any],
) -> tuple[list[Any], list[str]]:
    """The latent batch of `length` frames from (frame, image name) pairs; and the LoadImage ids.

    `add(class_type, _meta=..., **inputs)` adds a node and returns its link.
    The image names are what the LoadImage nodes read; the scheduler uploads
    the files and writes the node's own names at post time.
    """
    encoded: list[list[Any]] = []
    loads: list[str] = []
    for frame, name in images:
        load = add("LoadImage", image=name, _meta={"title": f"{TITLE} {frame}"})
        loads.append(str(load[0]))
        scaled = add(
            "ImageScale",
            image=load,
            upscale_method="bilinear",
            width=width,
            height=height,
            crop="center",
        )
        encoded.append(add("VAEEncode", pixels=scaled, vae=vae))
    batch: list[Any] | None = None
    for index, count in nearest_runs(length, [frame for frame, _ in images]):
        while count > 0:
            amount = min(count, MAX_REPEAT)
            count -= amount
            part = add("RepeatLatentBatch", samples=encoded[index], amount=amount)
            batch = part if batch is None else add("LatentBatch", samples1=batch, samples2=part)
    assert batch is not None  # images is not empty and length >= 1
    return batch, loads


def keyframe_loads(graph: dict[str, Any]) -> dict[str, int]:
    """LoadImage node id -> the frame of the keyframe whose still it reads."""
    found: dict[str, int] = {}
    for node_id, node in graph.items():
        title = str((node.get("_meta") or {}).get("title", ""))
        if node.get("class_type") == "LoadImage" and title.startswith(TITLE):
            found[node_id] = int(title.removeprefix(TITLE).strip())
    return found
