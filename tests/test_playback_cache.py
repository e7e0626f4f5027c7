"""Playback replays cached encodings: a second loop over a video's frames encodes nothing new."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from PIL import Image
from textual.app import App, ComposeResult
from textual.geometry import Size

from imgen_tui.ui.widgets import sixel_picture
from imgen_tui.ui.widgets.sixel_picture import SixelPicture


class _OnePicture(App[None]):
    def compose(self) -> ComposeResult:
        yield SixelPicture(id="picture")


def _frames(count: int) -> list[Image.Image]:
    return [
        Image.new("RGB", (64, 48), (40 * index, 90, 200 - 40 * index)) for index in range(count)
    ]


dithered: list[bool] = []  # beside each box in `encodes`: whether it was dithered


@pytest.fixture
def encodes(monkeypatch: pytest.MonkeyPatch) -> list[Size]:
    """Every box the Sixel encoder is asked to encode for, in order."""
    calls: list[Size] = []
    dithered.clear()
    real = sixel_picture.encode

    def counting(picture: Image.Image, box: Size, background: Any, dither: bool = True) -> Any:
        calls.append(box)
        dithered.append(dither)
        return real(picture, box, background, dither)

    monkeypatch.setattr(SixelPicture, "encode_picture", staticmethod(counting))
    return calls


async def _show(widget: SixelPicture, frame: Image.Image) -> None:
    widget.image = frame
    for _ in range(400):
        if widget._encoded_for == (widget._generation, widget.size) and widget.sixel:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the frame was never encoded")


def test_a_second_loop_encodes_no_frame_again(encodes: list[Size]) -> None:
    frames = _frames(3)

    async def run() -> None:
        async with _OnePicture().run_test(size=(40, 12)) as pilot:
            widget = pilot.app.query_one(SixelPicture)
            for frame in frames:
                await _show(widget, frame)
            first_loop = len(encodes)
            replayed = []
            for frame in frames + frames:
                await _show(widget, frame)
                replayed.append(widget.sixel)
            assert first_loop == 3
            assert len(encodes) == 3, "a replayed frame was encoded again"
            assert replayed[0] != replayed[1] and replayed[0] == replayed[3]

    asyncio.run(run())


def test_a_resize_re_encodes_at_the_new_size_then_caches_that(encodes: list[Size]) -> None:
    frames = _frames(2)

    async def run() -> None:
        async with _OnePicture().run_test(size=(40, 12)) as pilot:
            widget = pilot.app.query_one(SixelPicture)
            for frame in frames:
                await _show(widget, frame)
            await pilot.resize_terminal(60, 18)
            await pilot.pause()
            for frame in frames + frames:
                await _show(widget, frame)
            sizes = {box for box in encodes}
            assert len(sizes) == 2, sizes
            assert len(encodes) == 4, encodes  # each frame once per size

    asyncio.run(run())


def test_a_one_frame_video_is_encoded_once(encodes: list[Size]) -> None:
    (frame,) = _frames(1)

    async def run() -> None:
        async with _OnePicture().run_test(size=(40, 12)) as pilot:
            widget = pilot.app.query_one(SixelPicture)
            for _ in range(3):
                await _show(widget, frame)
            assert len(encodes) == 1

    asyncio.run(run())


def test_a_videos_frames_are_encoded_undithered_and_a_still_dithered(encodes: list[Size]) -> None:
    """Diffusion noise differs frame to frame: dithered, playback sent 3.8 MB/s, not 0.9."""
    frames = _frames(3)
    still = Image.linear_gradient("L").convert("RGB").resize((64, 48))

    async def run() -> None:
        async with _OnePicture().run_test(size=(40, 12)) as pilot:
            widget = pilot.app.query_one(SixelPicture)
            widget.prepare(frames)
            await _show(widget, frames[0])
            for frame in frames:
                await _show(widget, frame)
            assert dithered == [False] * 3
            await _show(widget, still)
            assert dithered == [False] * 3 + [True]

    asyncio.run(run())


def test_a_preview_is_encoded_undithered_and_the_picture_after_it_dithered(
    encodes: list[Size],
) -> None:
    """A sampler's frame passes in a fraction of a second: dithering it was wasted work."""
    preview, final = _frames(2)

    async def run() -> None:
        async with _OnePicture().run_test(size=(40, 12)) as pilot:
            widget = pilot.app.query_one(SixelPicture)
            widget.show_preview(preview)
            for _ in range(400):
                if widget._encoded_for == (widget._generation, widget.size):
                    break
                await asyncio.sleep(0.01)
            assert dithered == [False]
            await _show(widget, final)
            assert dithered == [False, True]

    asyncio.run(run())
