"""The gallery: 300 picked images across sessions, one page of widgets mounted, lightbox, carry."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from imgen_tui.store import SessionStore
from imgen_tui.ui.screens.funnel import FunnelScreen
from imgen_tui.ui.screens.gallery import PAGE, GalleryScreen
from imgen_tui.ui.screens.lightbox import LightboxScreen
from imgen_tui.ui.widgets.grid import ThumbCell
from tests.pilot_helpers import until
from tests.test_store import output, png
from tests.test_ui_concept import demo_app
from tests.test_ui_sessions import SIZE, open_sessions

SESSIONS, PER_SESSION = 30, 10


async def three_hundred_picks(data_dir: Path) -> None:
    store = await SessionStore.open(data_dir)
    try:
        picture = png(7, 64)
        for number in range(SESSIONS):
            # batch sessions: made here with placeholder job specs, which no flow could resume
            session = await store.create_session("batch", f"heron {number}")
            round_info = await store.add_round(session.id, "drafts", prompt=f"a heron, {number}")
            jobs = [(f"s{number}j{i}", "{}") for i in range(PER_SESSION + 1)]
            await store.add_jobs(round_info.id, jobs)
            for job_id, _ in jobs:
                (image,) = await store.save_images(job_id, [output(picture)])
                if job_id != jobs[-1][0]:  # one image per session is not picked: not shown
                    await store.set_verdict(image.id, "picked")
    finally:
        await store.close()


async def test_three_hundred_images_mount_one_page_and_page_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    await three_hundred_picks(data_dir)
    app = demo_app(data_dir, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await open_sessions(pilot)
        await pilot.press("G")
        await until(pilot, lambda: isinstance(app.screen, GalleryScreen))
        gallery = app.screen
        assert isinstance(gallery, GalleryScreen)
        await until(pilot, lambda: len(gallery.grid.cells) == SESSIONS * PER_SESSION)
        assert len(gallery.query(ThumbCell)) == PAGE  # 300 images, one page of widgets
        per_page = gallery.grid.per_page
        assert per_page <= PAGE and gallery.grid.pages == -(-300 // per_page)
        await pilot.press("pagedown", "pagedown")
        assert gallery.grid.cursor == 2 * per_page and gallery.grid.page == 2
        assert len(gallery.query(ThumbCell)) == PAGE
        shown = [w.cell for w in gallery.query(ThumbCell) if w.display]
        assert shown[0] is gallery.grid.cells[2 * per_page]
        await pilot.press("right", "down", "left", "up")
        assert gallery.grid.cursor == 2 * per_page

        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LightboxScreen))
        await pilot.press("right", "escape")  # step in the lightbox, close: the cursor follows
        await until(pilot, lambda: app.screen is gallery)
        assert gallery.grid.cursor == 2 * per_page + 1

        found = gallery.current()
        assert found is not None
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, FunnelScreen))
        assert app.screen.query_one("#prompt", Input).value == found.prompt
        app.pop_screen()  # (q would type into the prompt, which has the focus)
        await until(pilot, lambda: app.screen is gallery)

        await pilot.press("o")  # its session: a batch has no screen to reopen in
        said = app.said  # type: ignore[attr-defined]
        await until(pilot, lambda: any("no screen to reopen it" in text for text in said))
        assert app.screen is gallery


async def test_an_empty_gallery_says_how_to_fill_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await SessionStore.open(tmp_path)
    await store.create_session("funnel", "nothing picked")
    await store.close()
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await open_sessions(pilot)
        await pilot.press("G")
        await until(pilot, lambda: isinstance(app.screen, GalleryScreen))
        about = app.screen.query_one("#gallery-about")
        await until(pilot, lambda: "No picked or final images yet" in str(about.render()))
        await pilot.press("enter", "f", "o")  # nothing to act on: nothing happens
        assert isinstance(app.screen, GalleryScreen)
