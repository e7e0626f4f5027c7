"""Where two pictures differ, as a heat map: the A/B compare view's overlay.

A pure function of two pictures (Pillow), so it is tested on pixels. A is
shown dimmed in grey; every pixel where B differs is painted over it from
red (a little) through yellow to white (a lot), so a LoRA that changes only
the face shows a hot face on a grey picture. `gain` stretches small
differences: a strength of 0.4 often changes a picture by a few levels only.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageChops, ImageOps

#: how dark the grey A under the heat is: enough to see the picture, not to mistake it for heat
BASE_BRIGHTNESS = 0.45
DEFAULT_GAIN = 4.0


def difference_heatmap(
    a: Image.Image, b: Image.Image, *, gain: float = DEFAULT_GAIN
) -> Image.Image:
    """An RGB picture of A's size: A in dim grey, the difference from B as heat."""
    first = a.convert("RGB")
    second = b.convert("RGB")
    if second.size != first.size:
        second = second.resize(first.size, Image.Resampling.LANCZOS)
    amount = ImageChops.difference(first, second).convert("L")
    amount = amount.point(lambda level: min(255, round(level * gain)))
    heat = ImageOps.colorize(amount, black=(96, 0, 0), mid=(255, 32, 0), white=(255, 255, 160))
    grey = ImageOps.grayscale(first).point(lambda level: round(level * BASE_BRIGHTNESS))
    return Image.composite(heat, grey.convert("RGB"), amount)


def difference_share(a: Image.Image, b: Image.Image, *, threshold: int = 8) -> float:
    """The share of pixels that differ by more than `threshold` levels: the caption's figure."""
    first = a.convert("L")
    second = b.convert("L")
    if second.size != first.size:
        second = second.resize(first.size, Image.Resampling.LANCZOS)
    differing = ImageChops.difference(first, second).point(lambda v: 255 if v > threshold else 0)
    histogram = differing.histogram()
    return histogram[255] / max(1, first.width * first.height)


def heatmap_of_files(a: Path, b: Path, *, max_side: int = 1024) -> tuple[Image.Image, float]:
    """Both files read and compared (call it in a thread: it decodes two originals)."""
    with Image.open(a) as first, Image.open(b) as second:
        first.thumbnail((max_side, max_side))
        second_small = second.resize(first.size, Image.Resampling.LANCZOS)
        return difference_heatmap(first, second_small), difference_share(first, second_small)
