"""`--ref KIND:IMAGE[:STRENGTH]`: reference images named on the command line, checked up front."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from imgen_tui.graphs.references import KINDS
from imgen_tui.yamlfile import ConfigError

DEFAULT_STRENGTH = 0.8
#: past 2 a ControlNet or IP-Adapter overrides the prompt entirely; the nodes allow more
MAX_STRENGTH = 2.0


def parse_references(values: Iterable[str]) -> tuple[tuple[str, str, float], ...]:
    """(kind, absolute image path, strength) per value; one ConfigError sentence for a bad one."""
    return tuple(parse_reference(value) for value in values)


def parse_reference(value: str, label: str = "--ref") -> tuple[str, str, float]:
    """One KIND:IMAGE[:STRENGTH]; `label` names where it was typed in the error sentence.

    Reads the file's header (call it in a thread from the TUI).
    """
    kind, _, rest = value.partition(":")
    path, strength = rest, DEFAULT_STRENGTH
    head, colon, tail = rest.rpartition(":")
    if colon and head:
        try:
            path, strength = head, float(tail)
        except ValueError:
            path = rest  # a colon inside the file name, not a strength
    if kind not in KINDS or not path:
        raise ConfigError(
            f"{label} {value!r} is not KIND:IMAGE[:STRENGTH] with KIND one of {', '.join(KINDS)}"
        )
    if not math.isfinite(strength) or not 0 <= strength <= MAX_STRENGTH:
        raise ConfigError(
            f"{label} {value!r}: strength {strength:g} is out of range; give 0 to {MAX_STRENGTH:g}"
        )
    image = Path(path).expanduser()
    if not image.is_file():
        raise ConfigError(f"{label} {value!r}: {path} is not a file; give an image to keep")
    try:
        with Image.open(image) as opened:
            opened.verify()
    except (OSError, UnidentifiedImageError, SyntaxError):
        raise ConfigError(
            f"{label} {value!r}: {path} is not an image Pillow can read; give a PNG, JPEG or WebP"
        ) from None
    return kind, str(image.resolve()), strength
