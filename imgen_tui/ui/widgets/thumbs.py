"""Loading pictures for the screen: always in a thread, never on the event loop."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from PIL import Image


def _open(path: Path, max_side: int | None) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        picture = image.convert("RGB")
    if max_side:
        picture.thumbnail((max_side, max_side))
    return picture


async def load_picture(path: Path, max_side: int | None = None) -> Image.Image:
    return await asyncio.to_thread(_open, path, max_side)


def _decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.convert("RGB")


async def decode_preview(data: bytes) -> Image.Image:
    return await asyncio.to_thread(_decode, data)
