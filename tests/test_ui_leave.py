"""Leaving a flow's screen with jobs running asks first; no keeps everything, yes cancels them."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Label

from imgen_tui.scheduler.jobs import JobState
from imgen_tui.ui.screens.home import HomeScreen
from imgen_tui.ui.screens.modals import ConfirmScreen
from imgen_tui.ui.widgets.round_view import RoundView
from tests.pilot_helpers import start_drafts, until
from tests.test_ui_explorer import DETAIL, SIZE, current, demo_app, highlight, open_explorer
from tests.test_ui_funnel import current_cells
from tests.test_ui_funnel import demo_app as funnel_app


async def test_the_explorer_asks_no_keeps_the_sweep_yes_cancels_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path, monkeypatch, speed=0.5)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_explorer(pilot)
        await highlight(pilot, screen, DETAIL)
        await pilot.press("s")
        await until(pilot, lambda: bool(current(screen).cells))
        screen.query_one(RoundView).grid.focus()
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "jobs are still running" in str(app.screen.query_one(Label).render())
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen)
        assert not any(cell.state == "cancelled" for cell in current(screen).cells)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        scheduler = app.engine.scheduler
        assert scheduler is not None
        jobs = [scheduler.jobs[cell.job_id] for cell in current(screen).cells]
        await until(pilot, lambda: all(job.state.finished for job in jobs))
        assert any(job.state == JobState.CANCELLED for job in jobs)


async def test_the_funnel_leaves_at_once_when_nothing_runs(tmp_path: Path) -> None:
    app = funnel_app(tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, lambda: all(c.state == "done" for c in current_cells(screen)))
        screen.query_one(RoundView).grid.focus()
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
