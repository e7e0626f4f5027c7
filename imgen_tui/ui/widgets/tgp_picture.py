"""A TGP picture: uploaded once, encoded off the event loop, drawn in few bytes.

textual-image sends the picture once and then draws it with Unicode
placeholder cells, which is right for SSH. Two things are changed here:

- It PNG-encodes the upload inside `render`, on the event loop: with 20
  drafts finishing and previews streaming, that stalled key presses for
  100 ms and more. Here a new picture is encoded (at the size it will be
  drawn) in a thread first, and shown when the upload is ready.
  The same when the widget is resized after its upload was encoded (the
  grid lays out anew when a round's first image arrives): the upload is
  encoded again in a thread and the cell is blank meanwhile.
- Inside tmux (with passthrough allowed) every command to the terminal is
  wrapped for passthrough (`imgen_tui.ui.passthrough`).
- It writes every placeholder cell in full (placeholder, row, column and id
  diacritics: 10 bytes). Kitty lets a cell that continues its row leave the
  diacritics out, so only the first cell of each row carries them: the same
  picture in about 40% of the bytes on every repaint.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator

from PIL import Image as PILImage
from rich.segment import Segment
from rich.style import Style
from textual.app import RenderResult
from textual_image._geometry import ImageSize
from textual_image._pixeldata import PixelData
from textual_image._terminal import get_cell_size
from textual_image.renderable.tgp import _NUMBER_TO_DIACRITIC, _PLACEHOLDER
from textual_image.renderable.tgp import Image as TGPRenderable
from textual_image.widget._base import Image as BaseImage

from imgen_tui.ui.deferred import deferred
from imgen_tui.ui.passthrough import for_terminal

CHUNK = 4096  # the protocol's largest payload per escape sequence
MAX_UPLOADED_FRAMES = 512  # frames of one looping video kept on the terminal
Prepared = tuple[tuple[int, int], str]  # (pixel width, height), base64 PNG at that size


def placeholder_rows(image_id: int, width: int, height: int) -> Iterator[str]:
    """Each row: one cell with its row, column and id-byte diacritics, then bare cells."""
    placeholder = chr(_PLACEHOLDER)
    id_byte = chr(_NUMBER_TO_DIACRITIC[(image_id >> 24) & 255])
    first_column = chr(_NUMBER_TO_DIACRITIC[0])
    for row in range(height):
        first = f"{placeholder}{chr(_NUMBER_TO_DIACRITIC[row])}{first_column}{id_byte}"
        yield first + placeholder * (width - 1)


def send_tgp(payload: str = "", **keys: int | str) -> None:
    """One TGP command, to where textual-image writes them (stdout, unbuffered by Textual)."""
    stdout = sys.__stdout__
    assert stdout is not None
    body = ",".join(f"{key}={value}" for key, value in keys.items())
    stdout.write(for_terminal(f"\x1b_G{body}{';' + payload if payload else ''}\x1b\\"))
    stdout.flush()


class CompactTGPRenderable(TGPRenderable):
    prepared: Prepared | None = None
    on_upload: Callable[[int], None] | None = None  # told the image id of each upload

    def _send_image_to_terminal(self, width: int, height: int) -> None:
        if self.prepared is None or self.prepared[0] != (width, height):
            payload = self._image_data.scaled(width, height).to_base64()  # not foreseen
        else:
            payload = self.prepared[1]
        self.terminal_image_id = next(TGPRenderable._image_id_counter)
        for start in range(0, len(payload), CHUNK):
            more = start + CHUNK < len(payload)
            chunk = payload[start : start + CHUNK]
            send_tgp(chunk, i=self.terminal_image_id, m=int(more), f=100, q=2)
        if self.on_upload is not None:
            self.on_upload(self.terminal_image_id)

    def _create_virtual_placement(self, width: int, height: int) -> None:
        assert self.terminal_image_id
        send_tgp(a="p", i=self.terminal_image_id, c=width, r=height, U=1, q=2)

    def _render_diacritics(self, width: int, height: int) -> Iterator[Segment]:
        image_id = self.terminal_image_id
        assert image_id
        # The low three bytes of the id travel in the foreground colour.
        red, green, blue = (image_id >> 16) & 255, (image_id >> 8) & 255, image_id & 255
        style = Style(color=f"rgb({red}, {green}, {blue})")
        for line in placeholder_rows(image_id, width, height):
            yield Segment(line + "\n", style=style)


def _encode(picture: PILImage.Image, size: tuple[int, int]) -> str:
    return PixelData(picture).scaled(*size).to_base64()


class TGPPicture(BaseImage, Renderable=CompactTGPRenderable):
    """textual-image's TGP widget; `.image = picture` shows it once its upload is encoded."""

    _prepared: Prepared | None = None
    _wanted: PILImage.Image | None = None  # the picture last set, shown once encoded
    # Frames already on the terminal, per (picture, pixel size): a looping video is
    # uploaded once, then each tick only points the placeholder cells at another id.
    _uploads: dict[tuple[int, tuple[int, int]], tuple[PILImage.Image, int, Prepared]]

    def _uploaded(self, picture: PILImage.Image) -> tuple[int, Prepared] | None:
        uploads = self.__dict__.setdefault("_uploads", {})
        if not self.content_size.area:
            return None
        pixels = self._pixel_size(picture)
        cached = uploads.get((id(picture), pixels))
        if cached is None or cached[0] is not picture:
            return None
        return cached[1], cached[2]

    def _remember_upload(self, picture: PILImage.Image, prepared: Prepared, image_id: int) -> None:
        uploads = self.__dict__.setdefault("_uploads", {})
        if len(uploads) >= MAX_UPLOADED_FRAMES:
            uploads.clear()  # the old ids stay on the terminal until it evicts them
        uploads[(id(picture), prepared[0])] = (picture, image_id, prepared)

    def _is_cached_id(self, image_id: int | None) -> bool:
        uploads = self.__dict__.get("_uploads", {})
        return any(entry[1] == image_id for entry in uploads.values())

    def _set_image(self, picture: PILImage.Image | None) -> None:
        self._wanted = picture
        if not isinstance(picture, PILImage.Image) or not self.is_mounted:
            BaseImage.image.fset(self, picture)  # type: ignore[attr-defined]
            return
        cached = self._uploaded(picture)
        if cached is not None:  # already on the terminal at this size: only switch to it
            self._prepared = cached[1]
            self._show(picture)
            return
        self.run_worker(deferred(self._prepare, picture), group="tgp-upload", exclusive=True)

    image = property(BaseImage.image.fget, _set_image)  # type: ignore[attr-defined]

    @property
    def delivered(self) -> bool:
        """The picture last set has been uploaded (its cells follow in the same frame)."""
        renderable = self._renderable
        return (
            self._wanted is not None
            and self._image is self._wanted
            and isinstance(renderable, CompactTGPRenderable)
            and renderable.terminal_image_id is not None
        )

    def _pixel_size(self, picture: PILImage.Image) -> tuple[int, int]:
        """The pixels the picture is drawn at in our current size (what render will ask for)."""
        styled_width, styled_height = self._get_styled_size()
        size = ImageSize(picture.width, picture.height, width=styled_width, height=styled_height)
        return size.get_pixel_size(
            self.content_size.width, self.content_size.height, get_cell_size()
        )

    async def _prepare(self, picture: PILImage.Image) -> None:
        if not self.content_size.area:  # not laid out yet: encoded once it has a size
            self._prepared = None
            self._show(picture)
            return
        pixels = self._pixel_size(picture)
        self._prepared = (pixels, await asyncio.to_thread(_encode, picture, pixels))
        self._show(picture)

    def _show(self, picture: PILImage.Image) -> None:
        """The base setter, minus its layout pass: our size comes from CSS, not the picture,
        and a layout of the whole screen per preview frame was most of a slow frame."""
        if self._renderable:
            old = self._renderable
            if not (
                isinstance(old, CompactTGPRenderable) and self._is_cached_id(old.terminal_image_id)
            ):
                old.cleanup()  # a frame kept for replay stays uploaded
            self._renderable = None
        self._image = picture
        self._image_width, self._image_height = picture.width, picture.height
        self.refresh()

    def _needs_encoding(self, picture: object) -> bool:
        """Resized since the upload was encoded (the grid laid out anew)."""
        if not isinstance(picture, PILImage.Image) or not self.content_size.area:
            return False
        return self._prepared is None or self._prepared[0] != self._pixel_size(picture)

    def render(self) -> RenderResult:
        if not self.content_size.area:
            return ""  # nothing to draw in; a resize renders again
        if self.is_mounted and self._needs_encoding(self._image):
            # Encode again in a thread, blank meanwhile, rather than PNG-encode here.
            self.run_worker(
                deferred(self._prepare, self._image), group="tgp-upload", exclusive=True
            )
            return ""
        renderable = super().render()
        picture, prepared = self._image, self._prepared
        if isinstance(renderable, CompactTGPRenderable) and renderable.terminal_image_id is None:
            renderable.prepared = prepared
            cached = self._uploaded(picture) if isinstance(picture, PILImage.Image) else None
            if cached is not None:
                renderable.terminal_image_id = cached[0]  # uploaded and placed already
            elif isinstance(picture, PILImage.Image) and prepared is not None:
                renderable.on_upload = lambda image_id: self._remember_upload(
                    picture, prepared, image_id
                )
        return renderable
