"""A finished draft's Sixel is encoded in the store's thread, for the cell waiting for it.

The store decodes the fresh thumbnail in a thread anyway; a grid cell that
waits for a job says at which size it shows it, and the picture comes encoded
for that size: the cell writes it without a worker hop of its own. A cell
that changed size meanwhile, or a picture nobody waits for, takes the usual
path, and the picture is the same either way.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from textual.geometry import Size

from imgen_tui.store.fresh_thumbnails import FRESH, FreshThumbnails
from imgen_tui.ui.app import make_app
from imgen_tui.ui.widgets.grid import ThumbCell
from imgen_tui.ui.widgets.sixel_picture import SixelPicture, _Prepared, encode
from tests.pilot_helpers import start_drafts, until
from tests.test_ui_funnel import SIZE, all_done, current_cells


@pytest.fixture(autouse=True)
def _no_preparation_left() -> Iterator[None]:
    """A test's `_Prepared` registers itself with the process-wide FRESH: not for the next."""
    yield
    FRESH.prepare_with(None)


class Spies:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.prepared_in: list[str] = []  # threads that encoded ahead
        self.own_encodes: list[Image.Image] = []  # pictures a widget encoded in its own worker
        self.wants: list[str] = []  # job ids a cell asked for, each time it asked
        real_encode = _Prepared.encode
        real_want = _Prepared.want

        def want(self_: _Prepared, job_id: str, *args: Any) -> None:
            self.wants.append(job_id)
            real_want(self_, job_id, *args)

        monkeypatch.setattr(_Prepared, "want", want)
        real_own = SixelPicture._encode_in_thread

        def prepared(self_: _Prepared, picture: Image.Image, job_id: str) -> None:
            self.prepared_in.append(threading.current_thread().name)
            real_encode(self_, picture, job_id)

        async def own(self_: SixelPicture, picture: Image.Image, wanted: Any) -> None:
            self.own_encodes.append(picture)
            await real_own(self_, picture, wanted)

        monkeypatch.setattr(_Prepared, "encode", prepared)
        monkeypatch.setattr(SixelPicture, "_encode_in_thread", own)


def shown_right(cell: ThumbCell) -> bool:
    """The cell's Sixel is what encoding its thumbnail at the cell's size now gives."""
    picture = cell.query_one(SixelPicture)
    if cell.cell is None or cell.cell.image is None or picture.image is None:
        return False
    background = picture.background_colors[1].rgb
    return picture.sixel == encode(picture.image, picture.size, background)[0]


async def test_each_draft_comes_encoded_for_its_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spies = Spies(monkeypatch)
    app = make_app(None, demo=True, data_dir=tmp_path, graphics="sixel", demo_speed=0.01)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        cells = list(screen.query(ThumbCell))
        await until(pilot, lambda: all(shown_right(cell) for cell in cells))
        thumbs = {id(FRESH.get(c.image.thumb_path)) for c in current_cells(screen) if c.image}
    assert len(spies.prepared_in) == 20
    # once per job at its cell's size, not on every progress event of a waiting cell
    assert len(spies.wants) == len(set(spies.wants)) == 20
    assert threading.main_thread().name not in spies.prepared_in
    assert not [picture for picture in spies.own_encodes if id(picture) in thumbs]


async def test_a_cell_resized_while_it_waited_shows_its_picture_at_the_new_size(
    tmp_path: Path,
) -> None:
    app = make_app(None, demo=True, data_dir=tmp_path, graphics="sixel", demo_speed=0.3)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        cells = list(screen.query(ThumbCell))
        await until(pilot, lambda: any(c.state == "running" for c in current_cells(screen)))
        before = cells[0].query_one(SixelPicture).size
        await pilot.resize_terminal(120, 40)  # smaller cells while the drafts run
        await until(pilot, lambda: cells[0].query_one(SixelPicture).size != before)
        await until(pilot, all_done(screen))
        await until(pilot, lambda: all(shown_right(cell) for cell in cells))
        await pilot.resize_terminal(*SIZE)  # and back: encoded again at the old size
        await until(pilot, lambda: all(shown_right(cell) for cell in cells))


async def test_previews_go_out_undithered_and_finished_drafts_dithered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flags: list[bool] = []

    def counting(picture: Image.Image, box: Size, background: Any, dither: bool = True) -> Any:
        flags.append(dither)
        return encode(picture, box, background, dither)

    monkeypatch.setattr(SixelPicture, "encode_picture", staticmethod(counting))
    app = make_app(None, demo=True, data_dir=tmp_path, graphics="sixel", demo_speed=0.3)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        cells = list(screen.query(ThumbCell))
        await until(pilot, lambda: all(shown_right(cell) for cell in cells))  # dithered, as usual
    assert False in flags  # the previews
    assert flags.count(True) >= 20


def test_a_prepared_encoding_is_taken_once_at_its_size_only() -> None:
    prepared = _Prepared()
    picture = Image.new("RGB", (64, 64), (200, 30, 30))
    size, background = Size(8, 4), (0, 0, 0)
    prepared.encode(picture, "not-wanted")  # nobody waits for this job: nothing encoded
    assert prepared.take(picture, size, background) is None
    prepared.want("job", encode, size, background)
    prepared.encode(picture, "job")
    assert prepared.take(picture, Size(9, 4), background) is None  # another size: not it
    assert prepared.take(picture, size, background) == encode(picture, size, background)
    assert prepared.take(picture, size, background) is None  # taken once


def test_wanted_and_encoded_are_bounded() -> None:
    prepared = _Prepared()
    for index in range(_Prepared.KEPT + 10):
        prepared.want(f"job{index}", encode, Size(2, 1), (0, 0, 0))
    assert len(prepared._wanted) == _Prepared.KEPT and "job0" not in prepared._wanted
    pictures = [Image.new("RGB", (8, 8)) for _ in range(_Prepared.KEPT + 10)]
    for index, picture in zip(range(10, _Prepared.KEPT + 10), pictures, strict=False):
        prepared.encode(picture, f"job{index}")
    assert len(prepared._encoded) <= _Prepared.KEPT


def test_a_failing_preparation_costs_the_store_nothing(caplog: pytest.LogCaptureFixture) -> None:
    fresh = FreshThumbnails(kept=2)

    def broken(picture: Image.Image, job_id: str) -> None:
        raise RuntimeError("encoder bug")

    fresh.prepare_with(broken)
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 10)).save(buffer, "JPEG")
    with caplog.at_level(logging.ERROR):
        picture = fresh.decoded(buffer.getvalue(), "job")
    assert picture.size == (16, 16)
    assert "preparing a fresh thumbnail failed" in caplog.text
