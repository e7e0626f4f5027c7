"""Nodes: every GPU's tier, health, queue (ours and others'), current job, VRAM and speed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding

from imgen_tui.scheduler.jobs import JobState
from imgen_tui.scheduler.runtime import NodeRuntime
from imgen_tui.ui.widgets.live_table import LiveTableScreen
from imgen_tui.ui.widgets.node_strip import STATE_STYLE

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp


STATE_WIDTH = 18  # a long "down (…unreachable…)" is cut here; the row's detail has it all


def state_text(runtime: NodeRuntime) -> str:
    return f"{runtime.state} ({runtime.state_reason})"


def shortened(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class NodesScreen(LiveTableScreen):
    COLUMNS = ("node", "tier", "state", "ours", "others", "now", "VRAM", "s/step", "loaded")
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", id="nodes.back")]
    HELP = (
        "Every GPU of the farm, refreshed twice a second: its tier, whether it is up "
        "(the reason when it is not, in full under the table), our jobs and other "
        "clients' on it, what it runs now, its VRAM, learnt speed and loaded model. "
        "F3 switches to the queue."
    )

    def detail_for(self, key: str) -> str:
        app: ImgenApp = self.app  # type: ignore[assignment]
        runtime = app.engine.scheduler.nodes.get(key) if app.engine.scheduler else None
        if runtime is None:
            return ""
        loaded = runtime.loaded_checkpoint or "no model loaded"
        return (
            f"{runtime.id} ({runtime.config.tier}): {state_text(runtime)}; {loaded}; "
            "s/step is its learnt seconds per SD1.5 step at 512 px"
        )

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
                Text(shortened(state_text(runtime), STATE_WIDTH), STATE_STYLE[runtime.state]),
                str(len(runtime.in_flight)),
                str(runtime.others_queued()),
                now,
                f"{runtime.config.vram_gb:g} GB",
                "-" if speed is None else f"{speed:.3f}",
                shortened((runtime.loaded_checkpoint or "-").removesuffix(".safetensors"), 16),
            )
            self.put_row(runtime.id, row)
