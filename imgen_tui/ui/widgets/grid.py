"""The thumbnail grid: a fixed page of cells, however many images the round has.

Only one page of cell widgets is ever mounted (20 by default), so a session
with hundreds of images costs no more to draw than one with twenty; moving
past the page shows the next one in the same widgets. A cell widget keeps the
picture it shows and loads a new one only when its image changes, so moving
the cursor repaints a border and never re-sends image data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from PIL import Image as PILImage
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static
from textual_image._terminal import get_cell_size

from imgen_tui.flows.rounds import Cell
from imgen_tui.ui.deferred import deferred
from imgen_tui.ui.graphics import image_widget
from imgen_tui.ui.widgets.thumbs import decode_preview, load_picture, picture_in_memory

BADGES = {"picked": ("✔ picked", "bold green"), "rejected": ("✘ rejected", "bold red")}
PREVIEW_INTERVAL = 0.4  # seconds between live preview repaints of one cell


class ThumbCell(Vertical):
    """One slot: the picture (or live preview), a caption with badges, node and progress."""

    def __init__(self, renderer: str, index: int) -> None:
        super().__init__(classes="cell")
        self.renderer = renderer
        self.index = index
        self.cell: Cell | None = None
        self._shown: object = None  # what the picture widget holds: a thumb path or a preview
        self.thumb_shown: Path | None = None  # the thumbnail handed to the picture widget
        self._preview_at = 0.0
        self._caption_shown: Text | None = None

    def compose(self) -> ComposeResult:
        self._picture = image_widget(self.renderer)(None, classes="picture")
        self._caption_line = Static("", classes="caption")
        yield self._picture
        yield self._caption_line

    def show(self, cell: Cell | None, number: int) -> None:
        self.cell = cell
        self.display = cell is not None
        if cell is None:
            return
        self.set_class(cell.verdict == "picked", "picked")
        self.set_class(cell.verdict == "rejected", "rejected")
        caption = _caption(cell, number)
        if caption != self._caption_shown:  # most progress events change neither bar nor ETA
            self._caption_shown = caption
            self._caption_line.update(caption, layout=False)  # one line
        if cell.image is not None and self._shown != cell.image.thumb_path:
            path = self._shown = cell.image.thumb_path
            fresh = picture_in_memory(path)
            if fresh is not None and self._picture.is_attached:  # just stored: shown now,
                # not after a worker's turn (3 ms on a busy loop)
                self._thumb_loaded(path, fresh)
            else:
                self.run_worker(deferred(self._load_thumb, path), group="thumb", exclusive=True)
        elif cell.image is None:
            if isinstance(self._shown, Path):  # a new job in this slot
                self._shown = None
                self._set_picture(None)
            prepare = getattr(self._picture, "prepare_arrival", None)
            if prepare is not None:  # its picture comes encoded for this cell (Sixel, iTerm2)
                prepare(cell.job_id)

    def on_click(self, event: events.Click) -> None:
        """Click selects; a double click opens (the grid turns this into its cursor)."""
        event.stop()
        self.post_message(CellClicked(self.index, opened=event.chain >= 2))

    def show_preview(self, data: bytes) -> None:
        """A live preview frame, a few times a second per cell at most, never over the result."""
        if self.cell is not None and self.cell.image is not None:
            return
        now = time.monotonic()
        if now - self._preview_at < PREVIEW_INTERVAL:
            return
        self._preview_at = now
        self._shown = data
        self.run_worker(deferred(self._load_preview, data), group="thumb", exclusive=True)

    async def _load_thumb(self, path: Path) -> None:
        picture = await load_picture(path)
        if self._shown == path and self._picture.is_attached:  # not closed while it loaded
            self._thumb_loaded(path, picture)

    def _thumb_loaded(self, path: Path, picture: PILImage.Image) -> None:
        self._set_picture(picture)
        self.thumb_shown = path
        self.post_message(ThumbPainted(self.index))

    async def _load_preview(self, data: bytes) -> None:
        width, height = self._picture.size
        cell = get_cell_size()
        picture = await decode_preview(
            data, (max(1, width) * cell.width, max(1, height) * cell.height)
        )
        if self._shown is data and self._picture.is_attached:  # not closed while it decoded
            self._set_picture(picture, passing=True)

    def _set_picture(self, picture: PILImage.Image | None, *, passing: bool = False) -> None:
        """`passing`: a live preview, which a Sixel picture sends undithered."""
        self.thumb_shown = None
        show_preview = getattr(self._picture, "show_preview", None)
        if passing and picture is not None and show_preview is not None:
            show_preview(picture)
        else:
            self._picture.image = picture  # type: ignore[attr-defined]


class CellClicked(Message):
    """A cell widget was clicked: `index` is its place on the page."""

    def __init__(self, index: int, *, opened: bool) -> None:
        super().__init__()
        self.index, self.opened = index, opened


class ThumbPainted(Message):
    """A thumbnail reached the screen (the UI benchmark times node-finished → painted)."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index


def _caption(cell: Cell, number: int) -> Text:
    text = Text(f"{number:>2} ", style="bold")
    label = getattr(cell, "label", "")  # a round's cell may say what it is ("baseline")
    if label:
        text.append(f"{label} ", style="bold cyan")
    if cell.verdict in BADGES:
        label, style = BADGES[cell.verdict]
        text.append(label + " ", style=style)
    if cell.locked:
        text.append("🔒 ", style="yellow")
    if cell.compare:
        text.append(f"[{cell.compare}] ", style="bold magenta")
    if cell.notice and cell.state in ("queued", "running"):
        text.append(cell.notice, style="bold red")
        return text
    if cell.state == "running":
        width = 10
        filled = int(cell.progress * width)
        text.append("█" * filled + "░" * (width - filled), style="cyan")
        if cell.eta is not None:
            text.append(f" {cell.eta:.0f}s", style="dim")
    elif cell.state == "queued":
        text.append("waiting", style="dim")
    elif cell.state == "failed":
        text.append("failed", style="red")
    elif cell.state == "cancelled":
        text.append("cancelled", style="dim")
    if cell.node_id:
        text.append(f" {cell.node_id.removeprefix('gpu-')}", style="dim italic")
    return text


@dataclass(frozen=True)
class GridLayout:
    columns: int
    rows: int
    per_page: int
    cell_height: int  # rows of text per cell (border, picture, caption); 0: share the height


MIN_PICTURE_ROWS = 5  # below this a thumbnail is not worth looking at: show fewer per page


def grid_layout(width: int, height: int, count: int, most: int, aspect: float = 1.0) -> GridLayout:
    """The page that shows the biggest pictures near their own shape.

    A text cell is about twice as tall as it is wide, so a square picture
    w columns wide wants w/2 rows. All `count` images on one page if they
    fit at `MIN_PICTURE_ROWS` or more, else fewer per page (more pages).
    """
    best: GridLayout | None = None
    for per_page in range(max(1, min(count, most)), 0, -1):
        choice, picture = _best_columns(width, height, per_page, aspect)
        if best is None or picture >= MIN_PICTURE_ROWS:
            best = choice
        if picture >= MIN_PICTURE_ROWS:
            break
    assert best is not None
    return best


def _best_columns(width: int, height: int, per_page: int, aspect: float) -> tuple[GridLayout, int]:
    chosen, chosen_rows, chosen_area = GridLayout(1, per_page, per_page, 0), 0, -1
    for columns in range(1, per_page + 1):
        rows = -(-per_page // columns)
        cell_width = (width - (columns - 1)) // columns  # one column of gutter between cells
        picture_width = cell_width - 2  # the border
        picture_rows = min(height // rows - 3, int(picture_width / 2 / aspect))
        if picture_rows <= 0:
            continue
        area = picture_rows * min(picture_width, int(picture_rows * 2 * aspect))
        if area > chosen_area:
            chosen = GridLayout(columns, rows, per_page, picture_rows + 3)
            chosen_rows, chosen_area = picture_rows, area
    return chosen, chosen_rows


class ThumbGrid(Grid):
    """A page of `ThumbCell`s over a list of `Cell`s, with a cursor."""

    cursor: reactive[int] = reactive(0, repaint=False)  # the cells repaint themselves

    def __init__(self, renderer: str, page_size: int = 20, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.renderer = renderer
        self.page_size = page_size  # cell widgets mounted: the most a page can show
        self.layout_now = GridLayout(5, 4, page_size, 0)
        self.cells: list[Cell] = []
        self.can_focus = True
        self._widgets: list[ThumbCell] = []  # kept: a query walks the DOM, 1 ms on each key

    def compose(self) -> ComposeResult:
        self._widgets = [ThumbCell(self.renderer, index) for index in range(self.page_size)]
        yield from self._widgets

    def focus(self, scroll_visible: bool = True) -> Self:
        """Already focused: nothing changes, so nothing is repainted.

        Textual's `focus()` repaints the widget even then, and for the grid that
        is the whole page, 13-25 ms on a busy loop: the screens call it after
        every round start, Escape and closed modal, and a key pressed meanwhile
        waited for that repaint.
        """
        if self.has_focus:
            return self
        super().focus(scroll_visible)
        return self

    @property
    def per_page(self) -> int:
        return self.layout_now.per_page

    @property
    def page(self) -> int:
        return self.cursor // self.per_page

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.cells) // self.per_page))

    @property
    def columns(self) -> int:
        return self.layout_now.columns

    def on_resize(self) -> None:
        self.relayout()

    def relayout(self) -> None:
        """Columns, rows and cell height from the space there is and the images to show."""
        aspect = 1.0
        first = next((c.image for c in self.cells if c.image is not None), None)
        if first is not None and first.height:
            aspect = first.width / first.height
        size = self.content_size
        if size.width <= 0 or size.height <= 0:
            return
        fitted = grid_layout(size.width, size.height, len(self.cells), self.page_size, aspect)
        if fitted == self.layout_now:
            return
        self.layout_now = fitted
        self.styles.grid_size_columns = fitted.columns
        self.styles.grid_size_rows = fitted.rows
        if fitted.cell_height:
            self.styles.grid_rows = str(fitted.cell_height)
        self.refresh_cells()

    def set_cells(self, cells: list[Cell]) -> None:
        self.cells = cells
        self.cursor = min(self.cursor, max(0, len(cells) - 1))
        self.relayout()
        self.refresh_cells()

    def refresh_cells(self) -> None:
        start = self.page * self.per_page
        for offset, widget in enumerate(self._widgets):
            position = start + offset
            shown = position < len(self.cells) and offset < self.per_page
            widget.show(self.cells[position] if shown else None, position + 1)
            widget.set_class(position == self.cursor, "cursor")

    def refresh_job(self, job_id: str) -> ThumbCell | None:
        """Repaint just the cell widget showing this job, if it is on the page."""
        start = self.page * self.per_page
        for offset, widget in enumerate(self._widgets):
            position = start + offset
            if offset >= self.per_page:
                break
            if position < len(self.cells) and self.cells[position].job_id == job_id:
                widget.show(self.cells[position], position + 1)
                return widget
        return None

    class Opened(Message):
        """The operator double-clicked a cell: show it large."""

    def on_cell_clicked(self, message: CellClicked) -> None:
        message.stop()
        position = self.page * self.per_page + message.index
        if position < len(self.cells):
            self.focus()
            self.cursor = position
            self.post_message(self.Moved())
            if message.opened:
                self.post_message(self.Opened())

    class Moved(Message):
        """The cursor moved by mouse: the screen repaints what depends on it."""

    def watch_cursor(self, old: int, new: int) -> None:
        if old // self.per_page != new // self.per_page:
            self.refresh_cells()
            return
        widgets = self._widgets
        if widgets:
            widgets[old % self.per_page].remove_class("cursor")
            widgets[new % self.per_page].add_class("cursor")

    def move(self, delta: int) -> None:
        if self.cells:
            self.cursor = max(0, min(len(self.cells) - 1, self.cursor + delta))

    @property
    def current(self) -> Cell | None:
        return self.cells[self.cursor] if 0 <= self.cursor < len(self.cells) else None
