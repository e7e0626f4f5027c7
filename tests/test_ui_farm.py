"""The app when the farm misbehaves or the operator cancels: it stops what it says it stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import DataTable

from imgen_tui.scheduler.jobs import JobState
from imgen_tui.ui.screens.queue import QueueScreen
from imgen_tui.ui.widgets.grid import ThumbCell, ThumbGrid
from tests.pilot_helpers import start_drafts, until
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
