"""Going back and forth, again, refine, quit and reopen: the funnel keeps what the operator chose."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual.widgets import Input, OptionList

from imgen_tui.ui.screens.funnel import FunnelScreen
from imgen_tui.ui.screens.home import HomeScreen
from imgen_tui.ui.screens.lightbox import LightboxScreen
from imgen_tui.ui.screens.refine import RefineScreen
from tests.pilot_helpers import notices, start_drafts, until
from tests.test_ui_funnel import (
    SIZE,
    all_done,
    current_cells,
    current_round,
    demo_app,
    funnel_of,
    image_of,
    top,
)


async def refine_to(pilot: object, screen: FunnelScreen, feedback: str) -> None:
    """`r`, the feedback, enter (offline rules), enter again to generate."""
    from textual.pilot import Pilot

    assert isinstance(pilot, Pilot)
    app = pilot.app
    await pilot.press("r")
    await until(pilot, lambda: isinstance(app.screen, RefineScreen))
    panel = app.screen
    panel.query_one("#refine-feedback", Input).value = feedback
    await pilot.press("enter")
    prompt = panel.query_one("#refine-prompt", Input)
    await until(pilot, lambda: not prompt.disabled)
    await pilot.press("enter")
    await until(pilot, lambda: app.screen is screen)


async def test_forward_again_shows_what_was_made_and_g_remakes_it(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        await pilot.press("space", "right", "space", "n")
        await until(pilot, lambda: funnel_of(screen).position == 1)
        await until(pilot, all_done(screen))
        refined = current_round(screen)
        made = [cell.job_id for cell in refined.cells]
        scheduler = app.engine.scheduler
        assert scheduler is not None
        jobs_before = len(scheduler.jobs)

        await pilot.press("b", "n")  # the picks did not change: the same 8, nothing new made
        await until(pilot, lambda: funnel_of(screen).position == 1)
        assert current_round(screen) is refined
        assert [cell.job_id for cell in current_cells(screen)] == made
        assert all(cell.state == "done" for cell in current_cells(screen))
        assert len(scheduler.jobs) == jobs_before
        assert any("as you left it" in text for text in notices(app))
        feedback = str(screen.query_one("#feedback").render())
        assert "Refined: 8/8 done" in feedback

        await pilot.press("g")  # re-making is its own key
        assert len(scheduler.jobs) == jobs_before + 8
        assert current_round(screen) is not refined
        await until(pilot, all_done(screen))

        await pilot.press("b", "right", "right", "space", "n")  # other picks: a new round
        await until(pilot, lambda: funnel_of(screen).position == 1)
        assert len(scheduler.jobs) == jobs_before + 16
        assert len({cell.source.id for cell in current_cells(screen) if cell.source}) == 3


async def test_again_keeps_picks_and_locks_and_z_undoes_it(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        await pilot.press("space", "right", "space", "right", "space", "right", "space")
        await pilot.press("right", "l")  # four picks, #5 locked
        before = current_round(screen)
        picked = {cell.job_id for cell in before.cells if cell.verdict == "picked"}
        locked = before.cells[4].job_id
        scheduler = app.engine.scheduler
        assert scheduler is not None
        jobs_before = len(scheduler.jobs)
        await pilot.press("g")
        after = current_cells(screen)
        assert len(after) == 20
        assert {cell.job_id for cell in after if cell.verdict == "picked"} == picked
        assert [cell.job_id for cell in after if cell.locked] == [locked]
        assert {cell.job_id for cell in after[:5]} == picked | {locked}
        assert len(scheduler.jobs) == jobs_before + 15  # only the other 15 are new
        assert any("z brings back" in text for text in notices(app))
        await until(pilot, all_done(screen))
        await pilot.press("z")
        assert current_round(screen) is before


async def test_a_locked_seed_stays_locked_after_refine(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot, "a fox, forest background")
        await until(pilot, all_done(screen))
        await pilot.press("right", "right", "right", "right", "l")  # lock #5
        seed = current_cells(screen)[4].seed
        await refine_to(pilot, screen, "more fog")
        cells = current_cells(screen)
        reused = [cell for cell in cells if cell.seed == seed]
        assert len(reused) == 1 and reused[0].locked
        assert reused[0].state != "done" or reused[0].image is not None
        await until(pilot, all_done(screen))
        store = app.engine.store
        assert store is not None and screen.session is not None
        await pilot.press("g")  # the lock carried: the next again keeps it
        assert any(cell.seed == seed and cell.locked for cell in current_cells(screen))
        assert sum(cell.seed == seed for cell in current_cells(screen)) == 1
        rows = {i.job_id: i for i in await store.images(session_id=screen.session.id)}
        assert rows[reused[0].job_id].locks == ("seed",)


async def walk_to_the_final(pilot: object, screen: FunnelScreen) -> None:
    """Drafts, refine the prompt, g, pick, n, back and forth, n, n: the final."""
    from textual.pilot import Pilot

    assert isinstance(pilot, Pilot)
    await until(pilot, all_done(screen))
    await refine_to(pilot, screen, "more fog")
    await until(pilot, all_done(screen))
    await pilot.press("space", "right", "space", "g")
    await until(pilot, all_done(screen))
    await pilot.press("right", "right", "x", "n")
    await until(pilot, lambda: funnel_of(screen).position == 1)
    await until(pilot, all_done(screen))
    await pilot.press("space", "b", "n")
    await until(pilot, lambda: funnel_of(screen).position == 1)
    await pilot.press("n")
    await until(pilot, lambda: funnel_of(screen).position == 2)
    await until(pilot, all_done(screen))
    await pilot.press("right", "space", "n")
    await until(pilot, lambda: funnel_of(screen).position == 3)
    await until(pilot, all_done(screen))


async def reopen_the_only_session(pilot: Any) -> FunnelScreen:
    """From Home, as a user would: the one session in the list, tab, enter."""
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, HomeScreen))
    sessions = app.screen.query_one("#sessions", OptionList)
    await until(pilot, lambda: sessions.option_count == 1 and sessions.highlighted == 0)
    await pilot.press("tab", "enter")
    await until(pilot, lambda: isinstance(app.screen, FunnelScreen))
    reopened = top(app)
    assert isinstance(reopened, FunnelScreen)
    await until(pilot, lambda: reopened.funnel is not None and reopened.funnel.current is not None)
    return reopened


async def test_a_session_reopens_exactly_as_it_was_left(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot, "a fox, forest background")
        await walk_to_the_final(pilot, screen)
        funnel = funnel_of(screen)
        left = funnel.state()
        prompt = current_round(screen).prompt
        assert "fog" in prompt
        draft_picks = [c.job_id for c in funnel.rounds[0].cells if c.verdict == "picked"]
        polished_id = funnel.rounds[2].round_id
        assert len(draft_picks) == 2 and len(funnel.history.made) == 6  # 3 drafts, 1 each after
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))

    again = demo_app(tmp_path)
    async with again.run_test(size=SIZE) as pilot:
        reopened = await reopen_the_only_session(pilot)
        funnel = funnel_of(reopened)
        assert funnel.state() == left
        assert funnel.position == 3
        (final,) = current_cells(reopened)
        assert final.image is not None
        source = final.source
        assert source is not None and final.seed == source.seed != 0
        assert reopened.query_one("#prompt", Input).value == prompt
        feedback = str(reopened.query_one("#feedback").render())
        assert f"seed {source.seed}" in feedback
        await pilot.press("b")
        assert current_round(reopened).round_id == polished_id
        await pilot.press("b", "b")
        drafts = current_cells(reopened)
        assert len(drafts) == 20
        assert [c.job_id for c in drafts if c.verdict == "picked"] == draft_picks
        assert sum(c.verdict == "rejected" for c in drafts) == 1


async def test_the_final_says_where_it_came_from_and_exports(tmp_path: Path) -> None:
    app = demo_app(tmp_path / "data")
    app.export_dir = tmp_path / "exports"
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot, "a fox, forest background")
        await walk_to_the_final(pilot, screen)
        funnel = funnel_of(screen)
        (final,) = current_cells(screen)
        polished_pick = funnel.rounds[2].picks[0]
        assert final.seed == polished_pick.seed

        await pilot.press("n")
        assert any("last stage: E exports" in text for text in notices(app))
        assert not any("Pick at least one" in text for text in notices(app))
        await pilot.press("m")
        assert any("is an upscale" in text for text in notices(app))
        await pilot.press("U")
        assert any("already upscaled" in text for text in notices(app))
        assert len(current_cells(screen)) == 1

        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LightboxScreen))
        about = str(app.screen.query_one("#about").render())
        assert f"seed {final.seed}" in about and "seed None" not in about
        await pilot.press("escape")

        def story() -> dict[str, object]:
            loaded = json.loads(image_of(final).sidecar_path.read_text())
            assert isinstance(loaded, dict)
            return loaded

        await until(pilot, lambda: "lineage" in story())
        sidecar = story()
        assert sidecar["prompt"] == current_round(screen).prompt and "fog" in str(sidecar["prompt"])
        lineage = sidecar["lineage"]
        assert isinstance(lineage, list)
        assert [link["stage"] for link in lineage] == ["drafts", "refined", "polished"]
        draft = funnel.rounds[0].picks[0]
        assert lineage[0]["image"] in {image.id for image in funnel.rounds[0].picks}
        assert lineage[-1]["image"] == polished_pick.id and draft is not None

        await pilot.press("E")
        await until(pilot, lambda: any("Exported" in text for text in notices(app)))
        (folder,) = (tmp_path / "exports").iterdir()
        names = sorted(path.name for path in folder.iterdir())
        assert names == sorted([image_of(final).path.name, image_of(final).sidecar_path.name])
        exported = json.loads((folder / image_of(final).sidecar_path.name).read_text())
        assert exported["lineage"] == lineage
        assert any(str(folder) in text for text in notices(app))


async def test_the_lightbox_judges_and_returns_to_the_image_shown(tmp_path: Path) -> None:
    from imgen_tui.ui.screens.lightbox import CompareScreen
    from imgen_tui.ui.widgets.grid import ThumbGrid

    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        cells = current_cells(screen)
        await pilot.press("right", "right", "right", "right", "enter")  # #5
        await until(pilot, lambda: isinstance(app.screen, LightboxScreen))
        await pilot.press("right", "right", "space")  # #7 picked, in the lightbox
        assert cells[6].verdict == "picked"
        await pilot.press("left", "x")  # #6 rejected
        assert cells[5].verdict == "rejected"
        assert "rejected" in str(app.screen.query_one("#about").render())
        await pilot.press("right", "escape")
        await until(pilot, lambda: app.screen is screen)
        assert screen.query_one(ThumbGrid).cursor == 6  # on #7, the one last shown
        store = app.engine.store
        assert store is not None and screen.session is not None
        rows = {i.job_id: i.verdict for i in await store.images(session_id=screen.session.id)}
        assert rows[cells[6].job_id] == "picked" and rows[cells[5].job_id] == "rejected"

        screen.query_one(ThumbGrid).cursor = 0
        await pilot.press("space", "right", "space")  # two picks: #1 #2 (and #7)
        screen.query_one(ThumbGrid).cursor = 2
        await pilot.press("a")  # #3 is A
        screen.query_one(ThumbGrid).cursor = 9
        await pilot.press("a")  # #10 is B
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare = top(app)
        assert isinstance(compare, CompareScreen)
        assert compare.pair == [image_of(cells[2]), image_of(cells[9])]
        await pilot.press("f")
        assert compare.pair == [image_of(cells[9]), image_of(cells[2])]


async def test_click_selects_and_double_click_opens(tmp_path: Path) -> None:
    from imgen_tui.ui.widgets.grid import ThumbCell, ThumbGrid

    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        grid = screen.query_one(ThumbGrid)
        widgets = list(grid.query(ThumbCell))
        await pilot.click(widgets[7])
        await until(pilot, lambda: grid.cursor == 7)
        assert "#8 seed" in str(screen.query_one("#feedback").render())
        assert isinstance(app.screen, FunnelScreen)
        await pilot.double_click(widgets[3])
        await until(pilot, lambda: isinstance(app.screen, LightboxScreen))
        lightbox = top(app)
        assert isinstance(lightbox, LightboxScreen) and lightbox.index == 3


async def test_the_grid_fits_the_terminal_and_the_count(tmp_path: Path) -> None:
    from imgen_tui.ui.widgets.grid import ThumbCell, ThumbGrid

    app = demo_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        await pilot.pause(0.2)
        grid = screen.query_one(ThumbGrid)
        shown = [w for w in grid.query(ThumbCell) if w.display]
        assert 0 < len(shown) < 20 and grid.pages > 1
        assert all(w.query_one(".picture").region.height >= 5 for w in shown)
        assert f"page 1/{grid.pages}" in str(screen.query_one("#feedback").render())

    app = demo_app(tmp_path / "big")
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        grid = screen.query_one(ThumbGrid)
        assert grid.pages == 1
        await pilot.press("m")  # #21: past the page of 20, shown at once
        await until(pilot, lambda: grid.cursor == 20)
        assert grid.pages == 2 or grid.per_page >= 21
        feedback = str(screen.query_one("#feedback").render())
        assert "#21 seed" in feedback and (grid.pages == 1 or "page 2/2" in feedback)
        await pilot.press("space", "n")  # Refined 8: cells keep a picture's shape
        await until(pilot, lambda: funnel_of(screen).position == 1)
        await pilot.pause(0.3)
        shown = [w for w in grid.query(ThumbCell) if w.display]
        assert len(shown) == 8
        for widget in shown:
            picture = widget.query_one(".picture").region
            assert picture.height <= picture.width // 2 + 1  # not stretched tall


async def test_a_job_whose_saved_spec_is_damaged_fails_alone_and_the_rest_resume(
    tmp_path: Path,
) -> None:
    """Reopening must not die on one unreadable row: that cell says so, the others finish."""
    import contextlib
    import sqlite3

    app = demo_app(tmp_path, speed=1.0)  # real speed: most drafts are unfinished at the exit
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        job_ids = [cell.job_id for cell in current_cells(screen)]
        app.exit()
    with contextlib.closing(sqlite3.connect(tmp_path / "imgen.sqlite3")) as db, db:
        # as after a crash: the exit cancelled them, a killed process would not have
        db.execute("UPDATE jobs SET state = 'queued' WHERE state = 'cancelled'")
        unfinished = [
            row[0]
            for row in db.execute("SELECT id FROM jobs WHERE state != 'done' ORDER BY position")
        ]
        damaged = unfinished[-2:]
        db.execute("UPDATE jobs SET spec = '{}' WHERE id = ?", (damaged[0],))
        db.execute("UPDATE jobs SET spec = 'not json' WHERE id = ?", (damaged[1],))

    again = demo_app(tmp_path)
    async with again.run_test(size=SIZE) as pilot:
        reopened = await reopen_the_only_session(pilot)
        cells = {cell.job_id: cell for cell in current_cells(reopened)}
        assert list(cells) == job_ids
        for job_id in damaged:
            assert cells[job_id].state == "failed"
            assert "cannot be read" in str(cells[job_id].error)
            assert "press g" in str(cells[job_id].error)
        others = [cell for job_id, cell in cells.items() if job_id not in damaged]
        await until(pilot, lambda: all(cell.image is not None for cell in others), seconds=60)
        await pilot.press("g")  # made again: every cell comes back to life
        await until(pilot, all_done(reopened), seconds=60)
        assert all(cell.image is not None for cell in current_cells(reopened))
