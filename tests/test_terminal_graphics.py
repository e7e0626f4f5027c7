"""The escape streams the thumbnails become, parsed back: TGP (Kitty) and Sixel.

Debian's kitty is too old for TGP's unicode placeholders, so TGP is checked
by parsing what would reach the terminal: the transmitted PNG, the virtual
placement, and the placeholder cells that point at it.
"""

from __future__ import annotations

import base64
import io
import re
import sys

import pytest
from PIL import Image
from rich.console import Console
from textual_image._terminal import get_cell_size
from textual_image.renderable.sixel import Image as SixelRenderable
from textual_image.renderable.tgp import Image as TGPRenderable

from imgen_tui.ui.graphics import choose

TGP_MESSAGE = re.compile(r"\x1b_G([^;\x1b]*)(?:;([^\x1b]*))?\x1b\\")
SIXEL = re.compile(r"\x1bP([0-9;]*)q(.*?)\x1b\\", re.S)
PLACEHOLDER = "\U0010eeee"
COLUMNS, ROWS = 12, 6


def picture() -> Image.Image:
    """Left half red, right half blue: enough to tell the pixels survived."""
    image = Image.new("RGB", (64, 64), (220, 30, 30))
    image.paste((30, 30, 220), (32, 0, 64, 64))
    return image


def render(renderable: object) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=COLUMNS, height=ROWS, force_terminal=True)
    console.print(renderable, height=ROWS)
    return buffer.getvalue()


def test_tgp_sends_a_png_once_then_only_placeholders(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "__stdout__", out)  # where textual-image writes TGP commands
    image = TGPRenderable(picture(), width=COLUMNS, height=ROWS)
    cells = render(image)

    messages = [
        (dict(kv.split("=") for kv in keys.split(",")), payload or "")
        for keys, payload in TGP_MESSAGE.findall(out.getvalue())
    ]
    transmit = [(keys, payload) for keys, payload in messages if keys.get("f") == "100"]
    assert transmit and all(keys["i"] == transmit[0][0]["i"] for keys, _ in transmit)
    assert [keys["m"] for keys, _ in transmit][-1] == "0"  # the last chunk says so
    assert all(len(payload) <= 4096 for _, payload in transmit)
    png = base64.b64decode("".join(payload for _, payload in transmit))
    with Image.open(io.BytesIO(png)) as sent:
        cell_width, cell_height = get_cell_size()
        assert sent.format == "PNG"
        assert sent.size == (COLUMNS * cell_width, ROWS * cell_height)
        rgb = sent.convert("RGB")
        left, right = rgb.getpixel((2, 2)), rgb.getpixel((sent.width - 3, 2))
        assert isinstance(left, tuple) and isinstance(right, tuple)
        assert left[0] > 150 > left[2] and right[2] > 150 > right[0]
    (placement,) = [keys for keys, _ in messages if keys.get("a") == "p"]
    assert placement["U"] == "1" and placement["i"] == transmit[0][0]["i"]
    assert (placement["c"], placement["r"]) == (str(COLUMNS), str(ROWS))
    assert cells.count(PLACEHOLDER) == COLUMNS * ROWS

    out.truncate(0)
    out.seek(0)
    again = render(image)  # a repaint: the cursor moved, a progress bar ticked
    assert out.getvalue() == ""  # no image data sent the second time
    assert again.count(PLACEHOLDER) == COLUMNS * ROWS


def test_sixel_output_is_a_well_formed_picture_of_the_right_size() -> None:
    cells = render(SixelRenderable(picture(), width=COLUMNS, height=ROWS))
    (match,) = SIXEL.findall(cells)
    _, body = match
    raster = re.match(r'"1;1;(\d+);(\d+)', body)
    assert raster is not None
    width, height = int(raster.group(1)), int(raster.group(2))
    cell_width, cell_height = get_cell_size()
    assert (width, height) == (COLUMNS * cell_width, ROWS * cell_height)
    palette = {
        int(index): tuple(int(v) for v in rgb.split(";"))
        for index, rgb in re.findall(r"#(\d+);2;(\d+;\d+;\d+)", body)
    }
    assert palette and all(0 <= v <= 100 for colour in palette.values() for v in colour)
    reds = [c for c in palette.values() if c[0] > 60 and c[2] < 40]
    blues = [c for c in palette.values() if c[2] > 60 and c[0] < 40]
    assert reds and blues
    bands = body.rstrip("-").count("-") + 1  # a "-" ends each band of six pixel rows
    assert bands == -(-height // 6)
    assert set(re.sub(r'"[0-9;]*|#[0-9;]*|![0-9]+|[$\-]', "", body)) <= {
        chr(c) for c in range(0x3F, 0x7F)
    }
    # the picture is drawn over placeholder spaces, with the cursor saved and restored
    assert cells.count("\x1b7") == 1 and cells.count("\x1b8") == 1


def test_inside_tmux_graphics_fall_back_with_a_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    monkeypatch.setattr("imgen_tui.ui.graphics.detected", lambda: "tgp")
    renderer, notice = choose("auto")
    assert renderer == "halfcell" and notice is not None and "tmux" in notice
    assert choose("sixel") == ("sixel", None)  # an explicit choice is obeyed
