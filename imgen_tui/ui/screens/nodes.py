"""Nodes: every GPU's tier, health, queue (ours and others'), current job, VRAM and speed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding

from imgen_tui.scheduler.jobs import JobState
from imgen_tui.ui.widgets.live_table import LiveTableScreen
from imgen_tui.ui.widgets.node_strip import STATE_STYLE

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp


class NodesScreen(LiveTableScreen):
    COLUMNS = ("node", "tier", "state", "ours", "others", "now", "VRAM", "s/step sd15", "loaded")
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", id="nodes.back")]

    def refresh_table(self) -> None:
        app: ImgenApp = self.app  # type: ignore[assignment]
        scheduler = app.engine.scheduler
        if scheduler is None:
            return
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
            self.put_row(runtime.id, row)
