"""`imgen-tui bench ui`'s playback row: a 16-frame 512² video looping in the lightbox.

The video is made the way the simulator makes one (frames blending between
two keyframe pictures, animated WEBP) and kept by the real store, so the
lightbox opens it as it opens any render. Then for a few seconds the terminal
writes are counted: frames put on screen per second against the video's own
rate, and bytes per second, which is what playback costs over SSH.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from imgen_tui.flows.rounds import Cell
from imgen_tui.sim.images import render_picture
from imgen_tui.sim.video import encode
from imgen_tui.store import NewImage, SessionStore
from imgen_tui.ui.app import make_app
from imgen_tui.ui.bench import SIZE, CountingStdout, Tap, _until, tap_driver
from imgen_tui.ui.graphics import Graphics
from imgen_tui.ui.screens.home import HomeScreen
from imgen_tui.ui.screens.lightbox import LightboxScreen, frame_on_screen

FRAMES = 16
SIDE = 512
FPS = 8.0
SECONDS = 4.0


@dataclass
class PlaybackFigures:
    renderer: str
    frames_per_second: float
    bytes_per_second: float
    fps: float = FPS
    first_frame_seconds: float = 0.0  # opening the lightbox until its first frame is on screen


def _video() -> bytes:
    first = render_picture("a fox asleep in snow", 1, SIDE, SIDE)
    last = render_picture("a fox running", 1, SIDE, SIDE)
    frames = [Image.blend(first, last, index / (FRAMES - 1)) for index in range(FRAMES)]
    return encode(frames, FPS, "WEBP")


async def stored_video(data_dir: Path) -> Cell:
    """The bench video kept by the real store, as a cell the lightbox opens (tests use it too)."""
    store = await SessionStore.open(data_dir)
    try:
        session = await store.create_session("keyframes", "bench playback")
        round_info = await store.add_round(session.id, "full", prompt="a fox")
        await store.add_jobs(round_info.id, [("bench-video", "{}")])
        data = await asyncio.to_thread(_video)
        (record,) = await store.save_images(
            "bench-video",
            [
                NewImage(
                    data=data, seed=1, node_id="bench", seconds=None, parent_id=None,
                    sidecar={"fps": FPS},
                )
            ],
        )  # fmt: skip
    finally:
        await store.close()
    return Cell(job_id="bench-video", seed=1, state="done", image=record)


async def measure_playback(renderer: Graphics, data_dir: Path) -> PlaybackFigures:
    cell = await stored_video(data_dir / "video")
    tap = Tap()
    app = make_app(None, demo=True, data_dir=data_dir / "app", graphics=renderer, demo_speed=0.0)
    app.driver_class = tap_driver(tap)
    figures = PlaybackFigures(renderer, 0.0, 0.0)

    async def scenario(pilot: Any) -> None:
        try:
            await _until(pilot, lambda: isinstance(app.screen, HomeScreen))
            lightbox = LightboxScreen([cell], 0, renderer)
            opened = time.perf_counter()
            await app.push_screen(lightbox)
            await _until(pilot, lambda: lightbox.playback is not None)
            playback = lightbox.playback
            assert playback is not None
            large = lightbox.query_one("#large")
            await _until(pilot, lambda: frame_on_screen(large, playback.frames[playback.index]))
            figures.first_frame_seconds = time.perf_counter() - opened
            await pilot.pause(1.0)  # the first loop: every frame reaches the terminal once
            shown, written, began = playback.shown, tap.total, time.perf_counter()
            await pilot.pause(SECONDS)
            elapsed = time.perf_counter() - began
            figures.frames_per_second = (playback.shown - shown) / elapsed
            figures.bytes_per_second = (tap.total - written) / elapsed
        finally:
            app.exit(0)

    real_stdout = sys.__stdout__
    sys.__stdout__ = CountingStdout(tap, real_stdout)  # type: ignore[misc,assignment]
    try:
        await app.run_async(headless=False, size=SIZE, auto_pilot=scenario)
    finally:
        sys.__stdout__ = real_stdout  # type: ignore[misc]
    return figures
