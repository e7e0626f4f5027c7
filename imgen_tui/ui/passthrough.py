"""Graphics escapes through tmux: wrapped for passthrough when tmux allows it.

tmux (3.3+, with `allow-passthrough on`) hands a `DCS tmux; ... ST` sequence,
its ESC bytes doubled, to the terminal outside untouched. One terminal per
process, so the choice is made once at start-up (`graphics.choose`).
"""

from __future__ import annotations

_wrap_for_tmux = False


def use_tmux_passthrough(on: bool) -> None:
    global _wrap_for_tmux
    _wrap_for_tmux = on


def for_terminal(sequence: str) -> str:
    """A graphics escape sequence as it must be written to reach the terminal."""
    if not _wrap_for_tmux:
        return sequence
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
