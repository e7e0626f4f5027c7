"""P / F / S on the round view, the reference chips, and their life in the session (issue 17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from imgen_tui.graphs.reference_pin import PinnedReference
from imgen_tui.llm.pipeline import Intent
from imgen_tui.ui.screens.concept import ConceptScreen
from imgen_tui.ui.screens.queue import QueueScreen
from imgen_tui.ui.widgets.reference_chips import ReferenceChip
from imgen_tui.ui.widgets.round_view import RoundView
from tests.pilot_helpers import until
from tests.test_ui_concept import (
    FOX,
    SIZE,
    demo_app,
    fill,
    messages,
    open_concept,
    refine,
    round_done,
    session_of,
)


def chips(screen: ConceptScreen) -> list[ReferenceChip]:
    return list(screen.query(ReferenceChip))


def chip_texts(screen: ConceptScreen) -> list[str]:
    return [ReferenceChip.text_for(chip.pin) for chip in chips(screen)]


async def first_round(pilot: Pilot[Any], screen: ConceptScreen) -> None:
    await fill(screen, FOX)
    screen.query_one("#field-subject", Input).focus()
    await pilot.press("enter")
    await until(pilot, lambda: round_done(screen))
    screen.query_one(RoundView).grid.focus()


async def next_round(pilot: Pilot[Any], screen: ConceptScreen) -> None:
    before = len(session_of(screen).history.rounds)
    screen.query_one("#field-subject", Input).focus()
    await pilot.press("enter")
    await until(pilot, lambda: len(session_of(screen).history.rounds) == before + 1)
    try:
        await until(pilot, lambda: round_done(screen))
    except AssertionError:
        cells = current.cells if (current := session_of(screen).current) else []
        raise AssertionError([(c.state, c.error, c.node_id) for c in cells]) from None


async def stored_intent(screen: ConceptScreen) -> Intent:
    session = session_of(screen)
    assert session.session_id is not None
    return Intent.from_document(await session.store.intent(session.session_id))


async def test_keys_pin_references_chips_nudge_and_drop_them_and_rounds_use_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_concept(pilot)
        view = screen.query_one(RoundView)
        await pilot.press("P")  # nothing made yet: said, nothing pinned
        assert chips(screen) == []
        await first_round(pilot, screen)
        cells = session_of(screen).current.cells  # type: ignore[union-attr]
        await pilot.press("P")
        await until(pilot, lambda: len(chips(screen)) == 1)
        assert any(
            m.startswith("Keeping the pose of #1") and "gpu-draft cannot run it" in m
            for m in messages(app)
        )
        await pilot.press("right", "F")
        await until(pilot, lambda: len(chips(screen)) == 2)
        assert "gpu-draft, gpu-quality, gpu-standard cannot run it" in messages(app)[-1]
        await pilot.press("right", "S")
        await until(pilot, lambda: len(chips(screen)) == 3)
        await pilot.press("P")  # a second pose replaces the first
        await until(pilot, lambda: chips(screen)[0].pin.path == str(cells[2].image.path))  # type: ignore[union-attr]
        assert [chip.pin.kind for chip in chips(screen)] == ["pose", "face", "style"]
        assert chip_texts(screen)[0].startswith("pose 0.8")

        view.grid.focus()
        await pilot.press("tab")  # from the grid to the first chip
        await until(pilot, lambda: chips(screen)[0].has_focus)
        await pilot.press("plus", "plus", "minus")
        await until(pilot, lambda: chip_texts(screen)[0].startswith("pose 0.9"))
        chips(screen)[2].focus()
        await pilot.press("delete")
        await until(pilot, lambda: len(chips(screen)) == 2)
        intent = await stored_intent(screen)
        assert [(r.kind, r.strength) for r in intent.references] == [("pose", 0.9), ("face", 0.8)]
        assert intent.references[1].image_id == cells[1].image.id  # type: ignore[union-attr]
        chips(screen)[1].focus()
        await pilot.press("delete")
        await until(pilot, lambda: len(chips(screen)) == 1)
        chips(screen)[0].focus()
        await pilot.press("delete")  # the last one: the grid has the keys again
        await until(pilot, lambda: chips(screen) == [])
        assert view.grid.has_focus
        assert (await stored_intent(screen)).references == []

        # pose + face again, and the next round is made with them on the one node that can
        await pilot.press("P", "right", "F")
        await until(pilot, lambda: len(chips(screen)) == 2)
        await next_round(pilot, screen)
        made = session_of(screen).current
        assert made is not None
        assert {cell.node_id for cell in made.cells} == {"gpu-premium"}
        scheduler = app.engine.scheduler
        assert scheduler is not None
        job = scheduler.jobs[made.cells[0].job_id]
        assert job.graph_sent is not None
        ran = {node["class_type"] for node in job.graph_sent.values()}
        assert {"DWPreprocessor", "ControlNetApplyAdvanced", "IPAdapterFaceID"} <= ran
        assert job.spec.needs >= {"controlnet", "faceid"}
        # the queue screen says why the other nodes cannot take such a job
        await app.push_screen("queue")
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        why = queue._refusals(job)
        assert "gpu-draft: no controlnet, faceid" in why and "gpu-quality: no faceid" in why


async def test_references_survive_refinement_and_come_back_on_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_concept(pilot)
        await first_round(pilot, screen)
        await pilot.press("P", "right", "F")
        await until(pilot, lambda: len(chips(screen)) == 2)
        await refine(pilot, screen, "make the mood eerie")
        intent = await stored_intent(screen)
        assert [r.kind for r in intent.references] == ["pose", "face"]
        assert intent.feedback  # refinement wrote the intent, and kept the references
        refined = session_of(screen).current
        assert refined is not None
        job = app.engine.scheduler.jobs[refined.cells[0].job_id]  # type: ignore[union-attr]
        assert "faceid" in job.spec.needs
        session_id = session_of(screen).session_id

    again = demo_app(tmp_path, monkeypatch)
    async with again.run_test(size=SIZE) as pilot:
        screen = await open_concept(pilot, resume=session_id)
        await until(pilot, lambda: len(chips(screen)) == 2)
        assert [t.split(" · ")[0] for t in chip_texts(screen)] == ["pose 0.8", "face 0.8"]
        # and the reopened session makes its next round with them
        await next_round(pilot, screen)
        made = session_of(screen).current
        assert made is not None and {cell.node_id for cell in made.cells} == {"gpu-premium"}


async def reopened_funnel_pins(data_dir: Path, session_id: str | None) -> list[PinnedReference]:
    """The funnel session reopened in a new app: its pins, once their one chip is shown."""
    from imgen_tui.ui.screens.funnel import FunnelScreen
    from tests.test_ui_funnel import SIZE as FUNNEL_SIZE
    from tests.test_ui_funnel import demo_app as funnel_app

    again = funnel_app(data_dir)
    async with again.run_test(size=FUNNEL_SIZE) as pilot:
        screen = FunnelScreen(resume=session_id)
        await pilot.app.push_screen(screen)
        await until(pilot, lambda: screen.flow is not None and screen.funnel is not None)
        await until(pilot, lambda: len(list(screen.query(ReferenceChip))) == 1)
        assert screen.flow is not None
        return list(screen.flow.references.pins)


async def test_the_funnel_keeps_a_drafts_pose_into_the_next_stage_and_after_reopening(
    tmp_path: Path,
) -> None:
    """P on a draft pins its pose (failed before: the funnel session had no pins, so P did nothing)."""
    from tests.pilot_helpers import start_drafts
    from tests.test_ui_funnel import SIZE as FUNNEL_SIZE
    from tests.test_ui_funnel import all_done, current_cells
    from tests.test_ui_funnel import demo_app as funnel_app

    app = funnel_app(tmp_path)
    async with app.run_test(size=FUNNEL_SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        assert screen.flow is not None
        flow = screen.flow
        screen.query_one(RoundView).grid.focus()
        await pilot.press("P")
        await until(pilot, lambda: len(list(screen.query(ReferenceChip))) == 1)
        assert [p.kind for p in flow.references.pins] == ["pose"]
        assert flow.references.pins[0].image_id == current_cells(screen)[0].image.id  # type: ignore[union-attr]
        await pilot.press("space", "n")  # pick #1, on to the SDXL stage
        await until(pilot, lambda: flow.funnel.position == 1)
        stage = current_cells(screen)
        job = app.engine.scheduler.jobs[stage[0].job_id]  # type: ignore[union-attr]
        assert "controlnet" in job.spec.needs
        session_id = flow.session_id
        await pilot.press("q")

    pins = await reopened_funnel_pins(tmp_path, session_id)
    assert [p.kind for p in pins] == ["pose"]


async def test_the_explorer_keeps_a_style_across_showcases_and_reopening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S on a showcase picture (failed before: S drew new seeds and the explorer had no pins)."""
    from imgen_tui.ui.screens.explorer import ExplorerScreen
    from tests.test_ui_explorer import DETAIL, GRAIN, highlight, open_explorer
    from tests.test_ui_explorer import SIZE as EXPLORER_SIZE
    from tests.test_ui_explorer import current as explorer_round
    from tests.test_ui_explorer import demo_app as explorer_app
    from tests.test_ui_explorer import round_done as explorer_done
    from tests.test_ui_explorer import session_of as explorer_session

    def adapters(app: Any, screen: ExplorerScreen) -> list[str]:
        graph = app.engine.scheduler.jobs[explorer_round(screen).cells[0].job_id].spec.graph
        return [
            n["inputs"]["weight_type"] for n in graph.values() if "IPAdapterAdv" in n["class_type"]
        ]

    app = explorer_app(tmp_path, monkeypatch)
    async with app.run_test(size=EXPLORER_SIZE) as pilot:
        screen = await open_explorer(pilot)
        await highlight(pilot, screen, DETAIL)
        await pilot.press("s")
        await until(pilot, lambda: explorer_done(screen))
        seeds = [cell.seed for cell in explorer_round(screen).cells]
        screen.query_one(RoundView).grid.focus()
        await pilot.press("S")
        await until(pilot, lambda: len(list(screen.query(ReferenceChip))) == 1)
        assert [c.seed for c in explorer_round(screen).cells] == seeds  # not new seeds
        await highlight(pilot, screen, GRAIN)
        await pilot.press("s")
        await until(pilot, lambda: explorer_done(screen))
        assert adapters(app, screen) == ["style transfer"]
        session_id = explorer_session(screen).session_id
        await pilot.press("q")

    again = explorer_app(tmp_path, monkeypatch)
    async with again.run_test(size=EXPLORER_SIZE) as pilot:
        screen = await open_explorer(pilot, resume=session_id)
        await until(pilot, lambda: len(list(screen.query(ReferenceChip))) == 1)
        assert [p.kind for p in explorer_session(screen).references.pins] == ["style"]


async def test_r_pins_a_picture_file_as_a_reference_and_bad_lines_say_why(tmp_path: Path) -> None:
    """R takes KIND:PATH[:STRENGTH] as --ref does: a typed file becomes a pin the next stage uses."""
    from PIL import Image

    from imgen_tui.ui.screens.funnel import FunnelScreen
    from imgen_tui.ui.screens.modals import AskLineScreen
    from tests.pilot_helpers import notices, start_drafts
    from tests.test_ui_funnel import SIZE as FUNNEL_SIZE
    from tests.test_ui_funnel import all_done, current_cells
    from tests.test_ui_funnel import demo_app as funnel_app

    pose = tmp_path / "dancer.png"
    Image.new("RGB", (256, 256), (30, 200, 90)).save(pose)
    (tmp_path / "notes.png").write_text("not a picture")
    app = funnel_app(tmp_path / "data")

    async def typed(screen: FunnelScreen, line: str | None) -> None:
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, AskLineScreen))
        if line is None:
            await pilot.press("escape")
        else:
            app.screen.query_one("#ask-line", Input).value = line
            await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen)

    async with app.run_test(size=FUNNEL_SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        assert screen.flow is not None
        flow = screen.flow
        screen.query_one(RoundView).grid.focus()
        await typed(screen, None)  # escape: nothing pinned
        for line, says in (
            ("hat:/nowhere.png", "is not KIND:IMAGE"),
            (f"pose:{tmp_path / 'gone.png'}", "is not a file"),
            (f"pose:{tmp_path / 'notes.png'}", "is not an image Pillow can read"),
            (f"face:{pose}:7", "out of range"),
        ):
            await typed(screen, line)
            await until(pilot, lambda says=says: any(says in n for n in notices(app)))  # type: ignore[misc]
        assert flow.references.pins == []
        await typed(screen, f"pose:{pose}:0.6")
        await until(pilot, lambda: len(list(screen.query(ReferenceChip))) == 1)
        (pin,) = flow.references.pins
        assert (pin.kind, pin.path, pin.strength, pin.image_id) == ("pose", str(pose), 0.6, None)
        assert any("Keeping the pose of dancer.png" in n for n in notices(app))
        await pilot.press("space", "n")  # pick #1, on to the SDXL stage: it keeps the pose
        await until(pilot, lambda: flow.funnel.position == 1)
        job = app.engine.scheduler.jobs[current_cells(screen)[0].job_id]  # type: ignore[union-attr]
        assert "controlnet" in job.spec.needs
        assert str(pose) in [path for _, path in job.spec.reference_images]
        session_id = flow.session_id

    pins = await reopened_funnel_pins(tmp_path / "data", session_id)
    assert [(p.kind, p.path) for p in pins] == [("pose", str(pose))]
