"""A half-cell picture: two pixels per character cell (`▀`, top in the foreground colour,
bottom in the background), fitted to its area with the picture's aspect ratio and centred.

textual-image's half-cell widget stretches the picture over the whole area it
is given, so a square draft in a wide grid cell came out about 2.2:1 and the
lightbox filled every column (what most people see: it is the renderer inside
tmux). A cell is about twice as tall as it is wide, so a half block is about
square; with the terminal's real cell size known, the ratio is exact.

The picture is scaled and its rows turned into strips in a thread; a repaint
only hands back the strips.
"""

from __future__ import annotations

import asyncio

from PIL import Image as PILImage
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget
from textual_image._terminal import get_cell_size

from imgen_tui.ui.deferred import deferred

UPPER_HALF = "▀"


def half_block_box(picture: tuple[int, int], box: Size, cell: tuple[int, int]) -> Region:
    """Where the picture goes, in half blocks (x in columns, y in half rows) of a box of cells.

    A half block is `cell width` by `cell height / 2` pixels of the terminal: the
    picture is fitted in those units so that its shape on screen is its own.
    """
    cell_width, cell_height = cell
    width_px, height_px = box.width * cell_width, box.height * cell_height
    scale = min(width_px / picture[0], height_px / picture[1])
    columns = max(1, min(box.width, round(picture[0] * scale / cell_width)))
    halves = max(1, min(box.height * 2, round(picture[1] * scale / (cell_height / 2))))
    return Region((box.width - columns) // 2, (box.height * 2 - halves) // 2, columns, halves)


def half_cell_strips(
    picture: PILImage.Image, box: Size, background: tuple[int, int, int], cell: tuple[int, int]
) -> list[Strip]:
    """The picture as one strip per row of the box, margins in the background colour."""
    place = half_block_box(picture.size, box, cell)
    canvas = PILImage.new("RGB", (box.width, box.height * 2), background)
    fitted = picture.convert("RGB").resize((place.width, place.height), PILImage.Resampling.BOX)
    canvas.paste(fitted, (place.x, place.y))
    pixels = canvas.tobytes()
    stride = box.width * 3
    blank = Style(bgcolor=Color.from_rgb(*background))
    colours: dict[tuple[int, int, int], Color] = {}

    def colour(rgb: tuple[int, int, int]) -> Color:
        found = colours.get(rgb)
        if found is None:
            found = colours[rgb] = Color.from_rgb(*rgb)
        return found

    strips: list[Strip] = []
    for row in range(box.height):
        top, bottom = row * 2, row * 2 + 1
        if bottom < place.y or top >= place.bottom:
            strips.append(Strip([Segment(" " * box.width, blank)], box.width))
            continue
        segments = [Segment(" " * place.x, blank)] if place.x else []
        for x in range(place.x, place.right):
            upper, lower = top * stride + x * 3, bottom * stride + x * 3
            style = Style(
                color=colour((pixels[upper], pixels[upper + 1], pixels[upper + 2])),
                bgcolor=colour((pixels[lower], pixels[lower + 1], pixels[lower + 2])),
            )
            segments.append(Segment(UPPER_HALF, style))
        if box.width > place.right:
            segments.append(Segment(" " * (box.width - place.right), blank))
        strips.append(Strip(Segment.simplify(segments), box.width))
    return strips


class HalfcellPicture(Widget, can_focus=False):
    """Set `.image` to a PIL image or None: drawn in half cells, fitted and centred."""

    DEFAULT_CSS = """
    HalfcellPicture { width: 100%; height: 100%; }
    """

    def __init__(
        self,
        image: PILImage.Image | None = None,
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._picture = image
        self._generation = 0
        self._strips: list[Strip] | None = None
        self._drawn_for: tuple[int, Size] | None = None
        # Strips kept per (picture, size): a looping video is drawn once, then replayed.
        self._cache: dict[tuple[int, Size], tuple[PILImage.Image, list[Strip]]] = {}

    @property
    def image(self) -> PILImage.Image | None:
        return self._picture

    @image.setter
    def image(self, picture: PILImage.Image | None) -> None:
        self._picture = picture
        self._generation += 1
        self._prepare()

    @property
    def ready(self) -> bool:
        """The strips for the current picture and size are made."""
        return self._drawn_for == (self._generation, self.size) and self._strips is not None

    def on_resize(self, event: events.Resize) -> None:
        self._prepare()

    def _prepare(self) -> None:
        if self._picture is None or not self.size.area:
            self._strips, self._drawn_for = None, None
            self.refresh()
            return
        wanted = (self._generation, self.size)
        cached = self._cache.get((id(self._picture), self.size))
        if cached is not None and cached[0] is self._picture:
            self._strips, self._drawn_for = cached[1], wanted
            self.refresh()
            return
        if self._drawn_for != wanted:
            work = deferred(self._prepare_in_thread, self._picture, wanted)
            self.run_worker(work, exclusive=True)

    async def _prepare_in_thread(self, picture: PILImage.Image, wanted: tuple[int, Size]) -> None:
        background = self.background_colors[1].rgb
        cell = get_cell_size()
        strips = await asyncio.to_thread(
            half_cell_strips, picture, wanted[1], background, (cell.width, cell.height)
        )
        if len(self._cache) >= 512:
            self._cache.clear()
        self._cache[(id(picture), wanted[1])] = (picture, strips)
        if (self._generation, self.size) == wanted:
            self._strips, self._drawn_for = strips, wanted
            self.refresh()

    def render_line(self, y: int) -> Strip:
        if not self.ready or self._strips is None or y >= len(self._strips):
            return Strip.blank(self.size.width, self.rich_style)
        return self._strips[y]
