"""The numpy Sixel encoder, read back by the strict (xterm) decoder: Pillow's palette image
exactly, run lengths and bands at their edges, and what happens without numpy."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops

from imgen_tui.ui import sixel_encoder
from imgen_tui.ui.sixel_bands import REGISTERS, encode_bands
from imgen_tui.ui.sixel_decoder import DCS, decode
from imgen_tui.ui.sixel_encoder import BAND
from tests.test_terminal_pictures import sample

PERCENT_ROUNDING = 2  # 0-255 through 0-100 and back is off by at most this


def quantised(picture: Image.Image) -> Image.Image:
    """What the encoder promises to draw: Pillow's octree palette image, as RGB."""
    return picture.quantize(
        REGISTERS, Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG
    ).convert("RGB")


def largest_difference(shown: Image.Image, expected: Image.Image) -> int:
    assert shown.size == expected.size
    extremes = ImageChops.difference(shown.convert("RGB"), expected).getextrema()
    return max(high for _, high in extremes)  # type: ignore[misc]


def body(data: str) -> str:
    """The sixel data after the raster attributes and the palette definitions."""
    (match,) = DCS.findall(data)
    return re.sub(r'^"[0-9;]*(#\d+;2;\d+;\d+;\d+)*', "", match[1])


def test_a_many_coloured_picture_is_pillows_palette_image_pixel_for_pixel() -> None:
    picture = sample()  # colours first used far down the picture, where xterm went wrong
    shown = decode(encode_bands(picture))
    assert shown.picture.size == picture.size and shown.aspect == (1, 1)
    assert largest_difference(shown.picture, quantised(picture)) <= PERCENT_ROUNDING


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(1, 70),
    bands=st.integers(1, 5),
    colours=st.lists(
        st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
        min_size=1,
        max_size=6,
    ),
    seed=st.integers(0, 2**16),
    stripes=st.integers(1, 12),
)
def test_any_picture_decodes_as_its_palette_image(
    width: int,
    bands: int,
    colours: list[tuple[int, int, int]],
    seed: int,
    stripes: int,
) -> None:
    """Runs of every length (short ones written out, longer ones `!n`) and one to five bands."""
    import random

    chooser = random.Random(seed)
    picture = Image.new("RGB", (width, bands * BAND))
    pixels = [
        colours[(x // stripes + chooser.randrange(2)) % len(colours)]
        for _ in range(picture.height)
        for x in range(width)
    ]
    picture.putdata(pixels)
    shown = decode(encode_bands(picture))
    assert largest_difference(shown.picture, quantised(picture)) <= PERCENT_ROUNDING


@pytest.mark.parametrize(
    ("width", "written"),
    [(1, "~"), (3, "~~~"), (4, "!4~"), (9, "!9~"), (10, "!10~"), (999, "!999~"), (1000, "!1000~")],
)
def test_a_run_is_written_out_below_four_and_counted_from_four(width: int, written: str) -> None:
    data = encode_bands(Image.new("RGB", (width, BAND), (10, 200, 90)))
    assert body(data) == f"#0{written}"
    assert decode(data).picture.size == (width, BAND)


def test_each_band_lists_its_colours_with_a_bare_selection_and_drops_trailing_empties() -> None:
    picture = Image.new("RGB", (8, 2 * BAND), (255, 255, 255))
    picture.paste((0, 0, 0), (0, 0, 2, 1))  # band 1: black only in its first row, two columns
    data = encode_bands(picture)
    black, white = sorted(re.findall(r"#(\d+);2;(\d+);(\d+);(\d+)", data), key=lambda d: int(d[1]))
    rows = body(data).split("-")
    assert len(rows) == 2  # two bands, no `-` after the last
    band_one = rows[0].split("$")
    assert f"#{black[0]}@@" in band_one  # rows 0 of columns 0-1, nothing after them
    assert f"#{white[0]}}}}}!6~" in band_one  # rows 1-5 under the black, then all six
    assert rows[1] == f"#{white[0]}!8~"  # band 2 has no black at all


def test_a_height_off_the_bands_is_refused_with_what_to_do() -> None:
    with pytest.raises(ValueError, match="height 7 is not a multiple of 6"):
        encode_bands(Image.new("RGB", (4, 7)))


def test_without_numpy_the_python_encoder_is_used_and_the_app_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import textual_image._sixel

    monkeypatch.setitem(sys.modules, "numpy", None)  # `import numpy` raises ImportError
    monkeypatch.setattr(textual_image._sixel, "_HAS_NUMPY", False)  # as it finds on import
    monkeypatch.delitem(sys.modules, "imgen_tui.ui.sixel_bands", raising=False)
    name, encoder, notice = sixel_encoder.choose_encoder.__wrapped__()
    assert name == "textual-image"
    assert notice is not None and "numpy" in notice and "pip install numpy" in notice
    picture = sample()
    shown = decode(encoder(picture))  # still what xterm reads as the picture
    assert shown.picture.size == picture.size
