"""An iTerm2 inline image (OSC 1337: iTerm2, WezTerm, VS Code's terminal), sent once.

It is a Sixel picture in everything but the bytes: the same canvas (the
picture fitted and centred on the cells it covers), sent when the terminal
does not hold it yet and skipped with cursor moves on every other repaint. The
canvas goes as a PNG sized in cells, so the terminal draws it pixel for pixel.
"""

from __future__ import annotations

import base64
import io

from PIL import Image as PILImage
from textual.geometry import Region, Size

from imgen_tui.ui.passthrough import for_terminal
from imgen_tui.ui.widgets.sixel_picture import SixelPicture, fit_canvas


def inline_image(canvas: PILImage.Image, columns: int, rows: int) -> str:
    """The OSC 1337 File sequence that draws `canvas` over columns x rows cells."""
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", compress_level=1)  # fast: it goes once
    data = buffer.getvalue()
    arguments = f"inline=1;size={len(data)};width={columns};height={rows};preserveAspectRatio=0"
    return f"\x1b]1337;File={arguments}:{base64.b64encode(data).decode('ascii')}\x07"


def encode(
    picture: PILImage.Image, box: Size, background: tuple[int, int, int], dither: bool = True
) -> tuple[str, Region]:
    """`dither` is Sixel's: a PNG keeps every colour."""
    canvas, frame = fit_canvas(picture, box, background, whole_bands=False)
    return for_terminal(inline_image(canvas, frame.width, frame.height)), frame


class ItermPicture(SixelPicture):
    """Set `.image` to a PIL image or None: shown as an iTerm2 inline image."""

    DEFAULT_CSS = """
    ItermPicture { width: 100%; height: 100%; }
    """
    encode_picture = staticmethod(encode)
