"""A Sixel picture that reaches the terminal once per picture, size and place.

textual-image 0.12's Sixel widget re-encodes on the event loop and re-sends
the whole picture every time Textual repaints its region — a cursor moving
next to it, a progress bar ticking under it — which over SSH is tens of
kilobytes per key press. It also pads the rows above the picture with empty
strips, which shifts everything right of it on a full repaint.

This widget encodes in a thread and sends the Sixel data only when the
terminal no longer holds it: a new picture, a new size or place, the screen
coming back from under a modal, or a notification that covered it going
away. Every other repaint writes a cursor-forward per row, which leaves the
pixels on the terminal untouched and keeps the rest of the line in place.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from PIL import Image as PILImage
from rich.control import Control
from rich.segment import ControlType, Segment
from rich.style import Style
from textual import events
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget
from textual_image._terminal import get_cell_size

from imgen_tui.store.fresh_thumbnails import FRESH
from imgen_tui.ui.deferred import deferred
from imgen_tui.ui.passthrough import for_terminal
from imgen_tui.ui.sixel_encoder import BAND, encode_sixel

_NULL_STYLE = Style()

RGB = tuple[int, int, int]


# xterm's default maxGraphicSize: a bigger Sixel image is silently dropped.
MAX_SIXEL_SIDE = 1000

# Encoded pictures one widget keeps: a few hundred frames of a short looping video.
MAX_CACHED_FRAMES = 512


def fit_canvas(
    picture: PILImage.Image,
    box: Size,
    background: tuple[int, int, int],
    whole_bands: bool = True,
) -> tuple[PILImage.Image, Region]:
    """The picture fitted and centred on a canvas, and the cells the canvas covers.

    The canvas fills the box (up to what terminals accept), so the picture also
    wipes whatever the region showed before: a smaller new picture leaves no
    rim of the old one. Its height is whole bands of six rows, which every
    encoder writes exactly (a sixel band is six rows; libchafa would rescale).
    """
    cell = get_cell_size()
    columns = min(box.width, MAX_SIXEL_SIDE // cell.width)
    rows = min(box.height, MAX_SIXEL_SIDE // cell.height)
    width, height = columns * cell.width, rows * cell.height
    if whole_bands:
        height = max(BAND, height - height % BAND)
    scale = min(width / picture.width, height / picture.height)  # up too: the lightbox fills
    fitted = picture.resize(
        (max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
        # Shrinking (every grid cell), Hamming is as sharp for half Lanczos's cost;
        # enlarging (the lightbox), Lanczos's wider kernel keeps edges cleaner.
        PILImage.Resampling.HAMMING if scale < 1 else PILImage.Resampling.LANCZOS,
    )
    canvas = PILImage.new("RGB", (width, height), background)
    canvas.paste(fitted, ((width - fitted.width) // 2, (height - fitted.height) // 2))
    frame = Region((box.width - columns) // 2, (box.height - rows) // 2, columns, rows)
    return canvas, frame


def encode(
    picture: PILImage.Image, box: Size, background: tuple[int, int, int], dither: bool = True
) -> tuple[str, Region]:
    """The Sixel data (wrapped for tmux if need be) and the cells it covers.
    `dither` False for a video's frames (see `sixel_bands.quantise`)."""
    canvas, frame = fit_canvas(picture, box, background)
    return for_terminal(encode_sixel(canvas, dither)), frame


class _Prepared:
    """Fresh thumbnails encoded where they were decoded, for the grid cell waiting for them.

    The store decodes a finished picture's thumbnail in a thread anyway (see
    `FRESH.prepare_with`); encoding it there at its cell's size spares the
    cell a worker hop of its own, which waited for a busy loop twice. A cell
    says which job it waits for, at which size (`SixelPicture.prepare_arrival`);
    what a cell took, or no longer waits for, is dropped. Thread-safe, bounded.
    """

    KEPT = 64

    def __init__(self) -> None:
        self._wanted: dict[str, tuple[Callable[..., tuple[str, Region]], Size, RGB]] = {}
        self._encoded: dict[int, tuple[PILImage.Image, Size, RGB, str, Region]] = {}
        self._lock = threading.Lock()

    def want(
        self, job_id: str, encoder: Callable[..., tuple[str, Region]], size: Size, background: RGB
    ) -> None:
        with self._lock:
            if self._wanted.get(job_id) == (encoder, size, background):
                return
            self._wanted[job_id] = (encoder, size, background)
            _bound(self._wanted, self.KEPT)
        FRESH.prepare_with(self.encode)

    def encode(self, picture: PILImage.Image, job_id: str) -> None:
        """In the store's thread: the picture encoded for the cell waiting for its job."""
        with self._lock:
            wanted = self._wanted.pop(job_id, None)
        if wanted is None:
            return
        encoder, size, background = wanted
        sixel, frame = encoder(picture, size, background)
        with self._lock:
            self._encoded[id(picture)] = (picture, size, background, sixel, frame)
            _bound(self._encoded, self.KEPT)

    def take(
        self, picture: PILImage.Image, size: Size, background: RGB
    ) -> tuple[str, Region] | None:
        with self._lock:
            entry = self._encoded.get(id(picture))
            if entry is None or entry[0] is not picture or entry[1:3] != (size, background):
                return None
            del self._encoded[id(picture)]
            return entry[3], entry[4]


def _bound(entries: dict[Any, Any], most: int) -> None:
    while len(entries) > most:
        entries.pop(next(iter(entries)))  # the oldest


PREPARED = _Prepared()


def _forward(width: int) -> Segment:
    """Moves the cursor over the picture without touching a pixel."""
    return Segment(f"\x1b[{width}C", _NULL_STYLE, ((ControlType.CURSOR_FORWARD, width),))


def _skip(width: int) -> Strip:
    return Strip([_forward(width)], cell_length=width)


class _Delivery:
    """One render pass's chance to put the picture on the terminal.

    Textual renders a widget's rows but writes only the rows its dirty regions
    cover, and it cuts (`divide`) exactly the rows it writes. So the picture
    rides on the first row that is cut: wherever the repaint starts, the whole
    picture is drawn from its top-left corner, and it is marked as sent only
    when it really was written.
    """

    def __init__(self, widget: SixelPicture, key: tuple[object, ...], region: Region) -> None:
        self.widget, self.key, self.region = widget, key, region
        self.done = False

    def take(self, row: int, frame: Region) -> list[Segment] | None:
        if self.done:
            return None
        self.done = True
        self.widget.mark_sent(self.key)
        x, y = self.region.x + frame.x, self.region.y + frame.y
        return [
            Segment(Control.move_to(x, y).segment.text, _NULL_STYLE),
            Segment(self.widget.sixel, _NULL_STYLE, ((ControlType.CURSOR_FORWARD, 0),)),
            Segment(Control.move_to(x + frame.width, self.region.y + row).segment.text),
        ]


class _Row(Strip):
    """A row over the picture: skips its pixels, or draws the picture if it is written first."""

    __slots__ = ("_delivery", "_frame", "_margins", "_row")

    def __init__(
        self,
        row: int,
        frame: Region,
        margins: tuple[Segment, Segment],
        delivery: _Delivery | None,  # None: the pixels are there (or covered), only skip them
    ) -> None:
        left, right = margins
        super().__init__([left, _forward(frame.width), right], frame.right + right.cell_length)
        self._row, self._frame, self._margins, self._delivery = row, frame, margins, delivery

    def divide(self, cuts: Iterable[int]) -> Sequence[Strip]:
        picture = self._delivery.take(self._row, self._frame) if self._delivery else None
        if picture is None:
            return super().divide(cuts)
        left, right = self._margins
        return Strip([left, *picture, right], self.cell_length).divide(cuts)


class SixelPicture(Widget, can_focus=False):
    """Drop-in for textual-image's Sixel `Image`: set `.image` to a PIL image or None.

    A subclass with another `encode_picture` sends another protocol's picture the
    same way (once per picture, size and place): see `ItermPicture`.
    """

    encode_picture = staticmethod(encode)

    DEFAULT_CSS = """
    SixelPicture { width: 100%; height: 100%; }
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
        self._sixel: str | None = None
        self._frame = Region()  # the cells the Sixel canvas covers, within ours
        self._encoded_for: tuple[int, Size] | None = None  # (picture generation, size)
        self._generation = 0
        self._sent: tuple[object, ...] | None = None
        self._overlays_seen: int | None = None
        # Encoded frames kept per (picture, size): a looping video is encoded once, then replayed.
        self._cache: dict[tuple[int, Size], tuple[PILImage.Image, str, Region]] = {}
        self._ahead: list[PILImage.Image] = []  # a video's frames, encoded before they are shown
        self._pending: set[int] = set()  # ids of those not encoded yet at this size
        self._dither = True  # False for a passing frame (`show_preview`)
        self._arrival_asked: tuple[str, Size] | None = None  # see `prepare_arrival`

    @property
    def image(self) -> PILImage.Image | None:
        return self._picture

    @image.setter
    def image(self, picture: PILImage.Image | None) -> None:
        self._show(picture, dither=True)

    def show_preview(self, picture: PILImage.Image) -> None:
        """A sampler's passing frame, encoded undithered as a video's frames are.

        Its noise changes every frame, so dithering shows nothing but costs
        twice the encoding and four times the bytes (11.6 against 50.5 KB for a
        draft) several times a second per running cell, while keys are pressed.
        """
        self._show(picture, dither=False)

    def _show(self, picture: PILImage.Image | None, *, dither: bool) -> None:
        self._dither = dither
        self._picture = picture
        self._generation += 1
        self._sixel = None
        self._encoded_for = None
        if not self._from_cache() and (picture is None or id(picture) not in self._pending):
            self._encode()

    def prepare(self, pictures: Sequence[PILImage.Image]) -> None:
        """Encode these pictures (a video's frames) one after another in a thread, ahead.

        Playback then only switches to what is already encoded: without this,
        each frame's encoding started when it was due, and the first loop ran
        at the encoder's pace plus a frame's wait (5 of 8 fps in the bench).
        Set the first frame as `.image` after this call: it is encoded first.
        """
        self._ahead = list(pictures)
        self._encode_ahead()

    def _encode_ahead(self) -> None:
        if not self._ahead or not self.size.area:
            return
        size = self.size
        todo = [
            picture
            for picture in self._ahead
            if (cached := self._cache.get((id(picture), size))) is None or cached[0] is not picture
        ]
        self._pending = {id(picture) for picture in todo}
        self.run_worker(deferred(self._encode_all, todo, size), group="ahead", exclusive=True)

    async def _encode_all(self, pictures: list[PILImage.Image], size: Size) -> None:
        background = self.background_colors[1].rgb
        for picture in pictures:
            if self.size != size:
                return  # resized: on_resize started over at the new size
            sixel, frame = await asyncio.to_thread(
                self.encode_picture, picture, size, background, False
            )  # a video's frames: undithered
            self._keep(picture, size, sixel, frame)
            self._pending.discard(id(picture))
            if picture is self._picture:
                self._from_cache()

    def prepare_arrival(self, job_id: str) -> None:
        """The picture this job is making comes encoded for this widget, as it is now.

        For a grid cell waiting for its job: the store's thread encodes the
        fresh thumbnail at this size, so showing it costs no worker (`_Prepared`).
        """
        # Asked on every progress event of a waiting cell: the style lookup and the
        # lock only when the job or the size is new.
        if self.size.area and self._arrival_asked != (job_id, self.size):
            self._arrival_asked = (job_id, self.size)
            encoder = type(self).encode_picture
            PREPARED.want(job_id, encoder, self.size, self.background_colors[1].rgb)

    def _from_cache(self) -> bool:
        """Take the current picture's encoding at this size from the cache, if it is there."""
        if self._picture is None or not self.size.area:
            return False
        cached = self._cache.get((id(self._picture), self.size))
        if cached is None or cached[0] is not self._picture:
            prepared = PREPARED.take(self._picture, self.size, self.background_colors[1].rgb)
            if prepared is None:
                return False
            self._keep(self._picture, self.size, *prepared)
            cached = self._cache[(id(self._picture), self.size)]
        _, self._sixel, self._frame = cached
        self._encoded_for = (self._generation, self.size)
        self.refresh()
        return True

    @property
    def delivered(self) -> bool:
        """The current picture, at the current size, has been written to the terminal."""
        wanted = (self._generation, self.size)
        return self._encoded_for == wanted and self._sent is not None and self._sent[0] == wanted

    def on_resize(self, event: events.Resize) -> None:
        self._pending = set()
        self._encode_ahead()
        if not self._from_cache() and (
            self._picture is None or id(self._picture) not in self._pending
        ):
            self._encode()

    def on_hide(self) -> None:
        self._sent = None  # whatever showed here meanwhile has painted over us

    def _encode(self) -> None:
        if self._picture is None or not self.size.area:
            self.refresh()
            return
        wanted = (self._generation, self.size)
        if self._encoded_for != wanted:
            self.run_worker(deferred(self._encode_in_thread, self._picture, wanted), exclusive=True)

    async def _encode_in_thread(self, picture: PILImage.Image, wanted: tuple[int, Size]) -> None:
        background = self.background_colors[1].rgb
        sixel, frame = await asyncio.to_thread(
            self.encode_picture, picture, wanted[1], background, self._dither
        )
        self._keep(picture, wanted[1], sixel, frame)
        if (self._generation, self.size) == wanted:
            self._sixel, self._frame, self._encoded_for = sixel, frame, wanted
            self.refresh()

    def _keep(self, picture: PILImage.Image, size: Size, sixel: str, frame: Region) -> None:
        if len(self._cache) >= MAX_CACHED_FRAMES:
            self._cache.clear()
        self._cache[(id(picture), size)] = (picture, sixel, frame)

    def _terminal_key(self, region: Region) -> tuple[object, ...]:
        """Everything that, when changed, means the terminal no longer shows our pixels."""
        return (self._encoded_for, region, self.screen.stack_updates, self.app.size)

    def render_lines(self, crop: Region) -> list[Strip]:
        width, height = self.size
        if self._sixel is None or self._encoded_for != (self._generation, self.size):
            return [Strip.blank(crop.width, self.rich_style)] * crop.height
        overlays = len(getattr(self.app, "_notifications", ()))
        if overlays != self._overlays_seen:  # a toast came or went over us
            self._overlays_seen = overlays
            self._sent = None
        region = self.region
        key = self._terminal_key(region)
        whole = crop == Region(0, 0, width, height)
        if not whole:  # partly scrolled out of view: leave the pixels alone
            return [_skip(crop.width)] * crop.height
        frame = self._frame
        delivery = None
        if key != self._sent and self.app.screen is self.screen:
            delivery = _Delivery(self, key, region)
            self.call_after_refresh(self._check_delivered, key)
        blank = Strip.blank(width, self.rich_style)
        margins = (
            Segment(" " * frame.x, self.rich_style),
            Segment(" " * (width - frame.right), self.rich_style),
        )
        return [
            _Row(row, frame, margins, delivery) if frame.y <= row < frame.bottom else blank
            for row in range(height)
        ]

    @property
    def sixel(self) -> str:
        return self._sixel or ""

    def mark_sent(self, key: tuple[object, ...]) -> None:
        self._sent = key

    def _check_delivered(self, key: tuple[object, ...]) -> None:
        """If no row of ours was written in that pass, ask for all of them."""
        if self._sent != key and self._terminal_key(self.region) == key:
            self.refresh()
