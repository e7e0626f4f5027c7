"""`e` on the keyframe screen: the video and the keyframe stills, copied to a folder.

Blocking file work; the screen runs it in a thread. Names say what each file
is (`video.webp`, `keyframe-01-frame-000.png`), the originals are copied byte
for byte with their sidecars, so the folder stands on its own.
"""

from __future__ import annotations

from pathlib import Path

from imgen_tui.flows.keyframes import KeyframeSlot
from imgen_tui.store.files import safe_name, write_atomic
from imgen_tui.store.records import ImageRecord


def export_video(
    video: ImageRecord | None, keyframes: list[KeyframeSlot], destination: Path
) -> list[Path]:
    """Write the video (if rendered) and every locked keyframe still; returns the files."""
    if video is None and not any(slot.locked for slot in keyframes):
        raise ValueError("nothing to export yet: lock a keyframe still or render the video first")
    destination.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if video is not None:
        written += _copy(video, destination / f"video{video.path.suffix}")
    for number, slot in enumerate(keyframes, start=1):
        if slot.still is None:
            continue
        name = (
            f"keyframe-{number:02d}-frame-{slot.frame:03d}-{safe_name(slot.description, limit=30)}"
        )
        written += _copy(slot.still, destination / f"{name}{slot.still.path.suffix}")
    return written


def _copy(image: ImageRecord, target: Path) -> list[Path]:
    write_atomic(target, image.path.read_bytes())
    sidecar = target.with_suffix(".json")
    write_atomic(sidecar, image.sidecar_path.read_bytes())
    return [target, sidecar]
