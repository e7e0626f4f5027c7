"""What the grid repaints, and from where, while drafts stream and the cursor moves.

- A caption is rewritten only when its text changes: most progress events move
  neither the ten-step bar nor the whole-second ETA, and each rewrite was a frame.
- A finished draft is painted from the thumbnail the store just decoded, with
  the file's own pixels; a reopened session reads the files.
- The cursor's border goes out in its own frame and the feedback line (the
  cursor's number and seed) follows: one frame over both spanned the grid.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageChops
from textual.app import App, ComposeResult
from textual.widgets import Static

from imgen_tui.flows.rounds import Cell
from imgen_tui.store.fresh_thumbnails import FRESH
from imgen_tui.ui.widgets.grid import ThumbCell, ThumbGrid
from tests.pilot_helpers import start_drafts, until
from tests.test_ui_funnel import SIZE, all_done, current_cells, demo_app


class _OneCell(App[None]):
    def compose(self) -> ComposeResult:
        yield ThumbCell("halfcell", 0)


async def test_a_caption_is_rewritten_only_when_what_it_says_changes() -> None:
    app = _OneCell()
    async with app.run_test(size=(40, 20)) as pilot:
        cell_widget = app.query_one(ThumbCell)
        caption = cell_widget.query_one(".caption", Static)
        updates: list[str] = []
        original = caption.update

        def counting(content: object = "", *, layout: bool = True) -> None:
            updates.append(str(content))
            original(content, layout=layout)  # type: ignore[arg-type]

        caption.update = counting  # type: ignore[method-assign]
        cell = Cell(job_id="j", seed=1, state="running", node_id="gpu-a", total=20, eta=4.2)
        for step in (6, 7):  # 30 % and 35 %: the same three blocks, the same "4s"
            cell.step = step
            cell_widget.show(cell, 1)
        assert len(updates) == 1
        cell.step = 8  # 40 %: a fourth block
        cell_widget.show(cell, 1)
        cell.eta = 2.9
        cell_widget.show(cell, 1)
        cell.verdict = "picked"
        cell_widget.show(cell, 1)
        cell.verdict = "none"  # back again: the badge goes
        cell_widget.show(cell, 1)
        assert len(updates) == 5 and "picked" in updates[3] and "picked" not in updates[4]
        await pilot.pause()
        assert "███░" in updates[0] and "████░" in updates[1] and " 3s" in updates[2]

        cell.notice = "gpu-a is down: waiting for a node"  # its node died mid-job
        cell_widget.show(cell, 1)
        cell_widget.show(cell, 1)
        cell.notice, cell.state = None, "cancelled"
        cell_widget.show(cell, 1)
        assert len(updates) == 7
        assert "gpu-a is down" in updates[5] and "cancelled" in updates[6]


def _same_pixels(picture: Image.Image, path: Path) -> bool:
    with Image.open(path) as on_disk:
        return (
            ImageChops.difference(picture.convert("RGB"), on_disk.convert("RGB")).getbbox() is None
        )


async def test_finished_drafts_paint_from_memory_and_a_reopened_session_from_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From memory the picture is handed over as the JobDone is handled, with no worker
    to wait for (a turn of a busy loop); from a file it loads in a worker's thread."""
    loads: list[Path] = []
    load_in_worker = ThumbCell._load_thumb

    async def counted(widget: ThumbCell, path: Path) -> None:
        loads.append(path)
        await load_in_worker(widget, path)

    monkeypatch.setattr(ThumbCell, "_load_thumb", counted)
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        widgets = list(screen.query(ThumbCell))
        await until(pilot, lambda: all(w.thumb_shown is not None for w in widgets))
        for widget in widgets:
            assert widget.cell is not None and widget.cell.image is not None
            thumb = widget.cell.image.thumb_path
            shown = widget.query_one(".picture").image  # type: ignore[attr-defined]
            kept = FRESH.get(thumb)
            assert kept is not None and shown is kept
            assert _same_pixels(kept, thumb)
        assert loads == []
        thumbs = [cell.image.thumb_path for cell in current_cells(screen) if cell.image]
    for thumb in thumbs:
        FRESH.forget(thumb)  # a new process remembers nothing

    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        await pilot.press("tab", "enter")  # the newest session
        await until(pilot, lambda: bool(app.screen.query(ThumbCell)))
        widgets = list(app.screen.query(ThumbCell))
        await until(pilot, lambda: all(w.thumb_shown is not None for w in widgets))
        for widget in widgets:
            assert widget.thumb_shown is not None and FRESH.get(widget.thumb_shown) is None
            shown = widget.query_one(".picture").image  # type: ignore[attr-defined]
            assert shown is not None and _same_pixels(shown, widget.thumb_shown)
        assert sorted(loads) == sorted(thumbs)  # each file read once, in a worker


async def test_the_feedback_line_follows_the_cursor_back_and_forth(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        grid = screen.query_one(ThumbGrid)
        grid.focus()
        feedback = screen.query_one("#feedback", Static)
        for keys, cursor in ((("right",) * 3, 3), (("left",), 2), (("down",), 2 + grid.columns)):
            await pilot.press(*keys)
            await until(pilot, lambda cursor=cursor: grid.cursor == cursor)  # type: ignore[misc]
            said = f"#{cursor + 1} seed {current_cells(screen)[cursor].seed}"
            await until(pilot, lambda said=said: said in str(feedback.render()))  # type: ignore[misc]
