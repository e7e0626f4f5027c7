"""Sixel encoding: libchafa (through chafa.py) in C, textual-image's encoder as the fallback.

Why not textual-image's encoder alone: it is pure Python (8-55 ms per 384 px
picture on this machine's cores) and it holds the GIL all that time, so a
thread does not keep the event loop free. And its output is drawn wrong by
xterm: it defines a colour register (`#N;2;R;G;B`) on the colour's first use
and takes that as selecting it, but xterm (patch 379, Debian 12's; before
patch 390) only selects a register on a bare `#N`, as DEC's PPLv2 reads. So the
first run of every colour is drawn with whichever register was selected
before: the wrong colour along the top band (where most colours are first
used) and streaks where a colour first appears further down.

libchafa defines its palette first and selects with `#N`, and its encoder
runs in C through ctypes, which lets go of the GIL. The chafa.py wheel
bundles libchafa, so it installs from PyPI with nothing else. If it cannot
load, textual-image's encoder is used with each definition followed by its
selection (the fix for xterm), and the app says so once.
"""

from __future__ import annotations

import ctypes
import logging
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from PIL import Image

log = logging.getLogger(__name__)
SixelEncoder = Callable[[Image.Image], str]
BAND = 6  # rows per sixel band: a picture whose height is a multiple of it encodes exactly
_DEFINITION = re.compile(r"#(\d+);([12]);(\d+);(\d+);(\d+)")


def textual_image_sixel(canvas: Image.Image) -> str:
    """textual-image's encoder, its register definitions made to select too (see above)."""
    from textual_image._sixel import image_to_sixels

    return _DEFINITION.sub(r"#\1;\2;\3;\4;\5#\1", image_to_sixels(canvas.convert("RGB")))


@cache
def _chafa() -> tuple[Any, Any]:
    """The chafa module and a terminal description that has the Sixel sequences."""
    import chafa

    return chafa, chafa.TermDb().get_fallback_info()


def chafa_sixel(canvas: Image.Image) -> str:
    """libchafa's Sixel encoder, at exactly the canvas's size (its height a multiple of 6)."""
    chafa, term_info = _chafa()
    rgb = canvas.convert("RGB")
    if rgb.height % BAND:  # libchafa rounds the height down to whole bands and rescales
        raise ValueError(f"Sixel canvas height {rgb.height} is not a multiple of {BAND}")
    config = chafa.CanvasConfig()
    config.pixel_mode = chafa.PixelMode.CHAFA_PIXEL_MODE_SIXELS
    # Without dithering libchafa's 256 colours step a smooth sky into stripes (seen in
    # xterm's lightbox); error diffusion keeps the gradient, for about the same bytes.
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


def _probe(encoder: SixelEncoder) -> None:
    """Encode a tiny picture, so a library that imports but cannot run is found now."""
    encoder(Image.new("RGB", (8, BAND * 2), (200, 40, 40)))


@cache
def choose_encoder() -> tuple[str, SixelEncoder, str | None]:
    """(name, encoder, a one-line notice when the fast one could not load)."""
    try:
        _probe(chafa_sixel)
    except Exception as error:  # an ImportError, a missing libchafa, an ABI mismatch
        log.warning("libchafa Sixel encoder unavailable", exc_info=True)
        return (
            "textual-image",
            textual_image_sixel,
            f"libchafa could not be loaded ({type(error).__name__}); Sixel pictures use "
            "the slower Python encoder (pip install chafa.py to fix).",
        )
    return "libchafa", chafa_sixel, None


def encode_sixel(canvas: Image.Image) -> str:
    return choose_encoder()[1](canvas)
