"""Loading pictures for the screen: always in a thread, never on the event loop."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from PIL import Image

from imgen_tui.store.fresh_thumbnails import FRESH


def _open(path: Path, max_side: int | None) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        picture = image.convert("RGB")
    if max_side:
        picture.thumbnail((max_side, max_side))
    return picture


def picture_in_memory(path: Path) -> Image.Image | None:
    """A thumbnail this process just made, if it is still kept: it needs no load at all."""
    return FRESH.get(path)


async def load_picture(path: Path, max_side: int | None = None) -> Image.Image:
    """A stored picture; a thumbnail this process just made comes from memory, with no hop."""
    if max_side is None:
        fresh = picture_in_memory(path)
        if fresh is not None:
            return fresh
    return await asyncio.to_thread(_open, path, max_side)


def _decode(data: bytes, box: tuple[int, int] | None) -> Image.Image:
    """A preview frame decoded at most at the size it is shown: JPEG's `draft` decodes
    at 1/2, 1/4 or 1/8 scale for a fraction of the work."""
    with Image.open(io.BytesIO(data)) as image:
        if box:
            image.draft("RGB", box)
        image.load()
        picture = image.convert("RGB")
    if box:
        picture.thumbnail(box, Image.Resampling.BILINEAR)
    return picture


async def decode_preview(data: bytes, box: tuple[int, int] | None = None) -> Image.Image:
    """`box`: the pixel size the preview is drawn at (it is scaled to fit within it)."""
    return await asyncio.to_thread(_decode, data, box)
