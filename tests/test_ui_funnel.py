"""The app driven by keys through Textual's Pilot, on the in-process demo farm over loopback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label, OptionList, Select, Static, TextArea

from imgen_tui.flows.funnel import Cell, Funnel, StageRound
from imgen_tui.llm.ollama_stages import OllamaStages
from imgen_tui.store import ImageRecord
from imgen_tui.ui.app import ImgenApp, make_app
from imgen_tui.ui.screens.funnel import FunnelScreen
from imgen_tui.ui.screens.home import HomeScreen
from imgen_tui.ui.screens.intent import IntentScreen
from imgen_tui.ui.screens.lightbox import CompareScreen, LightboxScreen
from imgen_tui.ui.screens.modals import ConfirmScreen
from imgen_tui.ui.screens.nodes import NodesScreen
from imgen_tui.ui.screens.queue import QueueScreen
from imgen_tui.ui.screens.refine import RefineScreen
from imgen_tui.ui.widgets.grid import ThumbCell, ThumbGrid
from tests.fake_ollama import fake_ollama
from tests.pilot_helpers import start_drafts, until
from tests.test_llm_pipeline import config_for

SIZE = (160, 48)


def demo_app(data_dir: Path, speed: float = 0.01) -> ImgenApp:
    return make_app(None, demo=True, data_dir=data_dir, graphics="halfcell", demo_speed=speed)


def funnel_of(screen: FunnelScreen) -> Funnel:
    assert screen.funnel is not None
    return screen.funnel


def session_of(screen: FunnelScreen) -> str:
    assert screen.session is not None
    return screen.session.id


def image_of(cell: Cell | None) -> ImageRecord:
    assert cell is not None and cell.image is not None
    return cell.image


def top(app: ImgenApp) -> Screen[Any]:
    """The screen on top, without letting mypy remember an earlier comparison."""
    return app.screen


def current_round(screen: FunnelScreen) -> StageRound:
    current = funnel_of(screen).current
    assert current is not None
    return current


def current_cells(screen: FunnelScreen) -> list[Cell]:
    assert screen.funnel is not None and screen.funnel.current is not None
    return screen.funnel.current.cells


def all_done(screen: FunnelScreen) -> Callable[[], bool]:
    return lambda: all(cell.state == "done" for cell in current_cells(screen))


async def test_the_funnel_end_to_end_by_keys(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        cells = current_cells(screen)
        assert len(cells) == 20 and len({cell.seed for cell in cells}) == 20
        await until(pilot, all_done(screen))
        assert len({cell.node_id for cell in cells}) == 4  # every idle GPU drew drafts
        store = app.engine.store
        assert store is not None

        await pilot.press("space")  # pick #1
        await pilot.press("right", "right", "p")  # pick #3
        await pilot.press("right", "x")  # reject #4
        await pilot.press("down", "x", "u")  # reject then clear #9
        verdicts = [cell.verdict for cell in cells]
        assert verdicts[0] == verdicts[2] == "picked" and verdicts[3] == "rejected"
        assert verdicts[8] == "none"
        stored = {
            image.job_id: image.verdict
            for image in await store.images(session_id=session_of(screen))
        }
        assert stored[cells[0].job_id] == "picked" and stored[cells[3].job_id] == "rejected"

        await pilot.press("n")  # Refined 8: SDXL img2img from the picks
        await until(pilot, lambda: funnel_of(screen).position == 1)
        refined = current_cells(screen)
        assert len(refined) == 8
        assert {cell.source.id for cell in refined if cell.source} == {
            image_of(c).id for c in (cells[0], cells[2])
        }
        await until(pilot, all_done(screen))
        assert all(image_of(cell).width == 1024 for cell in refined)
        assert "gpu-draft" not in {cell.node_id for cell in refined}  # no SDXL there

        await pilot.press("b")  # back: everything made so far is still there
        assert funnel_of(screen).position == 0 and current_cells(screen) is cells
        await pilot.press("n")  # forward again from the same picks: what was made, as it was
        await until(pilot, lambda: funnel_of(screen).position == 1)
        assert current_cells(screen) is refined
        await pilot.press("space", "n")
        await until(pilot, lambda: funnel_of(screen).position == 2)
        assert len(current_cells(screen)) == 3
        await until(pilot, all_done(screen))
        await pilot.press("space", "n")  # Final: ESRGAN upscale on the premium tier
        await until(pilot, lambda: funnel_of(screen).position == 3)
        await until(pilot, all_done(screen))
        (final,) = current_cells(screen)
        assert final.node_id == "gpu-premium" and image_of(final).width == 4096
        with Image.open(image_of(final).path) as picture:
            assert picture.size == (4096, 4096)
        rounds = await store.rounds(session_of(screen))
        assert [r.stage for r in rounds] == ["drafts", "refined", "polished", "final"]


async def test_lightbox_compare_more_like_this_lock_again_upscale(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        cells = current_cells(screen)

        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LightboxScreen))
        lightbox = app.screen
        assert isinstance(lightbox, LightboxScreen) and lightbox.index == 0
        await pilot.press("right")
        assert lightbox.index == 1
        await pilot.press("left", "left")
        assert lightbox.index == 19  # wraps around
        await pilot.press("right", "escape")  # closes on #1: the grid's cursor goes there
        assert app.screen is screen
        assert screen.query_one(ThumbGrid).cursor == 0

        await pilot.press("c")  # fewer than two picks: says so, opens nothing
        assert app.screen is screen
        await pilot.press("space", "right", "space", "c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare = top(app)
        assert isinstance(compare, CompareScreen)
        first = compare.pair[0]
        await pilot.press("f")
        assert compare.pair[1] is first
        await pilot.press("escape")

        await pilot.press("plus", "plus", "minus")
        assert screen.denoise == 0.4
        await pilot.press("m")  # more like #2: same seed, img2img at denoise 0.40
        more = cells[-1]
        assert len(cells) == 21 and more.seed == cells[1].seed
        assert more.source is cells[1].image
        await until(pilot, lambda: more.state == "done")
        grid = screen.query_one(ThumbGrid)
        assert grid.cursor == 20  # the cursor went to the new image
        grid.cursor = 1

        await pilot.press("l")  # lock #2's seed
        assert cells[1].locked
        store = app.engine.store
        assert store is not None
        locked_image = image_of(cells[1])
        stored = {i.id: i.locks for i in await store.images(session_id=session_of(screen))}
        assert stored[locked_image.id] == ("seed",)
        old_seeds = {cell.seed for cell in cells}
        await pilot.press("g")  # again: new seeds, the picked and locked ones kept
        again = current_cells(screen)
        assert [c.job_id for c in again[:2]] == [cells[0].job_id, cells[1].job_id]
        assert again[1].locked and len(again) == 20
        assert len({c.seed for c in again[2:]} & old_seeds) == 0

        await until(pilot, all_done(screen))
        await pilot.press("U")  # upscale the image under the cursor
        upscaled = current_cells(screen)[-1]
        await until(pilot, lambda: upscaled.state == "done")
        assert upscaled.source is not None
        assert image_of(upscaled).width == 4 * upscaled.source.width


def stages_text(screen: Screen[Any]) -> str:
    return str(screen.query_one("#refine-stages", Static).render())


async def test_refine_by_the_offline_rules_with_a_style_then_edit_and_generate(
    tmp_path: Path,
) -> None:
    app = demo_app(tmp_path)  # demo mode: no Ollama, the rules run and say so
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot, "a fox, forest background, sunny")
        await until(pilot, all_done(screen))
        await pilot.press("space", "right", "x")  # #1 picked, #2 rejected
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RefineScreen))
        panel = app.screen
        assert "looking at #1, against rejected #2" in str(panel.query_one(".dim", Label).render())
        panel.query_one(Select).value = "cinematic"
        panel.query_one(
            "#refine-feedback", Input
        ).value = "no sunny, change the background to beach, more glow, sing"
        await pilot.press("enter")
        prompt = panel.query_one("#refine-prompt", Input)
        await until(pilot, lambda: not prompt.disabled)
        assert app.focused is prompt
        assert prompt.value == (
            "a fox, beach background, cinematic lighting, film still, "
            "shallow depth of field, dramatic composition, (glow:1.1)"
        )
        shown = stages_text(panel)
        assert "· vision (rules): skipped: the offline rules cannot look at images" in shown
        assert "✓ vision" not in shown
        assert "ran: offline rules" in shown and "✓ check: passed" in shown
        assert "not understood: sing" in shown and "running" not in shown
        prompt.value = "a fox, beach background, (glow:1.1), golden hour"
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen)
        assert current_round(screen).prompt == "a fox, beach background, (glow:1.1), golden hour"
        assert "sunny" in current_round(screen).negative  # avoided from now on
        await until(pilot, all_done(screen))
        assert "golden hour" in image_of(current_cells(screen)[0]).sidecar_path.read_text()

        await pilot.press("i")  # the intent document, learnt and editable
        await until(pilot, lambda: isinstance(app.screen, IntentScreen))
        editor = app.screen.query_one(TextArea)
        assert "- sunny" in editor.text
        editor.text = editor.text.replace("pinned: []", "pinned:\n- a fox")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is screen)
        store = app.engine.store
        assert store is not None
        intent = await store.intent(session_of(screen))
        assert intent["pinned"] == ["a fox"] and intent["avoid"] == ["sunny"]


async def test_the_panel_shows_each_stage_while_the_local_llm_works(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with fake_ollama() as fake, app.run_test(size=SIZE) as pilot:
        app.llm_stages = OllamaStages(config_for(fake))
        fake.answer({"keep": ["a fox"], "add": ["fog"]})
        fake.answer({"prompt": "a fox, forest background, fog"}, delay=1.0)  # a slow engineer
        screen = await start_drafts(pilot, "a fox, forest background")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RefineScreen))
        panel = app.screen
        panel.query_one("#refine-feedback", Input).value = "add fog"
        await pilot.press("enter")
        await until(pilot, lambda: "… engineer: running" in stages_text(panel))
        assert "✓ interpret: keep: a fox; add: fog" in stages_text(panel)
        await until(pilot, lambda: "ran: local LLM" in stages_text(panel))
        assert "running" not in stages_text(panel)
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen)
        assert current_round(screen).prompt == "a fox, forest background, fog"
        await pilot.press("escape")


async def test_more_like_this_described_runs_img2img_on_the_seed_with_the_new_prompt(
    tmp_path: Path,
) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot, "a fox, forest background")
        await until(pilot, all_done(screen))
        await pilot.press("right", "M")
        await until(pilot, lambda: isinstance(app.screen, RefineScreen))
        panel = app.screen
        assert str(panel.query_one(Label).render()).startswith("More like #2")
        feedback = panel.query_one("#refine-feedback", Input)
        assert feedback.value == "more like this"
        feedback.value = "more like this, add fog"
        await pilot.press("enter")
        prompt = panel.query_one("#refine-prompt", Input)
        await until(pilot, lambda: not prompt.disabled)
        assert prompt.value == "a fox, forest background, fog"
        assert "not understood" not in stages_text(panel)
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen)
        cells = current_cells(screen)
        assert len(cells) == 21
        variation, source = cells[-1], cells[1]
        assert variation.source == source.image and variation.seed == source.seed
        await until(pilot, lambda: variation.state == "done")
        sidecar = image_of(variation).sidecar_path.read_text()
        assert "fog" in sidecar
        assert all(cell.state == "done" for cell in cells[:20])  # the round was not redone


async def test_nodes_and_queue_screens_and_cancel_all(tmp_path: Path) -> None:
    app = demo_app(tmp_path, speed=0.5)  # slow enough that jobs are still queued
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, NodesScreen))
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 4)
        assert "gpu-premium" in str(table.get_row("gpu-premium")[0])
        await pilot.press("escape", "f3")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        queue = app.screen.query_one(DataTable)
        await until(pilot, lambda: queue.row_count > 0)
        await pilot.press("d")  # cancel the job under the cursor
        await until(pilot, lambda: any(c.state == "cancelled" for c in current_cells(screen)))
        await pilot.press("A")  # cancel everything: asks first
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: queue.row_count == 0)
        await pilot.press("escape")
        states = {cell.state for cell in current_cells(screen)}
        assert "queued" not in states and "running" not in states


async def test_quitting_with_jobs_running_asks_first(tmp_path: Path) -> None:
    app = demo_app(tmp_path, speed=0.5)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        assert app.screen is screen
        await pilot.press("q", "y")
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        scheduler = app.engine.scheduler
        assert scheduler is not None and len(scheduler.jobs) == 20
        assert all(job.state.finished for job in scheduler.jobs.values())


async def test_help_lists_the_screen_keys(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start_drafts(pilot)
        await pilot.press("escape", "f1")
        await until(pilot, lambda: bool(app.screen.query("HelpPanel")))
        await pilot.press("f1")
        await until(pilot, lambda: not app.screen.query("HelpPanel"))


async def test_a_session_reopens_from_home_with_its_verdicts(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot, "a lighthouse at dusk")
        await until(pilot, all_done(screen))
        await pilot.press("space", "q")
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
    again = demo_app(tmp_path)
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(again.screen, HomeScreen))
        sessions = again.screen.query_one("#sessions", OptionList)
        await until(pilot, lambda: sessions.option_count == 1 and sessions.highlighted == 0)
        await pilot.press("tab", "enter")  # from the flows list to the sessions list
        await until(pilot, lambda: isinstance(again.screen, FunnelScreen))
        reopened = again.screen
        assert isinstance(reopened, FunnelScreen)
        await until(
            pilot, lambda: reopened.funnel is not None and reopened.funnel.current is not None
        )
        cells = current_cells(reopened)
        assert len(cells) == 20 and cells[0].verdict == "picked"
        assert reopened.query_one("#prompt", Input).value == "a lighthouse at dusk"
        grid = reopened.query_one(ThumbGrid)
        assert all(w.cell is not None for w in grid.query(ThumbCell))
