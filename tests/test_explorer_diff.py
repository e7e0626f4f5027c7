"""The A/B difference overlay on pixels: same pictures are grey, a changed square is hot."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from imgen_tui.flows.explorer_diff import (
    BASE_BRIGHTNESS,
    difference_heatmap,
    difference_share,
    heatmap_of_files,
)


def picture(colour: tuple[int, int, int] = (120, 140, 160), size: int = 64) -> Image.Image:
    return Image.new("RGB", (size, size), colour)


def is_grey(pixel: tuple[int, ...]) -> bool:
    return pixel[0] == pixel[1] == pixel[2]


def test_identical_pictures_give_dim_grey_and_no_heat() -> None:
    a = picture()
    heat = difference_heatmap(a, a.copy())
    assert heat.size == a.size and heat.mode == "RGB"
    grey = round(a.convert("L").getpixel((0, 0)) * BASE_BRIGHTNESS)  # type: ignore[operator]
    assert [colour for _, colour in heat.getcolors() or []] == [(grey, grey, grey)]
    assert difference_share(a, a.copy()) == 0.0


def test_only_the_changed_square_is_hot_and_more_change_is_hotter() -> None:
    a = picture()
    b = a.copy()
    ImageDraw.Draw(b).rectangle((16, 16, 31, 31), fill=(120, 140, 200))  # a little bluer
    c = a.copy()
    ImageDraw.Draw(c).rectangle((16, 16, 31, 31), fill=(255, 255, 255))  # a lot
    heat_b, heat_c = difference_heatmap(a, b), difference_heatmap(a, c)
    inside, outside = (20, 20), (50, 50)
    assert is_grey(heat_b.getpixel(outside))  # type: ignore[arg-type]
    hot_b, hot_c = heat_b.getpixel(inside), heat_c.getpixel(inside)
    assert isinstance(hot_b, tuple) and isinstance(hot_c, tuple)
    assert hot_b[0] > hot_b[2] and not is_grey(hot_b)  # red-ish
    assert sum(hot_c) > sum(hot_b)  # towards yellow/white
    assert difference_share(a, c) == 16 * 16 / (64 * 64)


def test_a_different_size_b_is_scaled_to_a(tmp_path: Path) -> None:
    a, b = picture(size=64), picture((0, 0, 0), size=128)
    assert difference_heatmap(a, b).size == (64, 64)
    a.save(tmp_path / "a.png")
    b.save(tmp_path / "b.png")
    heat, share = heatmap_of_files(tmp_path / "a.png", tmp_path / "b.png")
    assert heat.size == (64, 64) and share == 1.0
