"""The numpy Sixel encoder, read back by the strict (xterm) decoder: a palette image written
exactly, a smooth sky kept smooth, run lengths and bands at their edges, bad input, and what
happens without numpy."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageFilter, ImageStat

from imgen_tui.ui import sixel_encoder
from imgen_tui.ui.sixel_bands import REGISTERS, encode_bands, write_palette_image
from imgen_tui.ui.sixel_decoder import DCS, decode
from imgen_tui.ui.sixel_encoder import BAND
from tests.test_terminal_pictures import sample

PERCENT_ROUNDING = 2  # 0-255 through 0-100 and back is off by at most this


def palette_image(width: int, height: int, seed: int, colours: int = REGISTERS) -> Image.Image:
    """A palette image with random registers and random pixels: every colour in every band."""
    import random

    chooser = random.Random(seed)
    picture = Image.new("P", (width, height))
    picture.putpalette([chooser.randrange(256) for _ in range(3 * colours)])
    picture.putdata([chooser.randrange(colours) for _ in range(width * height)])
    return picture


def largest_difference(shown: Image.Image, expected: Image.Image) -> int:
    assert shown.size == expected.size
    extremes = ImageChops.difference(shown.convert("RGB"), expected).getextrema()
    return max(high for _, high in extremes)  # type: ignore[misc]


def body(data: str) -> str:
    """The sixel data after the raster attributes and the palette definitions."""
    (match,) = DCS.findall(data)
    return re.sub(r'^"[0-9;]*(#\d+;2;\d+;\d+;\d+)*', "", match[1])


def test_a_palette_image_is_written_as_it_is_pixel_for_pixel() -> None:
    picture = palette_image(97, 13 * BAND, seed=5)  # 256 registers, all in every band
    shown = decode(write_palette_image(picture))
    assert shown.picture.size == picture.size and shown.aspect == (1, 1)
    assert shown.registers_used == REGISTERS
    assert largest_difference(shown.picture, picture.convert("RGB")) <= PERCENT_ROUNDING


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(1, 70),
    bands=st.integers(1, 5),
    colours=st.integers(1, 9),
    seed=st.integers(0, 2**16),
    stripes=st.integers(1, 12),
)
def test_any_palette_image_decodes_as_itself(
    width: int, bands: int, colours: int, seed: int, stripes: int
) -> None:
    """Runs of every length (short ones written out, longer ones `!n`) and one to five bands."""
    picture = palette_image(width, bands * BAND, seed, colours)
    if stripes > 1:  # long runs: each stripe of columns one colour
        picture = picture.resize((max(1, width // stripes), picture.height)).resize(
            (width, picture.height), Image.Resampling.NEAREST
        )
    shown = decode(write_palette_image(picture))
    assert largest_difference(shown.picture, picture.convert("RGB")) <= PERCENT_ROUNDING


def sky() -> Image.Image:
    """A smooth blue gradient, top to bottom: where an undithered palette steps into bands."""
    ramp = Image.linear_gradient("L").resize((96, 192))
    return Image.merge(
        "RGB",
        [ramp.point(lambda v: 40 + v // 4), ramp.point(lambda v: 70 + v // 3),
         ramp.point(lambda v: 140 + v // 3)],
    )  # fmt: skip


def longest_flat_run(picture: Image.Image) -> int:
    """The median over columns of the tallest stretch of one colour: a band's height."""
    pixels = picture.load()
    assert pixels is not None
    tallest = []
    for x in range(0, picture.width, 8):
        run = top = 1
        for y in range(1, picture.height):
            run = run + 1 if pixels[x, y] == pixels[x, y - 1] else 1
            top = max(top, run)
        tallest.append(top)
    return sorted(tallest)[len(tallest) // 2]


def test_a_smooth_sky_stays_smooth_instead_of_stepping_into_bands() -> None:
    """Pillow's octree alone never dithers: 23 px bands here, 35-90 px in xterm's lightbox."""
    picture = sky()
    shown = decode(encode_bands(picture)).picture
    blur = ImageFilter.GaussianBlur(2)  # what the eye sees: dither noise averages out, bands not
    seen = ImageChops.difference(shown.filter(blur), picture.filter(blur))
    assert sum(ImageStat.Stat(seen).mean) / 3 < 1.0  # undithered: 1.47
    assert longest_flat_run(shown) <= 14  # undithered: 23


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
    shown = decode(encoder(picture, True))  # still what xterm reads as the picture
    assert shown.picture.size == picture.size


def test_undithered_is_the_octree_palette_image_and_smaller_on_a_gradient() -> None:
    picture = sky()
    octree = picture.quantize(REGISTERS, Image.Quantize.FASTOCTREE)
    undithered = encode_bands(picture, dither=False)
    assert undithered == write_palette_image(octree)
    assert len(undithered) * 4 < len(encode_bands(picture))  # noise has no long runs
