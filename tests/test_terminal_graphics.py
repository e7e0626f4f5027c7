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

from imgen_tui.ui import graphics
from imgen_tui.ui.graphics import TerminalFacts, TmuxFacts, choose, decide
from imgen_tui.ui.passthrough import for_terminal, use_tmux_passthrough

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


def test_inside_tmux_without_passthrough_graphics_fall_back_naming_the_tmux_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    monkeypatch.setattr("imgen_tui.ui.graphics.detected", lambda: "tgp")
    monkeypatch.setattr(
        "imgen_tui.ui.graphics.tmux_facts", lambda: TmuxFacts((3, 3), False, "kitty(0.35.2)")
    )
    renderer, notice, passthrough = choose("auto")
    assert renderer == "halfcell" and not passthrough
    assert notice is not None and "tmux" in notice and "`set -g allow-passthrough on`" in notice


def facts(found: str, version: str | None = None, **environment: str) -> TerminalFacts:
    return TerminalFacts(found=found, version=version, environment=environment)


@pytest.mark.parametrize(
    ("version", "renderer"),
    [
        ("kitty(0.26.5)", "halfcell"),  # Debian 12's: no Unicode placeholders
        ("kitty(0.27.1)", "halfcell"),
        ("kitty(0.28.0)", "tgp"),
        ("kitty(0.35.2)", "tgp"),
        ("ghostty 1.1.0", "tgp"),
        ("WezTerm 20240203-110809-5046fc22", "halfcell"),  # answers TGP, placeholders broken
        (None, "halfcell"),  # said nothing: placeholders are not assumed
    ],
)
def test_tgp_placeholders_only_where_the_terminal_has_them(
    version: str | None, renderer: str
) -> None:
    choice = decide("auto", facts("tgp", version))
    assert choice.renderer == renderer
    if renderer == "halfcell":  # one line, naming what is used and why
        assert choice.notice is not None and "half-cell" in choice.notice
        assert "placeholders" in choice.notice and "\n" not in choice.notice
        if version:
            assert version.split("(")[0].split(" ")[0] in choice.notice
    else:
        assert choice.notice is None


@pytest.mark.parametrize(
    "environment",
    [{"TERM_PROGRAM": "iTerm.app"}, {"LC_TERMINAL": "iTerm2"}, {"TERM_PROGRAM": "WezTerm"},
     {"TERM_PROGRAM": "vscode"}],
)  # fmt: skip
def test_iterm2_inline_images_where_the_environment_says_so(environment: dict[str, str]) -> None:
    assert decide("auto", facts("sixel", None, **environment)) == ("iterm", None, False)


def test_an_explicit_choice_is_obeyed_and_sixel_stays_sixel() -> None:
    assert decide("sixel", facts("tgp", "kitty(0.26.5)")) == ("sixel", None, False)
    assert decide("auto", facts("sixel", "XTerm(379)")) == ("sixel", None, False)


@pytest.mark.parametrize(
    ("tmux", "expected", "in_notice"),
    [
        (TmuxFacts((3, 4), True, "kitty(0.35.2)"), ("tgp", True), None),
        (TmuxFacts((3, 3), True, "XTerm(379)"), ("sixel", True), None),
        (TmuxFacts((3, 3), True, "WezTerm 20240203"), ("iterm", True), None),
        (TmuxFacts((3, 3), True, "kitty(0.26.5)"), ("halfcell", False), "no graphics"),
        (TmuxFacts((3, 2), True, "XTerm(379)"), ("halfcell", False), "tmux 3.3 or newer"),
        (TmuxFacts((3, 3), False, "XTerm(379)"), ("halfcell", False), "allow-passthrough on"),
        (TmuxFacts((3, 3), True, None), ("halfcell", False), "half-cell"),
    ],
)
def test_inside_tmux_graphics_pass_through_when_tmux_allows(
    tmux: TmuxFacts, expected: tuple[str, bool], in_notice: str | None
) -> None:
    choice = decide("auto", TerminalFacts(found="sixel", environment={}, tmux=tmux))
    assert (choice.renderer, choice.passthrough) == expected
    if in_notice is None:
        assert choice.notice is None
    else:
        assert choice.notice is not None and in_notice in choice.notice


def test_inside_tmux_an_explicit_choice_is_obeyed_and_wrapped_when_it_can_be() -> None:
    on = TerminalFacts(found="halfcell", environment={}, tmux=TmuxFacts((3, 4), True, None))
    assert decide("sixel", on) == ("sixel", None, True)
    off = TerminalFacts(found="halfcell", environment={}, tmux=TmuxFacts((3, 4), False, None))
    choice = decide("sixel", off)
    assert choice[:1] == ("sixel",) and not choice.passthrough
    assert choice.notice is not None and "allow-passthrough on" in choice.notice
    assert decide("halfcell", off) == ("halfcell", None, False)


def test_passthrough_wraps_escapes_for_tmux() -> None:
    try:
        use_tmux_passthrough(True)
        assert for_terminal("\x1bPq#0!6~\x1b\\") == "\x1bPtmux;\x1b\x1bPq#0!6~\x1b\x1b\\\x1b\\"
    finally:
        use_tmux_passthrough(False)
    assert for_terminal("\x1bPq\x1b\\") == "\x1bPq\x1b\\"


REAL_FEW_COLOURS_NOTICE = graphics.few_colours_notice  # conftest silences it elsewhere


@pytest.mark.parametrize(
    ("environment", "warned"),
    [
        ({"TERM": "xterm"}, True),  # xterm's own TERM: Textual draws 16 colours
        ({"TERM": "screen"}, True),  # tmux's default
        ({}, True),
        ({"TERM": "xterm", "COLORTERM": "truecolor"}, False),
        ({"TERM": "screen", "COLORTERM": "24bit"}, False),
        ({"TERM": "tmux-256color"}, False),
        ({"TERM": "xterm", "TEXTUAL_COLOR_SYSTEM": "256"}, False),  # the operator chose
    ],
)
def test_half_cells_in_16_colours_say_what_to_set(
    environment: dict[str, str], warned: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graphics, "few_colours_notice", REAL_FEW_COLOURS_NOTICE)
    for name in ("TERM", "COLORTERM", "TEXTUAL_COLOR_SYSTEM", "TMUX"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    renderer, notice, _ = choose("halfcell")
    assert renderer == "halfcell"
    if warned:
        assert notice is not None and "COLORTERM=truecolor" in notice
        assert f"TERM={environment.get('TERM', '(unset)')}" in notice
    else:
        assert notice is None
    assert choose("sixel")[1] is None  # only half cells are drawn in Textual's colours
