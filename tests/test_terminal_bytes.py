"""What the running app writes to the terminal, parsed: pictures go out once.

The app runs on a one-node demo farm with a driver that keeps every byte a
terminal would receive (Textual's output and textual-image's TGP uploads).
"""

from __future__ import annotations

import base64
import io
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from textual.pilot import Pilot
from textual_image._terminal import get_cell_size

from imgen_tui.ui.app import make_app
from imgen_tui.ui.bench import CountingStdout, Tap, tap_driver
from imgen_tui.ui.screens.funnel import FunnelScreen
from imgen_tui.ui.screens.lightbox import LightboxScreen
from imgen_tui.ui.widgets.grid import ThumbCell, ThumbGrid
from imgen_tui.ui.widgets.iterm_picture import ItermPicture
from imgen_tui.ui.widgets.sixel_picture import SixelPicture
from imgen_tui.ui.widgets.tgp_picture import placeholder_rows
from tests.pilot_helpers import start_drafts, until

FIXTURES = Path(__file__).parent / "fixtures"
SIXEL = re.compile(r"\x1bP[0-9;]*q.*?\x1b\\", re.S)
ITERM = re.compile(r"\x1b\]1337;File=([^:\x07]*):([A-Za-z0-9+/=]*)\x07")
PICTURE = {"sixel": SIXEL, "iterm": re.compile(ITERM.pattern)}
TGP_UPLOAD = re.compile(r"\x1b_G[^;\x1b]*f=100[^;\x1b]*;")
PLACEHOLDER = "\U0010eeee"


def written_since(tap: Tap, mark: int) -> str:
    return "".join(tap.written[mark:])


async def grid_of_twenty(pilot: Pilot[Any]) -> FunnelScreen:
    screen = await start_drafts(pilot)
    assert screen.funnel is not None and screen.funnel.current is not None
    cells = screen.funnel.current.cells
    await until(pilot, lambda: all(cell.state == "done" for cell in cells))
    return screen


def run_app(tmp_path: Path, renderer: str, scenario: Callable[[Pilot[Any], Tap], Any]) -> None:
    tap = Tap(keep=True)
    app = make_app(
        None,
        demo=True,
        data_dir=tmp_path,
        graphics=renderer,  # type: ignore[arg-type]
        demo_speed=0.01,
        demo_farm=FIXTURES / "one_node_farm.yaml",
    )
    app.driver_class = tap_driver(tap)
    failure: list[BaseException] = []

    async def auto(pilot: Pilot[object]) -> None:
        try:
            await scenario(pilot, tap)
        except BaseException as error:  # reported after the app has closed
            failure.append(error)
        finally:
            app.exit(0)

    app.run(headless=False, size=(140, 42), auto_pilot=auto)
    if failure:
        raise failure[0]


@pytest.mark.parametrize("renderer", ["sixel", "iterm"])
def test_pictures_go_out_once_and_again_only_after_a_modal(tmp_path: Path, renderer: str) -> None:
    """Sixel and iTerm2 inline images: each picture, size and place reaches the terminal once."""
    pattern = PICTURE[renderer]

    async def scenario(pilot: Pilot[Any], tap: Tap) -> None:
        screen = await grid_of_twenty(pilot)
        pictures = [cell.query_one(".picture", SixelPicture) for cell in screen.query(ThumbCell)]
        await until(pilot, lambda: all(picture.delivered for picture in pictures))
        await pilot.pause(0.3)
        grid = screen.query_one(ThumbGrid)
        grid.focus()
        await pilot.pause(0.2)

        mark = len(tap.written)
        await pilot.press("right", "right", "down", "left")
        await pilot.pause(0.3)
        moves = written_since(tap, mark)
        assert grid.cursor == 1 + grid.columns  # two right, a row down, one left
        assert not pattern.findall(moves)  # borders moved, no picture was sent
        assert 0 < len(moves.encode()) < 4 * 5000

        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, LightboxScreen))
        large = pilot.app.screen.query_one("#large", SixelPicture)  # ItermPicture is one
        await until(pilot, lambda: large.delivered)
        mark = len(tap.written)
        await pilot.press("escape")
        await until(pilot, lambda: pilot.app.screen is screen)
        await until(pilot, lambda: all(picture.delivered for picture in pictures))
        await pilot.pause(0.3)
        # The lightbox covered the grid, so each thumbnail is drawn again, once.
        assert len(pattern.findall(written_since(tap, mark))) == 20

    run_app(tmp_path, renderer, scenario)


def test_tgp_uploads_each_picture_once_then_draws_compact_placeholders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(pilot: Pilot[Any], tap: Tap) -> None:
        screen = await grid_of_twenty(pilot)
        cells = list(screen.query(ThumbCell))
        await until(pilot, lambda: all(cell.query_one(".picture").image for cell in cells))  # type: ignore[attr-defined]
        await pilot.pause(0.5)
        first_paint = written_since(tap, 0)
        finished = [m for m in TGP_UPLOAD.findall(first_paint) if "m=1" not in m]
        ids = [re.search(r"i=(\d+)", upload).group(1) for upload in finished]  # type: ignore[union-attr]
        # Live previews are pictures too; each picture (preview or thumbnail) goes up once.
        assert len(ids) >= 20 and len(ids) == len(set(ids))
        screen.query_one(ThumbGrid).focus()
        await pilot.pause(0.2)
        mark = len(tap.written)
        await pilot.press("right", "right")
        await pilot.pause(0.3)
        moves = written_since(tap, mark)
        assert not TGP_UPLOAD.findall(moves)
        assert PLACEHOLDER in moves  # the two cells were redrawn from placeholders
        assert len(moves.encode()) < 2 * 5000

    def with_uploads_tapped(pilot: Pilot[Any], tap: Tap) -> Any:
        monkeypatch.setattr(
            sys, "__stdout__", CountingStdout(tap)
        )  # where textual-image sends them
        return scenario(pilot, tap)

    run_app(tmp_path, "tgp", with_uploads_tapped)


def test_compact_placeholders_name_row_and_column_once_per_row() -> None:
    rows = list(placeholder_rows(image_id=0x01020304, width=6, height=3))
    assert len(rows) == 3
    for row in rows:
        assert row.count(PLACEHOLDER) == 6
        first, rest = row[:4], row[4:]
        assert first[0] == PLACEHOLDER and len(first) == 4  # row, column and id-byte diacritics
        assert rest == PLACEHOLDER * 5  # the terminal counts the columns on
    assert rows[0][1] != rows[1][1] != rows[2][1]  # each row names its own row


def test_iterm_inline_images_are_pngs_the_size_of_their_cells(tmp_path: Path) -> None:
    async def scenario(pilot: Pilot[Any], tap: Tap) -> None:
        screen = await grid_of_twenty(pilot)
        pictures = [cell.query_one(".picture", ItermPicture) for cell in screen.query(ThumbCell)]
        await until(pilot, lambda: all(picture.delivered for picture in pictures))
        await pilot.pause(0.3)
        sent = ITERM.findall(written_since(tap, 0))
        finished = {picture.sixel for picture in pictures}
        mine = [(a, d) for a, d in sent if f"{a}:{d}" in "".join(finished)]
        assert len(mine) == 20  # every thumbnail once (earlier ones were live previews)
        cell_width, cell_height = get_cell_size()
        for arguments, data in mine:
            keys = dict(kv.split("=") for kv in arguments.split(";"))
            png = base64.b64decode(data)
            assert keys["inline"] == "1" and int(keys["size"]) == len(png)
            with Image.open(io.BytesIO(png)) as shown:
                assert shown.format == "PNG"
                assert shown.size == (
                    int(keys["width"]) * cell_width,
                    int(keys["height"]) * cell_height,
                )

    run_app(tmp_path, "iterm", scenario)


def test_escape_on_the_focused_grid_repaints_nothing(tmp_path: Path) -> None:
    """Focusing the grid that has focus writes nothing; a real focus change still repaints.

    Textual's `focus()` repaints the widget even when it is focused already,
    and for the grid that is the whole page: Escape, a round start and a closed
    modal all call it, and a key pressed meanwhile waited 13-25 ms for it.
    """

    async def scenario(pilot: Pilot[Any], tap: Tap) -> None:
        screen = await grid_of_twenty(pilot)
        pictures = [cell.query_one(".picture", SixelPicture) for cell in screen.query(ThumbCell)]
        await until(pilot, lambda: all(picture.delivered for picture in pictures))
        grid = screen.query_one(ThumbGrid)
        await until(pilot, lambda: grid.has_focus)  # the screen focused it at the round's start
        await pilot.pause(0.3)

        mark = len(tap.written)
        await pilot.press("escape", "escape")
        await pilot.pause(0.3)
        assert len(written_since(tap, mark).encode()) < 200  # a page repaint is tens of KB

        await pilot.press("e")  # to the prompt and back: the cursor's border changes twice
        await until(pilot, lambda: not grid.has_focus)
        mark = len(tap.written)
        await pilot.press("escape")
        await until(pilot, lambda: grid.has_focus)
        await pilot.pause(0.3)
        back = written_since(tap, mark)
        assert back and not SIXEL.findall(back)  # the border, and no picture again

    run_app(tmp_path, "sixel", scenario)
