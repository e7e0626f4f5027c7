"""Which terminal graphics the thumbnails use: TGP, Sixel, half cells or unicode blocks.

textual-image detects the terminal when it is imported (it must, before
Textual takes the terminal over), so the choice is made once, before the app
starts. Inside tmux, TGP and Sixel need passthrough wrapping that
textual-image 0.12 (the newest for Python 3.11) does not do, so the app falls
back to half cells there and says so once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal

from textual.widget import Widget
from textual_image.renderable import Image as AutoRenderable
from textual_image.renderable.sixel import Image as SixelRenderable
from textual_image.renderable.tgp import Image as TGPRenderable
from textual_image.widget import UnicodeImage

from imgen_tui.ui.widgets.halfcell_picture import HalfcellPicture
from imgen_tui.ui.widgets.sixel_picture import SixelPicture
from imgen_tui.ui.widgets.tgp_picture import TGPPicture

Graphics = Literal["auto", "tgp", "sixel", "halfcell", "unicode"]
GRAPHICS_CHOICES: tuple[str, ...] = ("auto", "tgp", "sixel", "halfcell", "unicode")

_WIDGETS: dict[str, type[Widget]] = {
    "tgp": TGPPicture,  # fewer bytes per repaint; see its module
    "sixel": SixelPicture,  # sends each picture once; see its module
    "halfcell": HalfcellPicture,  # keeps the aspect ratio; see its module
    "unicode": UnicodeImage,
}


def detected() -> str:
    if AutoRenderable is TGPRenderable:
        return "tgp"
    if AutoRenderable is SixelRenderable:
        return "sixel"
    return "halfcell"


def choose(requested: Graphics) -> tuple[str, str | None]:
    """(renderer, a one-line notice for the operator or None)."""
    if requested != "auto":
        return requested, None
    found = detected()
    if os.environ.get("TMUX") and found in ("tgp", "sixel"):
        return "halfcell", (
            f"Inside tmux: {found.upper()} images need passthrough, which this version of "
            "textual-image lacks; showing half-cell thumbnails (use --graphics to force)."
        )
    return found, None


def image_widget(renderer: str) -> Callable[..., Widget]:
    """The picture widget class: called with a PIL image (or None) and id/classes."""
    return _WIDGETS[renderer]
