"""Comparing a picture decoded from terminal output with the stored thumbnail, pixel by pixel."""

from __future__ import annotations

from PIL import Image, ImageChops, ImageStat


def fitted(picture: Image.Image, box: tuple[int, int]) -> tuple[Image.Image, tuple[int, int]]:
    """The picture scaled to fit the box, keeping its aspect ratio, and where it sits centred."""
    scale = min(box[0] / picture.width, box[1] / picture.height)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    resized = picture.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    return resized, ((box[0] - size[0]) // 2, (box[1] - size[1]) // 2)


def differences(
    shown: Image.Image, expected: Image.Image, *, off_by: int = 48
) -> tuple[float, float, float]:
    """(mean absolute difference per channel, share of pixels off by more than `off_by`
    in some channel, share of pixel rows where more than 5 % of the pixels are: streaks).

    Compared at half resolution (2x2 averages): error diffusion's noise averages out
    there, a wrong row of pixels does not."""
    assert shown.size == expected.size, (shown.size, expected.size)
    half = (max(1, shown.width // 2), max(1, shown.height // 2))
    shown = shown.convert("RGB").resize(half, Image.Resampling.BOX)
    expected = expected.convert("RGB").resize(half, Image.Resampling.BOX)
    diff = ImageChops.difference(shown, expected)
    mean = sum(ImageStat.Stat(diff).mean) / 3
    red, green, blue = diff.split()
    worst = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    bad = worst.point(lambda v: 255 if v > off_by else 0)
    share = ImageStat.Stat(bad).mean[0] / 255
    rows = bad.resize((1, bad.height), Image.Resampling.BOX).point(lambda v: 255 if v > 13 else 0)
    return mean, share, ImageStat.Stat(rows).mean[0] / 255
