"""The sessions screen (Home `s`): list, search, sort, open into each flow, delete, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label

from imgen_tui.store import SessionStore
from imgen_tui.ui.app import ImgenApp
from imgen_tui.ui.screens.concept import ConceptScreen
from imgen_tui.ui.screens.export_dialog import ExportDialog
from imgen_tui.ui.screens.funnel import FunnelScreen
from imgen_tui.ui.screens.home import HomeScreen
from imgen_tui.ui.screens.modals import ConfirmScreen
from imgen_tui.ui.screens.sessions import SessionsScreen
from tests.pilot_helpers import start_drafts, until
from tests.test_store import output, png
from tests.test_ui_concept import FOX, demo_app, fill, open_concept, round_done

SIZE = (140, 44)


def said(app: ImgenApp) -> list[str]:
    return list(getattr(app, "said", []))


async def open_sessions(pilot: Pilot[Any]) -> SessionsScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, HomeScreen))
    await pilot.press("s")
    await until(pilot, lambda: isinstance(pilot.app.screen, SessionsScreen))
    screen = pilot.app.screen
    assert isinstance(screen, SessionsScreen)
    await until(pilot, lambda: bool(screen.rows))
    screen.query_one("#session-search", Input).cursor_blink = False
    return screen


def table_of(screen: SessionsScreen) -> DataTable[Any]:
    return screen.query_one(DataTable)


async def select(pilot: Pilot[Any], screen: SessionsScreen, session_id: str) -> None:
    table = table_of(screen)
    await until(pilot, lambda: session_id in table.rows)
    table.move_cursor(row=table.get_row_index(session_id))
    await pilot.pause()


async def make_funnel_session(pilot: Pilot[Any]) -> str:
    screen = await start_drafts(pilot, "a red fox in the snow")
    funnel = screen.funnel
    assert funnel is not None and funnel.current is not None
    cells = funnel.current.cells
    await until(pilot, lambda: all(cell.state == "done" for cell in cells))
    await pilot.press("space")  # pick the first
    await until(pilot, lambda: cells[0].verdict == "picked")
    assert screen.session is not None
    session_id = screen.session.id
    await pilot.press("q")
    await until(pilot, lambda: isinstance(pilot.app.screen, HomeScreen))
    return session_id


async def make_concept_session(pilot: Pilot[Any]) -> str:
    screen = await open_concept(pilot)
    await fill(screen, {**FOX, "subject": "a grey heron"})
    screen.query_one("#field-subject", Input).focus()
    await pilot.press("enter")
    await until(pilot, lambda: round_done(screen))
    await pilot.press("space")
    assert screen.session is not None and screen.session.current is not None
    await until(pilot, lambda: screen.session.current.cells[0].verdict == "picked")  # type: ignore[union-attr]
    session_id = screen.session.session_id
    await pilot.press("q")
    await until(pilot, lambda: isinstance(pilot.app.screen, HomeScreen))
    return str(session_id)


async def test_every_flow_listed_searched_opened_exported_and_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path / "data", monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        funnel_id = await make_funnel_session(pilot)
        concept_id = await make_concept_session(pilot)
        store = app.engine.store
        assert store is not None
        batch = await store.create_session("batch", "tarot cards")
        await store.add_round(batch.id, "batch", prompt="the fool, tarot card")

        screen = await open_sessions(pilot)
        table = table_of(screen)
        assert table.row_count == 3
        flows = {str(table.get_cell(key, "flow")) for key in (funnel_id, concept_id, batch.id)}
        assert flows == {"funnel", "concept", "batch"}
        assert str(table.get_cell(funnel_id, "picks")) == "1"
        await until(pilot, lambda: str(table.get_cell(funnel_id, "disk")).endswith("KB"))

        # search: prompt words, the flow, a date; and clearing it
        await pilot.press("slash")
        await pilot.press(*"heron")
        await until(pilot, lambda: table.row_count == 1 and concept_id in table.rows)
        search = screen.query_one("#session-search", Input)
        search.value = "concept"
        await until(pilot, lambda: list(table.rows) == [concept_id])
        search.value = "fool"
        await until(pilot, lambda: list(table.rows) == [batch.id])
        search.value = "no such thing"
        await until(pilot, lambda: table.row_count == 0)
        search.value = ""
        await until(pilot, lambda: table.row_count == 3)
        await pilot.press("enter")  # back to the list
        await pilot.press("o")  # oldest first: the funnel session was made first
        await until(pilot, lambda: next(iter(table.rows)) == funnel_id)

        # open each in its own flow, and come back
        await select(pilot, screen, funnel_id)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, FunnelScreen))
        funnel_screen = app.screen
        assert isinstance(funnel_screen, FunnelScreen) and funnel_screen.resume_id == funnel_id
        await until(
            pilot,
            lambda: funnel_screen.funnel is not None and funnel_screen.funnel.current is not None,
        )
        current = funnel_screen.funnel.current  # type: ignore[union-attr]
        assert current is not None and current.cells[0].verdict == "picked"
        await pilot.press("q")
        await until(pilot, lambda: app.screen is screen)

        await select(pilot, screen, concept_id)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConceptScreen))
        concept_screen = app.screen
        assert isinstance(concept_screen, ConceptScreen)
        await until(
            pilot,
            lambda: (
                concept_screen.session is not None and concept_screen.session.current is not None
            ),
        )
        assert concept_screen.session.current.cells[0].verdict == "picked"  # type: ignore[union-attr]
        assert concept_screen.query_one("#field-subject", Input).value == "a grey heron"
        await pilot.press("q")
        await until(pilot, lambda: app.screen is screen)

        await select(pilot, screen, batch.id)
        await pilot.press("enter")
        await until(pilot, lambda: any("no screen to reopen it" in text for text in said(app)))
        assert app.screen is screen

        # export: a file where the folder should be is one sentence, nothing written
        not_a_folder = tmp_path / "taken"
        not_a_folder.write_text("mine")
        await select(pilot, screen, funnel_id)
        await pilot.press("E")
        await until(pilot, lambda: isinstance(app.screen, ExportDialog))
        app.screen.query_one("#export-folder", Input).value = str(not_a_folder)
        await pilot.press("enter")
        await until(pilot, lambda: any("Could not export to" in text for text in said(app)))
        (sentence,) = [text for text in said(app) if "Could not export to" in text]
        assert "it is a file, not a folder" in sentence and sentence.endswith("write to.")
        assert not_a_folder.read_text() == "mine"
        out = tmp_path / "out"
        await pilot.press("E")
        await until(pilot, lambda: isinstance(app.screen, ExportDialog))
        app.screen.query_one("#export-folder", Input).value = str(out)
        await pilot.press("enter")
        await until(pilot, lambda: any("Exported 1 picked images" in text for text in said(app)))
        exported = sorted(path.suffix for path in out.iterdir())
        assert exported == [".json", ".png"]
        sidecar = json.loads(next(out.glob("*.json")).read_text())
        assert sidecar["prompt"].startswith("a red fox")
        await pilot.press("E")  # everything, into the same folder: the pick is not doubled
        await until(pilot, lambda: isinstance(app.screen, ExportDialog))
        app.screen.query_one("#export-folder", Input).value = str(out)
        app.screen.query_one("#export-everything").value = True  # type: ignore[attr-defined]
        await pilot.press("enter")
        await until(pilot, lambda: any("Exported 20 images" in text for text in said(app)))
        assert len(list(out.glob("*.png"))) == 20

        # delete: no keeps it, yes removes rows and files and says how much came back
        folder = store.session_dir(funnel_id)
        assert folder.exists()
        await select(pilot, screen, funnel_id)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = str(app.screen.query_one(Label).render())
        assert funnel_id[:8] in question and "20 images, 1 picks" in question
        assert "KB come back" in question or "MB come back" in question
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen)
        assert table.row_count == 3 and folder.exists()
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: table.row_count == 2)
        assert not folder.exists()
        assert any(
            f"Deleted session {funnel_id[:8]}" in text and "freed" in text for text in said(app)
        )
        assert len(await store.sessions()) == 2

        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        screen = await open_sessions(pilot)  # reopened: the same two
        assert table_of(screen).row_count == 2


async def test_three_hundred_sessions_open_at_once_and_sizes_follow(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = await SessionStore.open(data_dir)
    try:
        for number in range(300):
            session = await store.create_session("funnel", f"prompt number {number}")
            round_info = await store.add_round(
                session.id, "drafts", prompt=f"prompt number {number}, lighthouse {number}"
            )
            if number % 50 == 0:  # a few with a picked image
                await store.add_jobs(round_info.id, [(f"job{number}", "{}")])
                (image,) = await store.save_images(f"job{number}", [output(png(number, 64))])
                await store.set_verdict(image.id, "picked")
    finally:
        await store.close()
    app = demo_app(data_dir, pytest.MonkeyPatch())
    async with app.run_test(size=SIZE) as pilot:
        engine_store = app.engine.store
        assert engine_store is not None
        walked: list[int] = []
        measure = engine_store.disk_use

        async def counting(sessions: Any) -> dict[str, int]:
            walked.append(sum(engine_store.cached_disk_use(s) is None for s in sessions))
            return await measure(sessions)

        engine_store.disk_use = counting  # type: ignore[method-assign]
        screen = await open_sessions(pilot)
        table = table_of(screen)
        assert table.row_count == 300
        await until(
            pilot, lambda: "…" not in {str(table.get_cell(r.id, "disk")) for r in screen.rows}
        )
        assert walked == [300]
        picked = [row for row in screen.rows if row.details.picks]
        assert len(picked) == 6 and all(len(row.details.picked_thumbs) == 1 for row in picked)
        search = screen.query_one("#session-search", Input)
        search.value = "lighthouse 123"
        await until(pilot, lambda: table.row_count == 1)
        await pilot.press("escape", "escape")
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        screen = await open_sessions(pilot)  # sizes are cached: nothing is walked again
        assert {str(table_of(screen).get_cell(r.id, "disk")) for r in screen.rows} != {"…"}
        assert "…" not in {str(table_of(screen).get_cell(r.id, "disk")) for r in screen.rows}
        assert walked == [300]
