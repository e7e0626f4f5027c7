"""Sixel encoders the app does not use, kept so `imgen-tui bench ui` can measure them.

libchafa (through chafa.py, whose wheel bundles it) writes correct Sixel in C
and was the app's encoder until the numpy one (`sixel_bands`) replaced it:
libchafa builds its own palette and dithers against it, 25-35 ms per 384 px
thumbnail here against 3-11 ms. chafa.py is a test dependency, not the app's;
without it the bench table leaves its row out.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

from PIL import Image

from imgen_tui.ui.sixel_encoder import BAND


@cache
def _chafa() -> tuple[Any, Any]:
    """The chafa module and a terminal description that has the Sixel sequences."""
    import chafa

    return chafa, chafa.TermDb().get_fallback_info()


def chafa_available() -> bool:
    try:
        _chafa()
    except Exception:  # not installed, or its bundled library does not load here
        return False
    return True


def chafa_sixel(canvas: Image.Image) -> str:
    """libchafa's Sixel encoder, at exactly the canvas's size (its height a multiple of 6)."""
    chafa, term_info = _chafa()
    rgb = canvas.convert("RGB")
    if rgb.height % BAND:  # libchafa rounds the height down to whole bands and rescales
        raise ValueError(f"Sixel canvas height {rgb.height} is not a multiple of {BAND}")
    config = chafa.CanvasConfig()
    config.pixel_mode = chafa.PixelMode.CHAFA_PIXEL_MODE_SIXELS
    # Without dithering libchafa's 256 colours step a smooth sky into stripes.
    config.dither_mode = chafa.DitherMode.CHAFA_DITHER_MODE_DIFFUSION
    # One cell as wide as the picture and a band high: the canvas is the picture, unscaled.
    config.cell_width, config.cell_height = rgb.width, BAND
    config.width, config.height = 1, rgb.height // BAND
    canvas_ = chafa.Canvas(config)
    data = rgb.tobytes()
    pixels = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
    canvas_.draw_all_pixels(
        chafa.PixelType.CHAFA_PIXEL_RGB8, pixels, rgb.width, rgb.height, rgb.width * 3
    )
    output: bytes = canvas_.print(term_info)
    return output.decode("ascii")
