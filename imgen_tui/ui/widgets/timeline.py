"""The keyframe timeline along the bottom of the video screen: a ruler and one slot per keyframe.

The ruler shows every frame as a tick with the keyframes marked where they
sit (the selected one highlighted); under it each keyframe has a slot with
its locked still's thumbnail (loaded in a thread) and a caption. Slots are
remounted only when the number of keyframes changes; otherwise they are
repainted in place, so moving a keyframe costs one line of text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from imgen_tui.ui.deferred import deferred
from imgen_tui.ui.graphics import image_widget
from imgen_tui.ui.widgets.thumbs import load_picture


@dataclass(frozen=True)
class TimelineEntry:
    """One keyframe as the timeline shows it."""

    frame: int
    description: str
    thumb: Path | None


def ruler(entries: list[TimelineEntry], length: int, fps: float, selected: int, width: int) -> Text:
    """`|` ticks for the frames (compressed to `width`), keyframe numbers where they sit."""
    columns = max(8, width)
    line = Text()
    marks: dict[int, int] = {}
    for index, entry in enumerate(entries):
        column = entry.frame * (columns - 1) // max(1, length - 1) if length > 1 else 0
        marks.setdefault(column, index)
    for column in range(columns):
        if column in marks:
            index = marks[column]
            style = "bold reverse" if index == selected else "bold"
            line.append(str(index + 1)[-1], style=style)
        else:
            line.append("·" if column % 4 else "|", style="dim")
    seconds = length / fps if fps else 0.0
    line.append(f"  {length} frames · {fps:g} fps · {seconds:.1f} s", style="dim")
    return line


class TimelineSlot(Vertical):
    def __init__(self, renderer: str) -> None:
        super().__init__(classes="slot")
        self.renderer = renderer
        self._shown: Path | None = None

    def compose(self) -> ComposeResult:
        yield image_widget(self.renderer)(None, classes="still")
        yield Static("", classes="slot-caption")

    def show(self, number: int, entry: TimelineEntry, selected: bool) -> None:
        self.set_class(selected, "selected")
        caption = Text(f"{number} @{entry.frame} ", style="bold reverse" if selected else "bold")
        caption.append(entry.description[:24])
        if entry.thumb is None:
            caption.append(" (no still)", style="dim")
        self.query_one(".slot-caption", Static).update(caption)
        if entry.thumb != self._shown:
            self._shown = entry.thumb
            if entry.thumb is None:
                self.query_one(".still").image = None  # type: ignore[attr-defined]
            else:
                self.run_worker(deferred(self._load, entry.thumb), group="still", exclusive=True)

    async def _load(self, path: Path) -> None:
        picture = await load_picture(path)
        if self._shown == path:
            self.query_one(".still").image = picture  # type: ignore[attr-defined]


class Timeline(Vertical):
    DEFAULT_CSS = """
    Timeline { height: 12; border-top: solid $primary; }
    Timeline #ruler { height: 1; }
    Timeline #slots { height: 1fr; }
    Timeline .slot { width: 22; margin: 0 1 0 0; }
    Timeline .slot .still { height: 1fr; }
    Timeline .slot .slot-caption { height: 1; }
    Timeline .slot.selected { background: $boost; }
    """

    def __init__(self, renderer: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.renderer = renderer
        self.entries: list[TimelineEntry] = []
        self.length, self.fps, self.selected = 16, 8.0, 0

    def compose(self) -> ComposeResult:
        yield Static("", id="ruler")
        yield Horizontal(id="slots")

    async def show(
        self, entries: list[TimelineEntry], length: int, fps: float, selected: int
    ) -> None:
        self.entries, self.length, self.fps, self.selected = entries, length, fps, selected
        slots = self.query_one("#slots", Horizontal)
        mounted = list(slots.query(TimelineSlot))
        if len(mounted) != len(entries):
            await slots.remove_children()
            mounted = [TimelineSlot(self.renderer) for _ in entries]
            await slots.mount_all(mounted)
        for number, (slot, entry) in enumerate(zip(mounted, entries, strict=True), start=1):
            slot.show(number, entry, number - 1 == selected)
        self.repaint_ruler()

    def repaint_ruler(self) -> None:
        width = max(8, self.size.width - 34)
        self.query_one("#ruler", Static).update(
            ruler(self.entries, self.length, self.fps, self.selected, width)
        )

    def on_resize(self) -> None:
        self.repaint_ruler()
