"""What the app writes for a picture, decoded back into pixels and compared with the thumbnail.

The app runs on the one-node demo farm with a driver that keeps every byte a
terminal would receive. Sixel is read by a strict decoder that reads it the way
xterm does (imgen_tui.ui.sixel_decoder); half cells are read back from the
characters and colours Textual writes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops
from textual.geometry import Region
from textual.pilot import Pilot
from textual_image._sixel import image_to_sixels
from textual_image._terminal import get_cell_size

from imgen_tui.ui.screens.lightbox import LightboxScreen
from imgen_tui.ui.sixel_candidates import chafa_sixel
from imgen_tui.ui.sixel_decoder import decode
from imgen_tui.ui.sixel_encoder import BAND, bands_sixel, choose_encoder, textual_image_sixel
from imgen_tui.ui.widgets.grid import ThumbCell
from imgen_tui.ui.widgets.halfcell_picture import HalfcellPicture
from imgen_tui.ui.widgets.sixel_picture import SixelPicture
from tests.picture_checks import differences, fitted
from tests.pilot_helpers import until
from tests.test_terminal_bytes import SIXEL, grid_of_twenty, run_app


def stored_thumbnail(cell: ThumbCell) -> Image.Image:
    assert cell.cell is not None and cell.cell.image is not None
    with Image.open(cell.cell.image.thumb_path) as thumb:
        return thumb.convert("RGB")


def test_the_sixel_the_app_writes_is_the_thumbnail_pixel_for_pixel(tmp_path: Path) -> None:
    checked: list[tuple[float, float, float]] = []

    async def scenario(pilot: Pilot[Any], tap: Any) -> None:
        screen = await grid_of_twenty(pilot)
        cells = list(screen.query(ThumbCell))
        pictures = [cell.query_one(".picture", SixelPicture) for cell in cells]
        await until(pilot, lambda: all(picture.delivered for picture in pictures))
        await pilot.pause(0.3)
        written = SIXEL.findall("".join(tap.written))
        for cell, picture in list(zip(cells, pictures, strict=True))[:4]:
            (sent,) = [data for data in written if data == picture.sixel]  # went out once
            shown = decode(sent)
            assert shown.aspect == (1, 1)
            cell_size = get_cell_size()
            frame = picture._frame
            width, height = shown.picture.size
            assert width == frame.width * cell_size.width
            assert 0 <= frame.height * cell_size.height - height < BAND  # whole bands
            thumb, at = fitted(stored_thumbnail(cell), shown.picture.size)
            inside = shown.picture.crop((*at, at[0] + thumb.width, at[1] + thumb.height))
            checked.append(differences(inside, thumb))

    run_app(tmp_path, "sixel", scenario)
    assert len(checked) == 4
    for mean, bad_pixels, streaked_rows in checked:
        assert mean < 6, checked
        assert bad_pixels < 0.01, checked
        assert streaked_rows < 0.03, checked  # textual-image 0.12's own output: 13-39 %


def sample() -> Image.Image:
    """A picture with many colours first used far down: where xterm went wrong."""
    picture = Image.new("RGB", (96, 72))
    put = picture.load()
    assert put is not None
    for y in range(72):
        for x in range(96):
            put[x, y] = ((x * 5) % 256, (y * 7) % 256, ((x + y) * 3) % 256)
    return picture


@pytest.mark.parametrize(
    "encoder",
    [bands_sixel, textual_image_sixel, chafa_sixel],
    ids=["numpy bands", "fallback", "libchafa"],
)
def test_every_encoder_writes_sixel_that_xterm_reads_as_the_picture(encoder: Any) -> None:
    picture = sample()
    shown = decode(encoder(picture))
    assert shown.picture.size == picture.size
    mean, bad_pixels, streaked_rows = differences(shown.picture, picture)
    assert mean < 12 and bad_pixels < 0.01 and streaked_rows < 0.1  # raw: 29, 0.27, 0.72


def test_textual_image_relies_on_a_definition_selecting_its_register() -> None:
    """The cause, kept as a fact: its raw output decodes wrong the way xterm reads it."""
    picture = sample()
    raw = decode(image_to_sixels(picture))
    _, bad_pixels, streaked_rows = differences(raw.picture, picture)
    assert bad_pixels > 0.2 and streaked_rows > 0.5


def test_the_fast_encoder_is_the_one_in_use() -> None:
    name, _, notice = choose_encoder()
    assert (name, notice) == ("numpy", None)  # numpy is a dependency: it must load


def half_cells_to_pixels(strips: list[Any], width: int) -> Image.Image:
    """Each `▀` cell back into two pixels (foreground over background); a space is two of its
    background. Any other character means the picture was not drawn in half cells."""
    picture = Image.new("RGB", (width, len(strips) * 2))
    put = picture.load()
    assert put is not None
    for row, strip in enumerate(strips):
        x = 0
        for segment in strip:
            style = segment.style
            assert style is not None and style.bgcolor is not None
            lower = style.bgcolor.get_truecolor()
            for char in segment.text:
                assert char in "▀ ", repr(char)
                upper = style.color.get_truecolor() if char == "▀" and style.color else lower
                put[x, row * 2], put[x, row * 2 + 1] = tuple(upper), tuple(lower)
                x += 1
        assert x == width
    return picture


def drawn(picture: Any) -> bool:
    if isinstance(picture, HalfcellPicture):
        return picture.ready
    return picture.image is not None  # textual-image's widget draws as it renders


def test_half_cells_are_the_thumbnail_at_its_own_aspect_ratio_centred(tmp_path: Path) -> None:
    checked: list[tuple[tuple[float, float, float], float, float, tuple[int, int, int, int]]] = []

    async def scenario(pilot: Pilot[Any], tap: Any) -> None:
        screen = await grid_of_twenty(pilot)
        cells = list(screen.query(ThumbCell))
        pictures = [cell.query_one(".picture") for cell in cells]
        await until(pilot, lambda: all(drawn(picture) for picture in pictures))
        await pilot.press("enter")  # and the lightbox
        await until(pilot, lambda: isinstance(pilot.app.screen, LightboxScreen))
        large = pilot.app.screen.query_one("#large")
        await until(pilot, lambda: drawn(large))
        await pilot.pause(0.2)
        for cell, picture in [*zip(cells[:3], pictures[:3], strict=True), (cells[0], large)]:
            width, height = picture.size
            strips = picture.render_lines(Region(0, 0, width, height))
            shown = half_cells_to_pixels(strips, width)
            background = picture.background_colors[1].rgb
            inside = Image.new("RGB", shown.size, background)
            mask = (
                ImageChops.difference(shown, inside).convert("L").point(lambda v: 255 if v else 0)
            )
            box = mask.getbbox()
            assert box is not None
            thumb = stored_thumbnail(cell)
            cell_width, cell_height = get_cell_size()
            # On screen a half block is cell_width x cell_height/2 terminal pixels.
            ratio = ((box[2] - box[0]) * cell_width) / ((box[3] - box[1]) * cell_height / 2)
            left, top = box[0], box[1]
            right, bottom = width - box[2], height * 2 - box[3]
            inner = shown.crop(box)
            expected = thumb.resize(inner.size, Image.Resampling.BOX)
            checked.append(
                (
                    differences(inner, expected),
                    ratio,
                    thumb.width / thumb.height,
                    (left, right, top, bottom),
                )
            )

    run_app(tmp_path, "halfcell", scenario)
    assert len(checked) == 4
    for (mean, bad_pixels, _), ratio, wanted, (left, right, top, bottom) in checked:
        assert mean < 12 and bad_pixels < 0.05, checked
        assert abs(ratio / wanted - 1) < 0.12, checked  # main drew squares 2.2:1 (1.8:1 large)
        assert abs(left - right) <= 1 and abs(top - bottom) <= 1, checked  # centred


@pytest.mark.parametrize("renderer", ["tgp", "sixel", "iterm", "halfcell"])
def test_a_session_reopened_in_the_same_process_shows_its_pictures_from_memory(
    tmp_path: Path, renderer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reopened at once, the thumbnails are still in memory and are handed to picture widgets
    the grid has not laid out yet (no size): each waits for its size instead of failing."""
    from imgen_tui.store.fresh_thumbnails import FRESH
    from imgen_tui.ui.bench import CountingStdout
    from tests.test_ui_funnel_state import reopen_the_only_session

    async def scenario(pilot: Pilot[Any], tap: Any) -> None:
        monkeypatch.setattr(sys, "__stdout__", CountingStdout(tap))  # TGP uploads go there
        screen = await grid_of_twenty(pilot)
        cells = list(screen.query(ThumbCell))
        await until(pilot, lambda: all(cell.thumb_shown is not None for cell in cells))
        await pilot.press("q")  # home
        reopened = await reopen_the_only_session(pilot)
        again = list(reopened.query(ThumbCell))
        assert all(
            cell.cell is not None
            and cell.cell.image is not None
            and FRESH.get(cell.cell.image.thumb_path) is not None
            for cell in again
        )  # still in memory: the sizeless hand-over is what this reopening exercises
        pictures = [cell.query_one(".picture") for cell in again]
        await until(pilot, lambda: all(drawn(picture) for picture in pictures))
        if renderer != "halfcell":
            await until(pilot, lambda: all(picture.delivered for picture in pictures))  # type: ignore[attr-defined]
        assert not pilot.app._exception

    run_app(tmp_path, renderer, scenario)
