"""Where pictures sit on screen, for each renderer: the compare captions stay visible."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from textual.widgets import Static

from imgen_tui.ui.app import make_app
from imgen_tui.ui.screens.lightbox import CompareScreen
from imgen_tui.ui.widgets.grid import ThumbCell
from imgen_tui.ui.widgets.halfcell_picture import HalfcellPicture
from imgen_tui.ui.widgets.thumbs import decode_preview
from tests.pilot_helpers import start_drafts, until

FIXTURES = Path(__file__).parent / "fixtures"
SIZE = (140, 42)


@pytest.mark.parametrize("renderer", ["sixel", "tgp", "halfcell"])
async def test_compare_keeps_both_captions_on_screen(tmp_path: Path, renderer: str) -> None:
    app = make_app(
        None,
        demo=True,
        data_dir=tmp_path,
        graphics=renderer,  # type: ignore[arg-type]
        demo_speed=0.01,
        demo_farm=FIXTURES / "one_node_farm.yaml",
    )
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        assert screen.funnel is not None and screen.funnel.current is not None
        cells = screen.funnel.current.cells
        await until(pilot, lambda: all(cell.state == "done" for cell in cells))
        await pilot.press("space", "right", "space", "c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        await pilot.pause(0.3)
        compare = app.screen
        for side in ("a", "b"):
            picture = compare.query_one(f"#side-{side}")
            caption = compare.query_one(f"#about-{side}", Static)
            assert "seed" in str(caption.render())
            region = caption.region
            assert region.height >= 2 and region.bottom <= SIZE[1] - 1, region  # above the footer
            assert picture.region.bottom <= region.y  # the picture ends above its caption
            assert picture.region.height >= 20


def jpeg(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


async def test_a_preview_is_decoded_at_most_at_the_size_it_is_shown() -> None:
    picture = await decode_preview(jpeg((512, 512)), (120, 90))
    assert picture.size == (90, 90)
    assert (await decode_preview(jpeg((64, 48)))).size == (64, 48)


async def test_a_late_preview_never_replaces_a_finished_picture(tmp_path: Path) -> None:
    app = make_app(
        None,
        demo=True,
        data_dir=tmp_path,
        graphics="halfcell",
        demo_speed=0.01,
        demo_farm=FIXTURES / "one_node_farm.yaml",
    )
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        assert screen.funnel is not None and screen.funnel.current is not None
        cells = screen.funnel.current.cells
        await until(pilot, lambda: all(cell.state == "done" for cell in cells))
        slot = screen.query(ThumbCell).first()
        picture = slot.query_one(".picture", HalfcellPicture)
        await until(pilot, lambda: picture.image is not None and picture.ready)
        finished = picture.image
        slot._preview_at = 0.0
        slot.show_preview(jpeg((512, 512)))  # a preview frame that arrives after the result
        await pilot.pause(0.5)
        assert picture.image is finished
