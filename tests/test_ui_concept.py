"""The concept builder screen driven by keys through Pilot, on the demo farm over loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Static

from imgen_tui.flows.concept_session import ConceptSession
from imgen_tui.ui.app import ImgenApp, make_app
from imgen_tui.ui.screens.concept import ConceptScreen
from imgen_tui.ui.screens.concept_refine import ConceptRefineScreen
from imgen_tui.ui.screens.home import HomeScreen
from imgen_tui.ui.widgets.round_view import RoundView
from tests.pilot_helpers import until

SIZE = (160, 48)
FOX = {
    "subject": "a red fox",
    "pose": "sitting",
    "background": "snowy forest",
    "style": "oil painting",
    "mood": "calm",
    "lighting": "soft",
}


def demo_app(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> ImgenApp:
    """The demo app, remembering every notification (the toasts expire under a slow machine)."""
    app = make_app(None, demo=True, data_dir=data_dir, graphics="halfcell", demo_speed=0.01)
    said: list[str] = []
    original = app.notify

    def notify(message: str, **options: Any) -> None:
        said.append(str(message))
        original(message, **options)

    monkeypatch.setattr(app, "notify", notify)
    monkeypatch.setattr(app, "said", said, raising=False)
    return app


async def open_concept(pilot: Pilot[Any], resume: str | None = None) -> ConceptScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, HomeScreen))
    screen = ConceptScreen(resume)
    await pilot.app.push_screen(screen)
    await until(pilot, lambda: screen.session is not None)
    for field in screen.query(Input):
        field.cursor_blink = False
    return screen


def session_of(screen: ConceptScreen) -> ConceptSession:
    assert screen.session is not None
    return screen.session


def round_done(screen: ConceptScreen) -> bool:
    current = session_of(screen).current
    return current is not None and current.done == len(current.cells) > 0


def messages(app: ImgenApp) -> list[str]:
    said = getattr(app, "said", [])
    assert isinstance(said, list)
    return said


async def fill(screen: ConceptScreen, values: dict[str, str]) -> None:
    for name, text in values.items():
        screen.query_one(f"#field-{name}", Input).value = text


async def refine(pilot: Pilot[Any], screen: ConceptScreen, feedback: str) -> str:
    """`r` on the grid, the feedback, enter to run, enter to make the next round.

    Returns what the panel showed once the stages had run.
    """
    before = len(session_of(screen).builder.history.rounds)
    screen.query_one(RoundView).grid.focus()
    await pilot.press("r")
    await until(pilot, lambda: isinstance(pilot.app.screen, ConceptRefineScreen))
    panel = pilot.app.screen
    assert isinstance(panel, ConceptRefineScreen)
    panel.query_one("#refine-feedback", Input).value = feedback
    await pilot.press("enter")
    await until(pilot, lambda: panel.result is not None)
    await pilot.pause(0.1)
    shown = str(panel.query_one("#refine-stages", Static).render())
    await pilot.press("enter")
    await until(pilot, lambda: len(session_of(screen).builder.history.rounds) == before + 1)
    await until(pilot, lambda: round_done(screen))
    return shown


async def test_the_concept_builder_by_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_concept(pilot)
        await fill(screen, {**FOX, "subject": ""})
        screen.query_one("#field-pose", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: bool(messages(app)))
        assert messages(app)[-1] == (
            "The subject is empty: type who or what the picture is of, then generate."
        )
        assert session_of(screen).current is None

        await fill(screen, FOX)
        screen.query_one("#field-subject", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: round_done(screen))
        first = session_of(screen).current
        assert first is not None and len(first.cells) == 4
        assert first.prompt.startswith("a red fox, sitting, snowy forest background")
        await pilot.press("space")  # the round view's keys: pick #1
        await pilot.press("right", "x")  # reject #2
        assert [c.verdict for c in first.cells][:2] == ["picked", "rejected"]

        screen.query_one("#field-subject", Input).focus()
        await pilot.press("ctrl+l")  # lock the subject
        await until(pilot, lambda: "subject" in session_of(screen).builder.locked)
        assert screen.query_one("#lock-subject", Checkbox).value
        await until(pilot, lambda: "a red fox" in str(screen.query_one("#pins", Static).render()))

        shown = await refine(pilot, screen, "make it a cat instead")
        assert "refused: subject is locked: did not apply 'a cat'" in shown  # in the panel
        assert "passed: locked fields identical and in the prompt" in shown  # the check ran
        assert screen.query_one("#field-subject", Input).value == "a red fox"
        assert "subject is locked: did not apply 'a cat' (unlock it to change it)" in messages(app)
        second = session_of(screen).current
        assert second is not None and second.prompt.startswith("a red fox")

        await pilot.click("#lock-subject")  # unlock by the checkbox
        await until(pilot, lambda: not session_of(screen).builder.locked)
        shown = await refine(pilot, screen, "make it a cat instead")
        assert "→ subject: a cat" in shown and "refused" not in shown
        assert screen.query_one("#field-subject", Input).value == "a cat"

        screen.query_one(RoundView).grid.focus()
        await pilot.press("b")  # back to round 2: its fields and its lock
        assert screen.query_one("#field-subject", Input).value == "a red fox"
        assert screen.query_one("#lock-subject", Checkbox).value
        await pilot.press("b")
        assert session_of(screen).current is first
        session_id = session_of(screen).session_id
        assert session_id is not None

    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_concept(pilot, resume=session_id)
        await until(pilot, lambda: session_of(screen).current is not None)
        reopened = session_of(screen)
        assert reopened.builder.history.position == 0 and len(reopened.builder.history.rounds) == 3
        assert screen.query_one("#field-subject", Input).value == "a red fox"
        assert not screen.query_one("#lock-subject", Checkbox).value  # round 1 had no lock
        current = reopened.current
        assert current is not None
        assert [c.verdict for c in current.cells][:2] == ["picked", "rejected"]


async def test_describing_a_pick_offline_says_it_needs_the_vision_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_concept(pilot)
        await fill(screen, {"subject": "a red fox"})
        screen.query_one("#field-subject", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: round_done(screen))
        await pilot.press("d")
        await until(pilot, lambda: any("vision model" in m for m in messages(app)))
        assert screen.query_one("#field-pose", Input).value == ""
