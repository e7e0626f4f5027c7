"""A grid cell closed while its preview or thumbnail is still decoding leaves the app running.

Seen in a full run: the funnel closed while a live preview decoded, and the
cell then asked for its picture widget, already gone (NoMatches, a worker
failure that stopped the app).
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from textual.app import App, ComposeResult

from imgen_tui.flows.rounds import Cell
from imgen_tui.ui.widgets import grid
from imgen_tui.ui.widgets.grid import ThumbCell


class _OneCell(App[None]):
    def compose(self) -> ComposeResult:
        yield ThumbCell("halfcell", 0)


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("what", ["preview", "thumbnail"])
async def test_a_cell_removed_mid_decode_does_not_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(*args: Any, **kwargs: Any) -> Image.Image:
        started.set()
        await release.wait()
        return Image.new("RGB", (64, 64), (200, 40, 40))

    monkeypatch.setattr(grid, "decode_preview", slow)
    monkeypatch.setattr(grid, "load_picture", slow)
    app = _OneCell()
    async with app.run_test(size=(40, 20)) as pilot:
        cell = app.query_one(ThumbCell)
        cell.show(Cell(job_id="j", seed=1), 1)
        if what == "preview":
            cell.show_preview(_jpeg())
        else:
            cell._shown = tmp_path / "thumb.jpg"
            cell.run_worker(cell._load_thumb(tmp_path / "thumb.jpg"))
        await asyncio.wait_for(started.wait(), 5)
        await cell.query_one(".picture").remove()  # the screen going away takes the children first
        release.set()
        await pilot.pause(0.2)
        assert app.is_running and app._exception is None
