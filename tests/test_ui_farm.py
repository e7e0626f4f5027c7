"""The app when the farm misbehaves or the operator cancels: it stops what it says it stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import DataTable, Label, Static

from imgen_tui.scheduler.jobs import JobState
from imgen_tui.ui.screens.modals import ConfirmScreen
from imgen_tui.ui.screens.nodes import NodesScreen
from imgen_tui.ui.screens.queue import QueueScreen
from imgen_tui.ui.widgets.grid import ThumbCell, ThumbGrid
from tests.pilot_helpers import notices, start_drafts, until
from tests.test_ui_funnel import SIZE, all_done, current_cells, demo_app, top


async def test_cancelling_a_running_upscale_stops_it_on_the_node(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        farm, scheduler = app.engine.sim_farm, app.engine.scheduler
        assert farm is not None and scheduler is not None
        premium = farm.node("gpu-premium")
        premium.spec = premium.spec.model_copy(update={"upscale_seconds": 60.0})  # a long upscale
        await pilot.press("U")
        upscale = current_cells(screen)[-1]
        job = scheduler.jobs[upscale.job_id]
        await until(pilot, lambda: job.state == JobState.RUNNING)
        await until(pilot, lambda: premium.queue_depth == 1)

        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        queue = top(app).query_one(DataTable)
        await until(pilot, lambda: queue.row_count == 1)
        await pilot.press("d")
        await until(pilot, lambda: upscale.state == "cancelled")
        await until(pilot, lambda: premium.queue_depth == 0, seconds=5)  # gone from the node
        runtime = scheduler.nodes["gpu-premium"]
        await asyncio.sleep(0.5)
        assert runtime.others_queued() == 0


async def test_a_dead_farm_says_so_in_the_cells(tmp_path: Path) -> None:
    app = demo_app(tmp_path, speed=0.5)  # slow: most drafts are still waiting
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        farm, scheduler = app.engine.sim_farm, app.engine.scheduler
        assert farm is not None and scheduler is not None
        await until(pilot, lambda: any(c.state == "running" for c in current_cells(screen)))
        for node in farm.nodes:
            await node.kill()
        await until(pilot, lambda: all(r.state == "down" for r in scheduler.nodes.values()))
        waiting = [c for c in current_cells(screen) if c.state in ("queued", "running")]
        assert waiting
        await until(pilot, lambda: all(c.notice for c in waiting), seconds=10)
        grid = screen.query_one(ThumbGrid)
        captions = [
            str(widget.query_one(".caption").render())
            for widget in grid.query(ThumbCell)
            if widget.cell in waiting
        ]
        assert captions and all("down" in caption for caption in captions)
        assert "waiting" not in " ".join(captions).replace("waiting:", "")
        feedback = str(screen.query_one("#feedback").render())
        assert "down" in feedback


async def test_f2_and_f3_replace_each_other_and_long_states_fit(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_drafts(pilot)
        depth = len(app.screen_stack)
        await pilot.press("f3", "f2", "f3", "f2")
        await until(pilot, lambda: isinstance(app.screen, NodesScreen))
        assert len(app.screen_stack) == depth + 1
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)

        scheduler = app.engine.scheduler
        assert scheduler is not None
        runtime = scheduler.nodes["gpu-draft"]
        reason = "unreachable: connection refused by 127.0.0.1:1 after three tries " * 2
        runtime.state, runtime.state_reason = "down", reason
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, NodesScreen))
        table = top(app).query_one(DataTable)
        await until(pilot, lambda: table.row_count == 4)
        await pilot.pause(0.6)  # the next refresh
        assert table.virtual_size.width <= 100  # every column on screen
        row = [str(cell) for cell in table.get_row("gpu-draft")]
        assert reason not in " ".join(row) and row[2].endswith("…")
        table.move_cursor(row=table.get_row_index("gpu-draft"))
        detail = top(app).query_one("#row-detail", Static)
        await until(pilot, lambda: reason.strip() in str(detail.render()))


async def test_ctrl_q_asks_with_jobs_running_and_a_and_r_confirm(tmp_path: Path) -> None:
    app = demo_app(tmp_path, speed=0.5)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "20 jobs are still running" in str(app.screen.query_one(Label).render())
        await pilot.press("n")
        assert app.screen is screen and app.is_running

        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        queue = top(app).query_one(DataTable)
        await until(pilot, lambda: queue.row_count > 0)
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        assert isinstance(top(app), QueueScreen) and queue.row_count > 0
        assert not any(c.state == "cancelled" for c in current_cells(screen))
        await pilot.press("A")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: queue.row_count == 0)
        assert any("Cancelled all" in text for text in notices(app))
        await pilot.press("ctrl+q")  # nothing running: quits at once
        await until(pilot, lambda: not app.is_running)
