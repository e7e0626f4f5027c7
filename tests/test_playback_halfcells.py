"""Half-cell playback draws each frame's strips once per size, then replays them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from PIL import Image
from textual.app import App, ComposeResult

from imgen_tui.ui.widgets import halfcell_picture
from imgen_tui.ui.widgets.halfcell_picture import HalfcellPicture


class _OnePicture(App[None]):
    def compose(self) -> ComposeResult:
        yield HalfcellPicture(id="picture")


@pytest.fixture
def draws(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    real = halfcell_picture.half_cell_strips

    def counting(*args: Any) -> Any:
        calls.append(args[1])
        return real(*args)

    monkeypatch.setattr(halfcell_picture, "half_cell_strips", counting)
    return calls


def test_a_second_loop_draws_no_strips_again(draws: list[Any]) -> None:
    frames = [Image.new("RGB", (32, 24), (60 * index, 80, 90)) for index in range(3)]

    async def run() -> None:
        async with _OnePicture().run_test(size=(40, 12)) as pilot:
            widget = pilot.app.query_one(HalfcellPicture)
            for frame in frames + frames:
                widget.image = frame
                for _ in range(400):
                    if widget.ready:
                        break
                    await asyncio.sleep(0.01)
                assert widget.ready
            assert len(draws) == 3

    asyncio.run(run())
