"""The GPU dashboard (F2): every node's health, queue, job, memory, speed and recent pace.

The numbers are `farm_snapshot`'s (scheduler/farm_stats.py), the same ones
`imgen-tui nodes --watch` prints; this screen only draws them. The table
keeps one short line per node; under it the highlighted node's whole story
(reasons in full, RAM, every family's speed) and its sparklines.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Label, Sparkline, Static

from imgen_tui.scheduler.farm_stats import (
    FarmSnapshot,
    NodeRow,
    farm_line,
    farm_snapshot,
    memory_text,
    now_text,
    since_text,
    speed_text,
)
from imgen_tui.scheduler.runtime import NodeRuntime
from imgen_tui.ui.widgets.live_table import LiveTableScreen
from imgen_tui.ui.widgets.node_strip import STATE_STYLE

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp


STATE_WIDTH = 18  # a long "down (…unreachable…)" is cut here; the row's detail has it all
NOW_WIDTH = 18
LOADED_WIDTH = 12


def state_text(runtime: NodeRuntime) -> str:
    return f"{runtime.state} ({runtime.state_reason})"


def shortened(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class NodesScreen(LiveTableScreen):
    DEFAULT_CSS = """
    NodesScreen #farm-line { height: 1; padding: 0 1; }
    NodesScreen DataTable { height: auto; max-height: 1fr; }
    NodesScreen #row-detail { height: auto; padding: 0 1; }
    NodesScreen .spark-row { height: 3; padding: 0 1; }
    NodesScreen .spark-row Label { width: 14; }
    NodesScreen .spark-row Sparkline { width: 1fr; height: 2; }
    """
    COLUMNS = ("node", "tier", "state", "q", "now", "VRAM", "s/step", "10m", "loaded")
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", id="nodes.back")]
    HELP = (
        "**GPU dashboard.** Every GPU, refreshed twice a second: tier, health (the "
        "reason in full under the table), queue (ours+others'), what it runs (or why it "
        "is idle while jobs wait), VRAM used/total, learnt seconds per SD1.5 step, "
        "images in the last 10 minutes, loaded model. Under the table: the highlighted "
        "node's RAM, every family's speed, last error and sparklines of images and "
        "queue depth over the last five minutes. F3 switches to the queue."
    )

    def __init__(self) -> None:
        super().__init__()
        self.snapshot: FarmSnapshot | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="farm-line")
        yield DataTable(cursor_type="row")
        with Vertical(id="node-detail"):
            yield Static("", id="row-detail")
            with Horizontal(classes="spark-row"):
                yield Label("images/10 s")
                yield Sparkline([0.0], id="throughput")
            with Horizontal(classes="spark-row"):
                yield Label("queue depth")
                yield Sparkline([0.0], id="queue-depth")
        yield Footer()

    def _row(self, key: str) -> NodeRow | None:
        if self.snapshot is None:
            return None
        return next((row for row in self.snapshot.nodes if row.id == key), None)

    def detail_for(self, key: str) -> str:
        row = self._row(key)
        if row is None:
            return ""
        lines = [
            f"{row.id} ({row.tier}): {row.health} for {since_text(row.since)} ({row.reason}); "
            f"{row.checkpoint or 'no model loaded'}",
            f"queue: {row.ours} ours, {row.others} other clients'; "
            f"VRAM {memory_text(row.vram_used, row.vram_total)}, "
            f"RAM {memory_text(row.ram_used, row.ram_total)}; "
            f"s/step {speed_text(row)}; {row.images_recent} images in 10 min; "
            f"busy {row.busy_share:.0%} of this session",
        ]
        if row.last_error:
            lines.append(f"last error: {row.last_error}")
        if row.idle_reasons:
            lines.append("why idle: " + "; ".join(row.idle_reasons))
        self._show_sparklines(row)
        return "\n".join(lines)

    def _show_sparklines(self, row: NodeRow) -> None:
        self.query_one("#throughput", Sparkline).data = list(row.throughput)
        self.query_one("#queue-depth", Sparkline).data = list(row.queue_depth)

    def refresh_table(self) -> None:
        app: ImgenApp = self.app  # type: ignore[assignment]
        scheduler = app.engine.scheduler
        if scheduler is None:
            return
        self.snapshot = snapshot = farm_snapshot(
            scheduler.nodes, scheduler.jobs.values(), scheduler.stats, time.monotonic()
        )
        self.query_one("#farm-line", Static).update(farm_line(snapshot))
        for row in snapshot.nodes:
            speed = row.seconds_per_step.get("sd15")
            state = f"{row.health} ({row.reason})"
            now = now_text(row)
            cells = (
                Text(row.id, style="bold"),
                row.tier,
                Text(shortened(state, STATE_WIDTH), STATE_STYLE[row.health]),
                f"{row.ours}+{row.others}",
                Text(shortened(now, NOW_WIDTH), "yellow" if row.idle_reasons else ""),
                memory_text(row.vram_used, row.vram_total),
                "-" if speed is None else f"{speed:.3f}",
                str(row.images_recent),
                shortened((row.checkpoint or "-").removesuffix(".safetensors"), LOADED_WIDTH),
            )
            self.put_row(row.id, cells)
