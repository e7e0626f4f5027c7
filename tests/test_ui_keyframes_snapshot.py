"""The keyframe video screen with a timeline and a locked still, as an SVG snapshot."""

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
from imgen_tui.ui.screens.keyframes import KeyframesScreen
from imgen_tui.ui.widgets.grid import ThumbCell
from imgen_tui.ui.widgets.timeline import TimelineSlot
from tests.pilot_helpers import until
from tests.test_ui_snapshots import FIXTURES, SIZE, SnapCompare, _spread, _StoppedClock, node_up


@pytest.fixture
def pinned_keyframes(monkeypatch: pytest.MonkeyPatch) -> ImgenApp:
    counter = itertools.count(1)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=_spread(next(counter))))
    real_random = random.Random
    monkeypatch.setattr(
        "imgen_tui.flows.keyframes.random.Random",
        lambda seed=None: real_random(20261202 if seed is None else seed),
    )
    monkeypatch.setattr("imgen_tui.store.database.time", _StoppedClock)
    monkeypatch.setattr("imgen_tui.flows.recorder.job_seconds", lambda job: 1.5)
    data_dir = Path("/tmp/imgen-tui-keyframes-snapshots")
    shutil.rmtree(data_dir, ignore_errors=True)
    return make_app(
        None,
        demo=True,
        data_dir=data_dir,
        graphics="halfcell",
        demo_speed=0.01,
        demo_farm=FIXTURES / "one_node_farm.yaml",
    )


def test_timeline_with_three_keyframes_and_a_locked_still(
    snap_compare: SnapCompare, pinned_keyframes: ImgenApp
) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await node_up(pilot)
        screen = KeyframesScreen()
        await pilot.app.push_screen(screen)
        await until(pilot, lambda: screen.session is not None)
        for field in screen.query(Input):
            field.cursor_blink = False
        screen.query_one("#scene", Input).value = "a red fox in a snowy forest"
        keyframe = screen.query_one("#keyframe", Input)
        for text in ("asleep in the snow", "waking up", "running through the trees"):
            keyframe.focus()
            keyframe.value = text
            await pilot.press("enter")
        await pilot.press("escape", "comma", "n")
        session = screen.session
        assert session is not None
        await until(pilot, lambda: session.current is not None and session.current.done == 4)
        pictures = [w.query_one(".picture") for w in screen.query(ThumbCell) if w.display]
        await until(pilot, lambda: all(p.image is not None for p in pictures))  # type: ignore[attr-defined]
        await pilot.press("right", "L")
        stills = [slot.query_one(".still") for slot in screen.query(TimelineSlot)]
        await until(pilot, lambda: stills[1].image is not None)  # type: ignore[attr-defined]
        pilot.app.clear_notifications()  # toasts come and go with the machine's speed
        await pilot.pause(0.6)

    assert snap_compare(pinned_keyframes, terminal_size=SIZE, run_before=before)
