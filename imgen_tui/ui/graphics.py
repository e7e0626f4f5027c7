"""Which terminal graphics the pictures use: TGP, Sixel, iTerm2, half cells or unicode blocks.

textual-image detects Sixel and TGP when it is imported (it must, before
Textual takes the terminal over). On top of that, before the app starts:

- TGP is drawn with Unicode placeholders, which kitty has only since 0.28
  (Debian 12 ships 0.26: every picture was boxes). The terminal is asked its
  name and version (XTVERSION, `CSI > q`); placeholders are used only where
  they are known to work (kitty 0.28+, ghostty), else the app falls back and
  says why in one line.
- iTerm2's inline images (OSC 1337: iTerm2, WezTerm, VS Code's terminal) are
  recognised from `TERM_PROGRAM` / `LC_TERMINAL`.
- Inside tmux the outer terminal is what draws: tmux 3.3+ knows its name
  (`#{client_termtype}`) and, with `allow-passthrough on`, passes wrapped
  graphics through; when passthrough is off the notice names the tmux line
  that turns it on, and pictures are half cells meanwhile.

Every decision is a pure function of `TerminalFacts`, so it is tested without
a terminal; `gather_facts()` is the only part that asks one.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from textual.widget import Widget
from textual_image.renderable import Image as AutoRenderable
from textual_image.renderable.sixel import Image as SixelRenderable
from textual_image.renderable.tgp import Image as TGPRenderable
from textual_image.widget import UnicodeImage

from imgen_tui.ui.sixel_encoder import choose_encoder
from imgen_tui.ui.widgets.halfcell_picture import HalfcellPicture
from imgen_tui.ui.widgets.iterm_picture import ItermPicture
from imgen_tui.ui.widgets.sixel_picture import SixelPicture
from imgen_tui.ui.widgets.tgp_picture import TGPPicture

log = logging.getLogger(__name__)

Graphics = Literal["auto", "tgp", "sixel", "iterm", "halfcell", "unicode"]
GRAPHICS_CHOICES: tuple[str, ...] = ("auto", "tgp", "sixel", "iterm", "halfcell", "unicode")
PASSTHROUGH_LINE = "set -g allow-passthrough on"
ITERM_PROGRAMS = {"iTerm.app": "iTerm2", "WezTerm": "WezTerm", "vscode": "VS Code"}

_WIDGETS: dict[str, type[Widget]] = {
    "tgp": TGPPicture,  # fewer bytes per repaint; see its module
    "sixel": SixelPicture,  # sends each picture once; see its module
    "iterm": ItermPicture,  # OSC 1337, sent once like Sixel
    "halfcell": HalfcellPicture,  # keeps the aspect ratio; see its module
    "unicode": UnicodeImage,
}


@dataclass(frozen=True)
class TmuxFacts:
    version: tuple[int, int] | None  # (3, 3) for "tmux 3.3a"
    passthrough: bool  # allow-passthrough is on (or all)
    outer: str | None  # the terminal outside, as tmux learnt it: "kitty(0.26.5)"


@dataclass(frozen=True)
class TerminalFacts:
    found: str  # what textual-image's queries found: tgp, sixel, halfcell, unicode
    version: str | None = None  # the XTVERSION answer: "kitty(0.26.5)", "XTerm(379)"
    environment: Mapping[str, str] | None = None
    tmux: TmuxFacts | None = None  # None: not inside tmux


class Choice(NamedTuple):
    renderer: str
    notice: str | None  # one line for the operator, or None
    passthrough: bool  # graphics escapes are wrapped for tmux


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def placeholder_support(version: str | None) -> tuple[bool, str]:
    """(TGP placeholders work, the terminal's name as it says it)."""
    if not version:
        return False, "this terminal (it did not say which it is)"
    name = version.split("(")[0].split(" ")[0]
    lowered = name.lower()
    if lowered == "kitty":
        return _numbers(version) >= (0, 28), version.replace("(", " ").rstrip(")")
    return lowered == "ghostty", version.replace("(", " ").rstrip(")")


def _renderer_for_outer(outer: str, environment: Mapping[str, str]) -> str | None:
    """The renderer for the terminal outside tmux, from its XTVERSION name."""
    lowered = outer.lower()
    if lowered.startswith(("kitty", "ghostty")):
        return "tgp" if placeholder_support(outer)[0] else None
    if lowered.startswith(("iterm2", "wezterm")) or environment.get("LC_TERMINAL") == "iTerm2":
        return "iterm"
    if lowered.startswith(("xterm", "foot", "mlterm", "contour", "konsole", "mintty")):
        return "sixel"
    return None


def _iterm_program(environment: Mapping[str, str]) -> str | None:
    if environment.get("LC_TERMINAL") == "iTerm2":
        return "iTerm2"
    return ITERM_PROGRAMS.get(environment.get("TERM_PROGRAM", ""))


def decide(requested: Graphics, facts: TerminalFacts) -> Choice:
    environment = facts.environment if facts.environment is not None else {}
    tmux = facts.tmux
    if tmux is not None:
        return _inside_tmux(requested, facts, tmux, environment)
    if requested != "auto":
        return Choice(requested, None, False)
    program = _iterm_program(environment)
    if program:
        return Choice("iterm", None, False)
    if facts.found == "tgp":
        works, name = placeholder_support(facts.version)
        if works:
            return Choice("tgp", None, False)
        return Choice(
            "halfcell",
            f"TGP pictures need Unicode placeholders, which {name} lacks (kitty has them "
            "since 0.28): showing half-cell pictures (--graphics tgp to force).",
            False,
        )
    return Choice(facts.found, None, False)


def _inside_tmux(
    requested: Graphics, facts: TerminalFacts, tmux: TmuxFacts, environment: Mapping[str, str]
) -> Choice:
    wanted: str | None = requested if requested != "auto" else None
    if wanted is None and tmux.outer:
        wanted = _renderer_for_outer(tmux.outer, environment)
    if wanted is None and environment.get("LC_TERMINAL") == "iTerm2":
        wanted = "iterm"
    if wanted is None:
        return Choice(
            "halfcell",
            "Inside tmux: the terminal outside "
            + (f"({tmux.outer}) " if tmux.outer else "")
            + "has no graphics tmux can pass on; showing half-cell pictures (--graphics to force).",
            False,
        )
    if wanted not in ("tgp", "sixel", "iterm"):
        return Choice(wanted, None, False)
    label = {"tgp": "TGP", "sixel": "Sixel", "iterm": "iTerm2"}[wanted]
    old = tmux.version is not None and tmux.version < (3, 3)
    if old or not tmux.passthrough:
        if old:
            assert tmux.version is not None
            major, minor = tmux.version
            why = f"need tmux 3.3 or newer to pass through (this is {major}.{minor})"
        else:
            why = f"need passthrough: add `{PASSTHROUGH_LINE}` to ~/.tmux.conf"
        if requested != "auto":  # obeyed, but the operator is told why it may not show
            return Choice(wanted, f"Inside tmux: {label} pictures {why}.", False)
        return Choice(
            "halfcell", f"Inside tmux: {label} pictures {why}; showing half cells.", False
        )
    return Choice(wanted, None, True)


def detected() -> str:
    if AutoRenderable is TGPRenderable:
        return "tgp"
    if AutoRenderable is SixelRenderable:
        return "sixel"
    return "halfcell"


def query_version(timeout: float = 0.3) -> str | None:
    """Ask the terminal its name and version (XTVERSION), before Textual reads stdin.

    Device attributes are asked right after: every terminal answers those, so a
    terminal that ignores XTVERSION costs no timeout.
    """
    stdin, stdout = sys.__stdin__, sys.__stdout__
    if sys.platform == "win32" or not stdin or not stdout or not stdout.isatty():
        return None
    try:
        from textual_image._posix import capture_mode, read

        answer = ""
        with capture_mode():
            stdout.write("\x1b[>0q\x1b[c")
            stdout.flush()
            while not re.search(r"\x1b\[\?[0-9;]*c", answer):
                answer += read(stdin.fileno(), 64, timeout)
    except (OSError, TimeoutError, ValueError) as error:
        log.debug("no XTVERSION answer: %s", error)
        return None
    match = re.search(r"\x1bP>\|(.*?)\x1b\\", answer)
    return match.group(1) if match else None


def _tmux(*args: str) -> str:
    try:
        done = subprocess.run(
            ["tmux", *args], capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def tmux_facts() -> TmuxFacts:
    numbers = _numbers(_tmux("-V"))
    version = (numbers[0], numbers[1] if len(numbers) > 1 else 0) if numbers else None
    passthrough = _tmux("show", "-gv", "allow-passthrough") in ("on", "all")
    outer = _tmux("display", "-p", "#{client_termtype}") or None
    return TmuxFacts(version, passthrough, outer)


def gather_facts() -> TerminalFacts:
    environment = dict(os.environ)
    in_tmux = bool(environment.get("TMUX"))
    version = None if in_tmux else query_version()  # inside tmux, tmux would answer
    return TerminalFacts(
        found=detected(),
        version=version,
        environment=environment,
        tmux=tmux_facts() if in_tmux else None,
    )


def choose(requested: Graphics, facts: TerminalFacts | None = None) -> Choice:
    """The renderer, a one-line notice for the operator or None, and tmux passthrough."""
    if facts is None:
        if requested != "auto" and not os.environ.get("TMUX"):
            facts = TerminalFacts(found=requested)  # obeyed: nothing to ask the terminal
        else:
            facts = gather_facts()
    choice = decide(requested, facts)
    if choice.renderer == "halfcell":
        colours = few_colours_notice(os.environ)
        if colours:
            notice = f"{choice.notice} {colours}" if choice.notice else colours
            choice = choice._replace(notice=notice)
    if choice.renderer == "sixel":
        _, _, encoder_notice = choose_encoder()
        if encoder_notice:
            notice = f"{choice.notice} {encoder_notice}" if choice.notice else encoder_notice
            choice = choice._replace(notice=notice)
    return choice


def few_colours_notice(environment: Mapping[str, str]) -> str | None:
    """What to set when Textual would draw in 16 colours, which half-cell pictures cannot use.

    Textual (through Rich) takes the colours from the environment alone: without
    COLORTERM=truecolor and with a TERM that does not end in -256color (xterm's
    own `xterm`, tmux's default `screen`) it draws 16, and a picture turns into
    flat grey and cyan blocks. Terminals that run this app draw 24-bit colour.
    """
    if environment.get("TEXTUAL_COLOR_SYSTEM", "auto") != "auto":
        return None  # the operator chose
    if environment.get("COLORTERM", "").lower() in ("truecolor", "24bit"):
        return None
    term = environment.get("TERM", "")
    if term.endswith(("-256color", "-direct")):
        return None
    return (
        f"TERM={term or '(unset)'} without COLORTERM=truecolor: colours are cut to 16 and "
        "half-cell pictures lose theirs; start the app with COLORTERM=truecolor."
    )


def image_widget(renderer: str) -> Callable[..., Widget]:
    """The picture widget class: called with a PIL image (or None) and id/classes."""
    return _WIDGETS[renderer]
