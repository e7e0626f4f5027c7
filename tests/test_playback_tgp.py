"""TGP playback uploads each frame once: later loops only switch which image id the cells show."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from PIL import Image
from textual.app import App, ComposeResult

from imgen_tui.ui.widgets import tgp_picture
from imgen_tui.ui.widgets.tgp_picture import TGPPicture


class _OnePicture(App[None]):
    def compose(self) -> ComposeResult:
        yield TGPPicture(id="picture")


def _frames(count: int) -> list[Image.Image]:
    return [
        Image.new("RGB", (64, 48), (40 * index, 90, 200 - 40 * index)) for index in range(count)
    ]


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every TGP command the widget writes, as its keys (plus whether it carried pixels)."""
    written: list[dict[str, Any]] = []

    def record(payload: str = "", **keys: int | str) -> None:
        written.append({**keys, "pixels": bool(payload)})

    monkeypatch.setattr(tgp_picture, "send_tgp", record)
    return written


def _uploads(commands: list[dict[str, Any]]) -> list[int]:
    """Image ids whose pixels were transmitted (first chunk of each: a=t/a=T or none)."""
    ids: list[int] = []
    for command in commands:
        if command["pixels"] and command.get("a", "t") in ("t", "T") and command["i"] not in ids:
            ids.append(int(command["i"]))
    return ids


async def _show(pilot: Any, widget: TGPPicture, frame: Image.Image) -> None:
    widget.image = frame
    for _ in range(400):
        await pilot.pause()
        if widget.delivered:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the frame never reached the terminal")


def test_a_second_loop_uploads_no_pixels(commands: list[dict[str, Any]]) -> None:
    frames = _frames(3)

    async def run() -> None:
        async with _OnePicture().run_test(size=(40, 12)) as pilot:
            widget = pilot.app.query_one(TGPPicture)
            for frame in frames:
                await _show(pilot, widget, frame)
            assert len(_uploads(commands)) == 3
            pixel_commands = sum(command["pixels"] for command in commands)
            shown_ids = []
            for frame in frames + frames:
                await _show(pilot, widget, frame)
                shown_ids.append(widget._renderable.terminal_image_id)  # type: ignore[union-attr]
            assert sum(command["pixels"] for command in commands) == pixel_commands
            assert len(_uploads(commands)) == 3
            assert shown_ids[:3] == shown_ids[3:] == _uploads(commands)

    asyncio.run(run())
