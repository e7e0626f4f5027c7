"""The concept screen with a round done, as an SVG snapshot (pinned like the funnel's)."""

from __future__ import annotations

import itertools
import random
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from imgen_tui.ui.app import ImgenApp, make_app
from imgen_tui.ui.screens.concept import ConceptScreen
from imgen_tui.ui.widgets.grid import ThumbCell
from tests.pilot_helpers import until
from tests.test_ui_snapshots import FIXTURES, SIZE, SnapCompare, _spread, _StoppedClock, node_up


@pytest.fixture
def pinned_concept(monkeypatch: pytest.MonkeyPatch) -> ImgenApp:
    counter = itertools.count(1)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=_spread(next(counter))))
    real_random = random.Random
    monkeypatch.setattr(
        "imgen_tui.flows.round_maker.random.Random",
        lambda seed=None: real_random(20261201 if seed is None else seed),
    )
    monkeypatch.setattr("imgen_tui.store.database.time", _StoppedClock)
    monkeypatch.setattr("imgen_tui.flows.recorder.job_seconds", lambda job: 1.5)
    data_dir = Path("/tmp/imgen-tui-concept-snapshots")
    shutil.rmtree(data_dir, ignore_errors=True)
    return make_app(
        None,
        demo=True,
        data_dir=data_dir,
        graphics="halfcell",
        demo_speed=0.01,
        demo_farm=FIXTURES / "one_node_farm.yaml",
    )


def test_concept_screen_with_a_round_done(
    snap_compare: SnapCompare, pinned_concept: ImgenApp
) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await node_up(pilot)
        screen = ConceptScreen()
        await pilot.app.push_screen(screen)
        await until(pilot, lambda: screen.session is not None)
        for field in screen.query(Input):
            field.cursor_blink = False
        values = {
            "subject": "a red fox",
            "pose": "sitting",
            "background": "snowy forest",
            "style": "oil painting",
            "mood": "calm",
        }
        for name, text in values.items():
            screen.query_one(f"#field-{name}", Input).value = text
        screen.query_one("#lock-subject").value = True  # type: ignore[attr-defined]
        screen.query_one("#field-subject", Input).focus()
        await pilot.press("enter")
        session = screen.session
        assert session is not None
        await until(pilot, lambda: session.current is not None and session.current.done == 4)
        pictures = [w.query_one(".picture") for w in screen.query(ThumbCell) if w.display]
        await until(pilot, lambda: all(p.image is not None for p in pictures))  # type: ignore[attr-defined]
        await pilot.press("right", "space")
        await pilot.pause(0.6)

    assert snap_compare(pinned_concept, terminal_size=SIZE, run_before=before)
