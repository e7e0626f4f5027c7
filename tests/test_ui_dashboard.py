"""The GPU dashboard (F2) in the app: a node going down and up, and why an idle node is idle."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Sparkline, Static

from imgen_tui.ui.app import ImgenApp
from imgen_tui.ui.screens.nodes import NodesScreen
from tests.pilot_helpers import until
from tests.test_farm_stats import sdxl_jobs
from tests.test_ui_funnel import demo_app


def cell(app: ImgenApp, node_id: str, column: str) -> str:
    table = app.screen.query_one(DataTable)
    return str(table.get_cell(node_id, column))


def detail(app: ImgenApp) -> str:
    return str(app.screen.query_one("#row-detail", Static).render())


async def test_a_node_going_down_and_up_and_an_idle_node_beside_waiting_sdxl_jobs(
    tmp_path: Path,
) -> None:
    app = demo_app(tmp_path, speed=1.0)  # slow: the sdxl jobs are still waiting
    async with app.run_test(size=(110, 36)) as pilot:
        scheduler, farm = app.engine.scheduler, app.engine.sim_farm
        assert scheduler is not None and farm is not None
        await until(pilot, lambda: all(r.state == "up" for r in scheduler.nodes.values()))
        scheduler.submit_many(sdxl_jobs(10, steps=40))
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, NodesScreen))
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 4)
        await until(pilot, lambda: cell(app, "gpu-draft", "now") == "idle: no sdxl")
        await until(pilot, lambda: cell(app, "gpu-premium", "now").startswith("job "))
        table.move_cursor(row=table.get_row_index("gpu-draft"))
        await until(pilot, lambda: "why idle: " in detail(app) and "jobs: no sdxl" in detail(app))
        farm_line = str(app.screen.query_one("#farm-line", Static).render())
        assert "waiting" in farm_line and "gpu-draft 0%" in farm_line

        await farm.node("gpu-draft").kill()
        await until(pilot, lambda: cell(app, "gpu-draft", "state").startswith("down"))
        await until(pilot, lambda: "last error: gpu-draft" in detail(app))
        assert "down for" in detail(app)
        await farm.node("gpu-draft").revive()
        await until(pilot, lambda: cell(app, "gpu-draft", "state") == "up (answering)")
        await until(pilot, lambda: "up for" in detail(app))
        assert "last error: gpu-draft" in detail(app)  # still there to read

        table.move_cursor(row=table.get_row_index("gpu-premium"))
        depth = app.screen.query_one("#queue-depth", Sparkline)
        await until(pilot, lambda: max(depth.data or [0]) >= 1)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, NodesScreen))
        await pilot.press("f2")  # and back again: the same numbers, nothing lost
        await until(pilot, lambda: isinstance(app.screen, NodesScreen))
        await until(pilot, lambda: cell(app, "gpu-draft", "now") == "idle: no sdxl")
        await scheduler.cancel_all()
