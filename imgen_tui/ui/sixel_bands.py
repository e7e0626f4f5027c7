"""A Sixel encoder of Pillow's quantised picture, written band by band with numpy.

Why its own encoder, when libchafa (chafa.py) already writes correct Sixel in
C: libchafa builds its own palette and dithers against it, which took 25-35 ms
per 384 px thumbnail on this machine's cores and re-coloured even a picture
that already had fewer than 256 colours. Pillow's quantiser picks a palette
(fast octree, about a millisecond) and maps the picture onto it with
Floyd-Steinberg error diffusion (a few milliseconds), and this module writes
that palette image as it is: the registers are Pillow's palette, each pixel
its own index. The bands are built with whole-array numpy operations (no
Python loop per pixel, row or band), so the picture costs a few
milliseconds, most of them outside the GIL.

Two steps, not `quantize(dither=...)`: Pillow dithers only when it maps onto a
given palette; its octree quantiser alone never does, and a smooth sky then
steps into bands 35-90 px tall in the lightbox (seen in xterm).

What it writes is what xterm reads as the picture (see `sixel_decoder`): every
register is defined before any data, and each colour's row in a band starts
with a bare `#N`, which is the only thing xterm before patch 390 takes as
selecting a register.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

from imgen_tui.ui.sixel_encoder import BAND

REGISTERS = 256  # what the README's xterm has (`numColorRegisters: 256`), and Pillow's most
_EMPTY = ord("?")  # the sixel with no pixel set
_REPEAT = ord("!")
_HASH = ord("#")
_NEXT_ROW_SAME_BAND = ord("$")
_NEXT_BAND = ord("-")
_SHORTEST_REPEAT = 4  # `!4x` is as long as `xxxx`: shorter runs are written out


def encode_bands(canvas: Image.Image, dither: bool = True) -> str:
    """The canvas as a DCS Sixel sequence at exactly its size (its height whole bands)."""
    if canvas.height % BAND:
        raise ValueError(f"Sixel canvas height {canvas.height} is not a multiple of {BAND}")
    return write_palette_image(quantise(canvas, dither))


def quantise(canvas: Image.Image, dither: bool = True) -> Image.Image:
    """The canvas in at most 256 colours, error-diffused so gradients stay smooth.

    Undithered for a video's frames: diffusion noise differs from frame to
    frame and has long runs of nothing in common, which took playback from
    0.9 to 3.8 MB/s to the terminal (`imgen-tui bench ui`); at 8 frames a
    second the eye forgives bands sooner than an SSH link forgives bytes.
    """
    rgb = canvas.convert("RGB")
    palette = rgb.quantize(REGISTERS, Image.Quantize.FASTOCTREE)
    if not dither:
        return palette
    return rgb.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)


def write_palette_image(picture: Image.Image) -> str:
    """A palette ("P") image as Sixel: its palette as the registers, each pixel its index."""
    if picture.mode != "P":
        raise ValueError(f"Sixel bands need a palette image, not mode {picture.mode}")
    if picture.height % BAND:
        raise ValueError(f"Sixel canvas height {picture.height} is not a multiple of {BAND}")
    rows, used = _colour_rows(np.asarray(picture, dtype=np.uint8))
    palette = picture.getpalette() or []
    palette += [0] * (3 * REGISTERS - len(palette))
    definitions = "".join(
        f"#{register};2;{_percent(palette[3 * register])};"
        f"{_percent(palette[3 * register + 1])};{_percent(palette[3 * register + 2])}"
        for register in np.flatnonzero(used).tolist()
    )
    width, height = picture.size
    return f'\x1bP0;1;0q"1;1;{width};{height}{definitions}{rows}\x1b\\'


def _percent(level: int) -> int:
    """A 0-255 channel as the 0-100 Sixel colour definitions use, rounded."""
    return (level * 100 + 127) // 255


def _colour_rows(indices: npt.NDArray[np.uint8]) -> tuple[str, npt.NDArray[np.bool_]]:
    """The sixel data of a palette-index picture, and which registers it uses.

    Each band holds one row per colour it uses: `#N`, that colour's sixels
    (bit k set where the band's k-th pixel row has the colour), run-length
    coded, its trailing empty sixels dropped; then `$` to the next colour or
    `-` to the next band.
    """
    height, width = indices.shape
    bands = height // BAND
    by_band = indices.reshape(bands, BAND, width)
    # Every pixel's (band, colour) pair, numbered band * 256 + colour.
    pairs = (np.arange(bands, dtype=np.intp) * REGISTERS)[:, None, None] + by_band
    present = np.bincount(pairs.ravel(), minlength=bands * REGISTERS).astype(bool)
    chosen = np.flatnonzero(present)  # the pairs that occur, in band order, then colour
    colours = chosen % REGISTERS
    last_of_band = np.append(chosen[1:] // REGISTERS != chosen[:-1] // REGISTERS, True)

    # One row per chosen pair: its sixels (bit k: the band's k-th pixel row has the
    # colour), then one separator byte.
    row_of_pair = np.cumsum(present, dtype=np.intp) - 1
    pixel_rows = row_of_pair[pairs]
    stream = np.zeros((chosen.size, width + 1), dtype=np.uint8)
    columns = np.arange(width, dtype=np.intp)[None, :]
    for bit in range(BAND):  # one pixel per (band, column) per bit: no index repeats
        stream[pixel_rows[:, bit, :], columns] |= np.uint8(1 << bit)
    stream[:, :width] += _EMPTY
    stream[:, width] = np.where(last_of_band, _NEXT_BAND, _NEXT_ROW_SAME_BAND)
    flat = stream.ravel()

    # Runs of one character; a separator is never a sixel, so runs stay inside rows.
    starts = np.flatnonzero(np.concatenate(([True], flat[1:] != flat[:-1])))
    lengths = np.diff(np.append(starts, flat.size))
    characters = flat[starts]
    trailing_empty = (characters == _EMPTY) & (
        np.append(characters[1:], _NEXT_BAND) < _EMPTY  # followed by a separator
    )
    starts, lengths, characters = (
        starts[~trailing_empty],
        lengths[~trailing_empty],
        characters[~trailing_empty],
    )
    row_start = starts % (width + 1) == 0  # every row has a set sixel: its first run stays

    repeated = lengths >= _SHORTEST_REPEAT
    count_digits = _digits(lengths)
    written = np.where(repeated, count_digits + 2, lengths)  # `!<n><c>` or the run itself
    colour_digits = _digits(colours)
    prefix = np.zeros(starts.size, dtype=np.intp)
    prefix[row_start] = colour_digits + 1  # `#<colour>` before a row's first run
    ends = np.cumsum(written + prefix)
    at = ends - written  # where each run's own characters begin

    out = np.empty(int(ends[-1]), dtype=np.uint8)
    row_at = at[row_start] - prefix[row_start]
    out[row_at] = _HASH
    _write_numbers(out, row_at + 1, colours, colour_digits)

    for copy in range(_SHORTEST_REPEAT - 1):  # a short run's characters, one copy at a time
        spans = ~repeated & (lengths > copy)
        out[at[spans] + copy] = characters[spans]

    repeat_at = at[repeated]
    out[repeat_at] = _REPEAT
    _write_numbers(out, repeat_at + 1, lengths[repeated], count_digits[repeated])
    out[repeat_at + 1 + count_digits[repeated]] = characters[repeated]

    used = np.zeros(REGISTERS, dtype=bool)
    used[colours] = True
    return out[:-1].tobytes().decode("ascii"), used  # without the last band's `-`


def _digits(values: npt.NDArray[np.integer]) -> npt.NDArray[np.intp]:
    """How many decimal digits each value (0-9999) takes."""
    return 1 + (values >= 10) + (values >= 100) + (values >= 1000)


def _write_numbers(
    out: npt.NDArray[np.uint8],
    at: npt.NDArray[np.intp],
    values: npt.NDArray[np.integer],
    digits: npt.NDArray[np.intp],
) -> None:
    """Write each value in decimal at its position, most significant digit first."""
    for place in range(int(digits.max(initial=0))):
        has = digits > place
        power = 10 ** (digits[has] - 1 - place)
        out[at[has] + place] = (values[has] // power) % 10 + ord("0")
