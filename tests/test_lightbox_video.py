"""A video in the lightbox: Sixel frames encoded ahead, closing mid-encode, a truncated file.

The video is the bench's (16 frames, 512², animated WEBP) kept by the real
store; the lightbox opens it over the demo app as it opens any render.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from textual.geometry import Size

from imgen_tui.flows.rounds import Cell
from imgen_tui.ui.app import ImgenApp, make_app
from imgen_tui.ui.bench_playback import FRAMES, stored_video
from imgen_tui.ui.screens.home import HomeScreen
from imgen_tui.ui.screens.lightbox import LightboxScreen
from imgen_tui.ui.widgets import sixel_picture
from imgen_tui.ui.widgets.sixel_picture import SixelPicture
from tests.pilot_helpers import notices, until

SIZE = (120, 40)


@pytest.fixture
def encodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The id of every picture the Sixel encoder is asked for, in order; each takes 20 ms more."""
    calls: list[int] = []
    real = sixel_picture.encode

    def slow(picture: Image.Image, box: Size, background: Any, dither: bool = True) -> Any:
        calls.append(id(picture))
        time.sleep(0.02)  # in the encoder's thread, as a slow link or a big frame would be
        return real(picture, box, background, dither)

    monkeypatch.setattr(SixelPicture, "encode_picture", staticmethod(slow))
    return calls


def _app(data_dir: Path, renderer: str = "sixel") -> ImgenApp:
    return make_app(None, demo=True, data_dir=data_dir, graphics=renderer, demo_speed=0.0)  # type: ignore[arg-type]


@pytest.fixture
async def video(tmp_path: Path) -> Cell:
    return await stored_video(tmp_path / "video")


async def _open(pilot: Any, cell: Cell) -> LightboxScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, HomeScreen))
    lightbox = LightboxScreen([cell], 0, "sixel")
    await pilot.app.push_screen(lightbox)
    await until(pilot, lambda: lightbox.playback is not None)
    return lightbox


async def test_paused_on_the_first_frame_every_frame_is_still_encoded_ahead_once(
    tmp_path: Path, video: Cell, encodes: list[int]
) -> None:
    app, cell = _app(tmp_path / "app"), video
    async with app.run_test(size=SIZE) as pilot:
        lightbox = await _open(pilot, cell)
        await pilot.press("s")  # paused at once: nothing is due, yet the frames are made ready
        playback = lightbox.playback
        assert playback is not None and not playback.playing
        frames = {id(frame) for frame in playback.frames}
        await until(pilot, lambda: frames <= set(encodes), seconds=20)
        assert encodes[0] == id(playback.frames[0]), "the frame shown first is encoded first"
        assert len(encodes) == FRAMES, "a frame was encoded twice"
        for _ in range(FRAMES + 3):  # stepping through, past the end: all from what was made
            await pilot.press("full_stop")
        assert playback.index == 3
        await until(pilot, lambda: lightbox.query_one(SixelPicture).delivered)
        assert len(encodes) == FRAMES
        await pilot.press("comma", "comma", "comma", "comma")  # and back, before the start
        assert playback.index == FRAMES - 1
        await pilot.press("s")
        await until(pilot, lambda: playback.index != FRAMES - 1, seconds=5)  # plays again
        assert len(encodes) == FRAMES


async def test_closing_while_frames_are_encoded_leaves_the_app_working_and_it_opens_again(
    tmp_path: Path, video: Cell, encodes: list[int]
) -> None:
    app, cell = _app(tmp_path / "app"), video
    async with app.run_test(size=SIZE) as pilot:
        lightbox = await _open(pilot, cell)
        await pilot.press("escape")  # the first frames are still in the encoder
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        during = len(encodes)
        await pilot.pause(0.5)
        assert len(encodes) <= during + 1, "frames were still encoded for a closed lightbox"
        assert lightbox.playback is None or not lightbox.is_attached
        again = await _open(pilot, cell)  # back in: it plays from the start
        playback = again.playback
        assert playback is not None
        await until(pilot, lambda: playback.shown >= 3, seconds=20)
        assert not [n for n in notices(app) if "cannot" in n]


@pytest.mark.parametrize("renderer", ["sixel", "halfcell"])
async def test_a_truncated_video_says_which_file_and_the_app_goes_on(
    tmp_path: Path, video: Cell, renderer: str
) -> None:
    cell = video
    assert cell.image is not None
    data = cell.image.path.read_bytes()
    cell.image.path.write_bytes(data[: len(data) // 3])  # a copy that stopped short
    app = _app(tmp_path / "app", renderer)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        lightbox = LightboxScreen([cell], 0, renderer)
        await app.push_screen(lightbox)
        name = cell.image.path.name
        await until(pilot, lambda: any(name in n for n in notices(app)), seconds=10)
        (message,) = [n for n in notices(app) if name in n]
        assert "cannot be shown" in message and "make it again" in message
        assert "Traceback" not in message and message.count(". ") == 0  # one sentence
        assert lightbox.playback is None
        await pilot.press("escape")  # the lightbox still closes as ever
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        cell.image.path.write_bytes(data)  # made again: it opens and plays
        again = LightboxScreen([cell], 0, renderer)
        await app.push_screen(again)
        await until(pilot, lambda: again.playback is not None, seconds=10)


@pytest.mark.parametrize("renderer", ["sixel", "halfcell"])
async def test_quitting_while_the_lightbox_loads_is_harmless(
    tmp_path: Path, video: Cell, renderer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app closes while the lightbox still reads the video's prompt: no error.

    Closing removes the screen's widgets before it stops the screen's work, so
    a load that ended in between found no `#about` and failed the app (the
    full suite hit it once, when a test left just after playback had started).
    """
    from imgen_tui.ui.screens import lightbox as lightbox_module

    asked = asyncio.Event()
    lightbox = LightboxScreen([video], 0, renderer)

    async def prompt_once_closing(sidecar: Path) -> str:
        asked.set()
        about = lightbox.query_one("#about")
        # Answers just as the app takes the widgets away (no event says so: polled).
        while about.is_attached:  # noqa: ASYNC110
            await asyncio.sleep(0)
        return "a red fox"

    monkeypatch.setattr(lightbox_module, "read_prompt", prompt_once_closing)
    app = _app(tmp_path / "app", renderer)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        await app.push_screen(lightbox)
        await until(pilot, lambda: asked.is_set(), seconds=10)
    assert app._exception is None


@pytest.mark.parametrize("renderer", ["sixel", "halfcell"])
async def test_closing_the_lightbox_while_its_video_loads_is_harmless(
    tmp_path: Path, video: Cell, renderer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Escape before the load has finished: its work stops with the screen, and the
    lightbox opens again and plays."""
    from imgen_tui.ui.screens import lightbox as lightbox_module

    prompt_asked = asyncio.Event()
    closed = asyncio.Event()

    async def slow_prompt(sidecar: Path) -> str:
        prompt_asked.set()
        await closed.wait()  # answers only once the lightbox has gone
        return "a red fox"

    monkeypatch.setattr(lightbox_module, "read_prompt", slow_prompt)
    app = _app(tmp_path / "app", renderer)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        lightbox = LightboxScreen([video], 0, renderer)
        await app.push_screen(lightbox)
        await until(pilot, lambda: prompt_asked.is_set(), seconds=10)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        closed.set()
        await pilot.pause(0.3)
        assert app._exception is None and app.is_running
        again = LightboxScreen([video], 0, renderer)  # and it opens again, and plays
        await app.push_screen(again)
        await until(pilot, lambda: again.playback is not None, seconds=10)
