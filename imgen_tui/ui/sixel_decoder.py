"""A strict Sixel decoder that reads the data the way xterm does (tests and `bench ui` use it).

It follows the DEC VT340 programmer reference as xterm (patch 379, Debian 12's)
implements it, and refuses anything a lenient decoder would guess at:

- `#Pc` selects colour register Pc; `#Pc;2;R;G;B` (or `;1;` HLS) *defines*
  register Pc and does not select it: xterm before patch 390 draws the next
  sixels with whatever register was selected before. A lenient decoder
  (ImageMagick, libsixel) selects on definition, so data that relies on it looks
  right there and wrong in xterm.
- Registers are indices into the terminal's table (256 with the README's
  `numColorRegisters: 256`); a pixel keeps the register, not the colour, so a
  register redefined later recolours every pixel drawn with it earlier.
- `"Pan;Pad;Ph;Pv` raster attributes give the aspect ratio and the size; with
  P2 = 0 or 2 the declared area starts filled with register 0.
- `$` returns to the band's first column, `-` moves down one band of six rows,
  `!Pn<sixel>` repeats; anything else in the data is an error.

The decoded picture is the colour of each pixel's register at the end, as the
terminal would show it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from PIL import Image

DCS = re.compile(r"\x1bP([0-9;]*)q(.*?)\x1b\\", re.S)
# xterm's VT340 default palette for the first 16 registers (the rest start black).
VT340_PALETTE = [
    (0, 0, 0), (20, 20, 80), (80, 13, 13), (20, 80, 20), (80, 20, 80), (20, 80, 80),
    (80, 80, 20), (53, 53, 53), (26, 26, 26), (33, 33, 60), (60, 26, 26), (33, 60, 33),
    (60, 33, 60), (33, 60, 60), (60, 60, 33), (80, 80, 80),
]  # fmt: skip


class SixelError(ValueError):
    """The data is not Sixel a strict terminal accepts."""


@dataclass
class Decoded:
    picture: Image.Image  # RGB, the declared raster size (or what was drawn)
    aspect: tuple[int, int]  # (vertical, horizontal) pixel aspect
    background_mode: int  # P2
    registers_used: int


def _percent(value: int) -> int:
    return (value * 255 + 50) // 100


def _hls(hue: int, lightness: int, saturation: int) -> tuple[int, int, int]:
    import colorsys

    # DEC hue 0 is blue, 120 red, 240 green: 240 degrees off the usual wheel.
    r, g, b = colorsys.hls_to_rgb(((hue + 240) % 360) / 360, lightness / 100, saturation / 100)
    return round(r * 100), round(g * 100), round(b * 100)


def decode(data: str, registers: int = 256, *, lenient: bool = False) -> Decoded:
    """Decode exactly one Sixel image from `data` (escape sequences around it are ignored).

    `lenient`: a definition also selects its register, as ImageMagick and libsixel
    read it; what differs between the two readings is what xterm draws wrong.
    """
    images = DCS.findall(data)
    if len(images) != 1:
        raise SixelError(f"expected one Sixel image, found {len(images)}")
    params_text, body = images[0]
    params = [int(p) if p else 0 for p in params_text.split(";")] if params_text else []
    background_mode = params[1] if len(params) > 1 else 0
    palette = [VT340_PALETTE[i] if i < 16 else (0, 0, 0) for i in range(registers)]
    aspect = (2, 1)
    declared = (0, 0)
    current = 3  # xterm's initial register
    pixels: dict[tuple[int, int], int] = {}
    row = col = 0
    started = False
    position = 0
    number = re.compile(r"[0-9]*(?:;[0-9]*)*")
    while position < len(body):
        char = body[position]
        position += 1
        if char in "\r\n ":
            continue
        if char == '"':
            if started:
                raise SixelError("raster attributes after the first sixel")
            match = number.match(body, position)
            assert match is not None
            position = match.end()
            values = [int(v) if v else 0 for v in match.group().split(";")]
            if len(values) < 2 or not values[0] or not values[1]:
                raise SixelError(f'raster attributes "{match.group()} lack an aspect ratio')
            aspect = (values[0], values[1])
            if len(values) >= 4:
                declared = (values[2], values[3])
            continue
        if char == "#":
            match = number.match(body, position)
            assert match is not None
            position = match.end()
            if not match.group():
                raise SixelError("# without a register number")
            values = [int(v) if v else 0 for v in match.group().split(";")]
            register = values[0] % registers
            if len(values) == 1:
                current = register
            elif len(values) == 5:
                space, *components = values[1:]
                if space == 2:
                    if max(components) > 100:
                        raise SixelError(f"RGB component over 100 in #{match.group()}")
                    palette[register] = (components[0], components[1], components[2])
                elif space == 1:
                    if components[0] > 360 or max(components[1:]) > 100:
                        raise SixelError(f"HLS out of range in #{match.group()}")
                    palette[register] = _hls(*components)
                else:
                    raise SixelError(f"unknown colour space {space}")
                if lenient:
                    current = register
            else:
                raise SixelError(f"# with {len(values)} parameters")
            continue
        repeat = 1
        if char == "!":
            match = re.compile(r"[0-9]+").match(body, position)
            if match is None:
                raise SixelError("! without a count")
            repeat = int(match.group())
            position = match.end()
            if position >= len(body):
                raise SixelError("data ends inside a repeat")
            char = body[position]
            position += 1
            if not "?" <= char <= "~":
                raise SixelError(f"repeat of a non-sixel {char!r}")
        if "?" <= char <= "~":
            if not started:
                started = True
                if background_mode != 1 and declared != (0, 0):
                    for y in range(declared[1]):
                        for x in range(declared[0]):
                            pixels[(x, y)] = 0
            bits = ord(char) - 0x3F
            for _ in range(repeat):
                for bit in range(6):
                    if bits & (1 << bit):
                        pixels[(col, row + bit)] = current
                col += 1
        elif char == "$":
            col = 0
        elif char == "-":
            col = 0
            row += 6
        else:
            raise SixelError(f"unexpected {char!r} in Sixel data")
    width = max(declared[0], max((x for x, _ in pixels), default=-1) + 1)
    height = max(declared[1], max((y for _, y in pixels), default=-1) + 1)
    picture = Image.new("RGB", (max(1, width), max(1, height)), (0, 0, 0))
    rgb = [tuple(_percent(v) for v in colour) for colour in palette]
    put = picture.load()
    assert put is not None
    for (x, y), register in pixels.items():
        put[x, y] = rgb[register]
    if aspect != (1, 1):
        vertical, horizontal = aspect
        picture = picture.resize((width * horizontal, height * vertical), Image.Resampling.NEAREST)
    return Decoded(picture, aspect, background_mode, len(set(pixels.values())))
