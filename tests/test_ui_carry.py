"""Carry a gallery picture into the funnel, the concept builder or the explorer."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from imgen_tui.store import SessionStore
from imgen_tui.ui.screens.carry import CarryChooser
from imgen_tui.ui.screens.concept import ConceptScreen
from imgen_tui.ui.screens.explorer import ExplorerScreen
from imgen_tui.ui.screens.funnel import FunnelScreen
from imgen_tui.ui.screens.gallery import GalleryScreen
from tests.pilot_helpers import until
from tests.test_store import output, png
from tests.test_ui_concept import demo_app
from tests.test_ui_sessions import SIZE, open_sessions

PROMPT = "a heron on a frozen pond"


async def one_pick(data_dir: Path) -> None:
    store = await SessionStore.open(data_dir)
    try:
        session = await store.create_session("batch", "heron")
        round_info = await store.add_round(session.id, "drafts", prompt=PROMPT)
        await store.add_jobs(round_info.id, [("j0", "{}")])
        (image,) = await store.save_images("j0", [output(png(7, 64))])
        await store.set_verdict(image.id, "picked")
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("down", "screen_type", "prompt_id"),
    [
        (0, FunnelScreen, "#prompt"),
        (1, ConceptScreen, "#field-subject"),
        (2, ExplorerScreen, "#explorer-prompt"),
    ],
)
async def test_carry_from_the_gallery_into_each_flow(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    down: int,
    screen_type: type,
    prompt_id: str,
) -> None:
    await one_pick(tmp_path)
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await open_sessions(pilot)
        await pilot.press("G")
        await until(pilot, lambda: isinstance(app.screen, GalleryScreen))
        gallery = app.screen
        assert isinstance(gallery, GalleryScreen)
        await until(pilot, lambda: len(gallery.grid.cells) == 1)

        await pilot.press("c")  # the chooser; escape loses nothing
        await until(pilot, lambda: isinstance(app.screen, CarryChooser))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is gallery)
        assert gallery.grid.cursor == 0 and len(gallery.grid.cells) == 1

        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CarryChooser))
        for _ in range(down):
            await pilot.press("down")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, screen_type))
        await until(pilot, lambda: app.screen.query_one(prompt_id, Input).value == PROMPT)
        said = app.said  # type: ignore[attr-defined]
        await until(pilot, lambda: any(text.startswith("Carried #") for text in said))


@pytest.mark.parametrize(
    ("down", "screen_type", "prompt_id"),
    [(0, FunnelScreen, "#prompt"), (1, ConceptScreen, "#field-subject")],
)
async def test_carry_from_the_explorer_into_the_funnel_and_concept_builder(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    down: int,
    screen_type: type,
    prompt_id: str,
) -> None:
    from tests.test_ui_explorer import GRAIN, current, highlight, open_explorer, round_done

    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_explorer(pilot)
        await highlight(pilot, screen, GRAIN)
        await pilot.press("s")
        await until(pilot, lambda: round_done(screen))
        prompt = current(screen).prompt
        await pilot.press("O")
        await until(pilot, lambda: isinstance(app.screen, CarryChooser))
        await pilot.press("escape")  # nothing lost
        await until(pilot, lambda: app.screen is screen)
        assert current(screen).prompt == prompt
        await pilot.press("O")
        await until(pilot, lambda: isinstance(app.screen, CarryChooser))
        for _ in range(down):
            await pilot.press("down")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, screen_type))
        await until(pilot, lambda: app.screen.query_one(prompt_id, Input).value == prompt)
