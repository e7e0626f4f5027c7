"""Sixel encoding: our numpy band writer, textual-image's encoder as the fallback.

Why not textual-image's encoder alone: it is pure Python (8-55 ms per 384 px
picture on this machine's cores) and it holds the GIL all that time, so a
thread does not keep the event loop free. And its output is drawn wrong by
xterm: it defines a colour register (`#N;2;R;G;B`) on the colour's first use
and takes that as selecting it, but xterm (patch 379, Debian 12's; before
patch 390) only selects a register on a bare `#N`, as DEC's PPLv2 reads. So the
first run of every colour is drawn with whichever register was selected
before: the wrong colour along the top band (where most colours are first
used) and streaks where a colour first appears further down.

`sixel_bands` defines its palette first and selects with `#N`, and does its
work in numpy and Pillow's C quantiser (3-11 ms a thumbnail). If numpy cannot
load, textual-image's encoder is used with each definition followed by its
selection (the fix for xterm), and the app says so once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import cache

from PIL import Image

log = logging.getLogger(__name__)
SixelEncoder = Callable[[Image.Image, bool], str]  # (canvas, dither)
BAND = 6  # rows per sixel band: a picture whose height is a multiple of it encodes exactly
_DEFINITION = re.compile(r"#(\d+);([12]);(\d+);(\d+);(\d+)")


def textual_image_sixel(canvas: Image.Image, dither: bool = True) -> str:
    """textual-image's encoder, its register definitions made to select too (see above).
    It always dithers its own way: `dither` is for the band writer."""
    from textual_image._sixel import image_to_sixels

    return _DEFINITION.sub(r"#\1;\2;\3;\4;\5#\1", image_to_sixels(canvas.convert("RGB")))


def bands_sixel(canvas: Image.Image, dither: bool = True) -> str:
    """The numpy band writer, imported only when first used (numpy is a large import)."""
    from imgen_tui.ui.sixel_bands import encode_bands

    return encode_bands(canvas, dither)


def _probe(encoder: SixelEncoder) -> None:
    """Encode a tiny picture, so a library that imports but cannot run is found now."""
    encoder(Image.new("RGB", (8, BAND * 2), (200, 40, 40)), True)


@cache
def choose_encoder() -> tuple[str, SixelEncoder, str | None]:
    """(name, encoder, a one-line notice when the fast one could not load)."""
    try:
        _probe(bands_sixel)
    except Exception as error:  # an ImportError, a numpy built for another CPU
        log.warning("numpy Sixel encoder unavailable", exc_info=True)
        return (
            "textual-image",
            textual_image_sixel,
            f"numpy could not be loaded ({type(error).__name__}); Sixel pictures use "
            "the slower Python encoder (pip install numpy to fix).",
        )
    return "numpy", bands_sixel, None


def encode_sixel(canvas: Image.Image, dither: bool = True) -> str:
    return choose_encoder()[1](canvas, dither)
