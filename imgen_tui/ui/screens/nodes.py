"""Nodes: every GPU's tier, health, queue (ours and others'), current job, VRAM and speed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header

from imgen_tui.scheduler.jobs import JobState
from imgen_tui.ui.widgets.node_strip import STATE_STYLE

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp

COLUMNS = ("node", "tier", "state", "ours", "others", "now", "VRAM", "s/step sd15", "loaded")


class NodesScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", id="nodes.back")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="nodes-table", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.refresh_table()
        self.set_interval(0.5, self.refresh_table)

    def refresh_table(self) -> None:
        app: ImgenApp = self.app  # type: ignore[assignment]
        scheduler = app.engine.scheduler
        if scheduler is None:
            return
        table = self.query_one(DataTable)
        for runtime in scheduler.nodes.values():
            running = next(
                (j for j in runtime.in_flight.values() if j.state == JobState.RUNNING), None
            )
            now = "idle"
            if running is not None:
                now = f"job {running.job_id[:6]}"
            speed = runtime.speed.seconds_per_step.get("sd15")
            row = (
                Text(runtime.id, style="bold"),
                runtime.config.tier,
                Text(f"{runtime.state} ({runtime.state_reason})", STATE_STYLE[runtime.state]),
                str(len(runtime.in_flight)),
                str(runtime.others_queued()),
                now,
                f"{runtime.config.vram_gb:g} GB",
                "-" if speed is None else f"{speed:.3f}",
                (runtime.loaded_checkpoint or "-").removesuffix(".safetensors"),
            )
            if runtime.id in table.rows:
                for column, value in zip(COLUMNS, row, strict=True):
                    table.update_cell(runtime.id, column, value)
            else:
                table.add_row(*row, key=runtime.id)
