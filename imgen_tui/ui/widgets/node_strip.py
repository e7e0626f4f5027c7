"""One line per farm: each node's state, queue and what it is doing, refreshed twice a second."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from imgen_tui.scheduler.scheduler import Scheduler

STATE_STYLE = {"up": "green", "degraded": "yellow", "down": "red"}


class NodeStrip(Static):
    def __init__(self, scheduler: Scheduler | None, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.scheduler = scheduler
        self._shown = Text()

    def on_mount(self) -> None:
        self.refresh_strip()
        self.set_interval(0.5, self.refresh_strip)

    def refresh_strip(self) -> None:
        # Textual repaints the whole top screen whenever the screen under it
        # changes, so a strip on a covered screen stays still until it is back.
        if self.app.screen is not self.screen:
            return
        if self.scheduler is None:
            self.update("connecting to the farm…")
            return
        line = Text()
        for runtime in self.scheduler.nodes.values():
            style = STATE_STYLE.get(runtime.state, "white")
            line.append("● ", style=style)
            line.append(f"{runtime.id} ", style="bold")
            busy = len(runtime.in_flight)
            others = runtime.others_queued()
            line.append(f"{busy} ours" + (f" +{others}" if others else "") + "   ", style="dim")
        if line != self._shown:  # Static.update re-lays out; skip it when nothing changed
            self._shown = line
            self.update(line, layout=False)  # always one line
