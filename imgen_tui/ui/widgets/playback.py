"""Playing an animated output in the lightbox: frames decoded once, then only switched.

The frames are decoded and scaled in a thread when the video opens and kept
as the same picture objects for every loop, so a renderer that caches by
picture (Sixel encodes each once) replays them without re-encoding; the
timer only moves the frame index.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from textual.timer import Timer

from imgen_tui.store.animation import frames_of
from imgen_tui.store.errors import CorruptImage


def _decode_frames(path: Path, max_side: int) -> list[Image.Image]:
    """Every frame, scaled; a file that stops short or holds no frame is a CorruptImage."""
    frames = []
    try:
        for frame in frames_of(path):
            frame.thumbnail((max_side, max_side))
            frames.append(frame)
    except CorruptImage:
        raise
    except Exception as error:  # Pillow's OSError, PyAV's FFmpegError: both mean a bad file
        raise CorruptImage(f"frame {len(frames) + 1} does not decode: {error}") from error
    if not frames:
        raise CorruptImage("it holds no frame that decodes")
    return frames


async def load_frames(path: Path, max_side: int) -> list[Image.Image]:
    return await asyncio.to_thread(_decode_frames, path, max_side)


@dataclass
class Playback:
    """Where a looping video is: its frames, rate, the frame shown and whether it plays."""

    frames: list[Image.Image]
    fps: float
    index: int = 0
    playing: bool = True
    timer: Timer | None = None
    shown: int = 0  # frames put on screen: what a test (or the bench) counts

    def step(self, delta: int) -> Image.Image:
        self.index = (self.index + delta) % len(self.frames)
        self.shown += 1
        return self.frames[self.index]
