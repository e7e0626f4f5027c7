"""A screen's repaint timer: a frame waits for the cap, one interval, and no more.

The timers run on a clock the test moves by hand, so the figures are exact and
the test takes no time: each resume is a change on screen, each tick a frame,
and the callback pauses the timer as a screen's repaint does.
"""

from __future__ import annotations

import asyncio
import itertools
import types
from typing import Any

import pytest
import textual.timer
from textual._context import active_app
from textual.command import CommandPalette
from textual.timer import Timer

from imgen_tui.ui.app import make_app
from imgen_tui.ui.frame_pacing import FrameTimer, pace_screen_repaints
from imgen_tui.ui.screens.funnel import FunnelScreen
from imgen_tui.ui.screens.home import HomeScreen
from tests.pilot_helpers import until

INTERVAL = 1 / 120  # TEXTUAL_FPS=120, as imgen_tui.ui sets it


class HandClock:
    """Time that moves only when a timer sleeps or the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class Owner:
    """What a timer keeps a weak reference to."""


class QuietApp:
    """What a timer's tick asks of the running app: that it is not exiting."""

    _exit = False
    features: frozenset[str] = frozenset()

    def _handle_exception(self, error: Exception) -> None:
        raise error


def timer_on(clock: HandClock, kind: type[Timer], monkeypatch: pytest.MonkeyPatch) -> type[Timer]:
    if kind is FrameTimer:

        class Paced(FrameTimer):
            pass

        Paced.clock = staticmethod(clock)
        Paced.sleep = staticmethod(clock.sleep)
        return Paced
    monkeypatch.setattr(textual.timer, "_time", types.SimpleNamespace(get_time=clock))
    monkeypatch.setattr(textual.timer, "sleep", clock.sleep)
    return Timer


async def frames_for(
    clock: HandClock, kind: type[Timer], changes: list[float], monkeypatch: pytest.MonkeyPatch
) -> list[float]:
    """Resume the paused timer at each of these times; when each frame went out."""
    frames: list[float] = []
    timer_class = timer_on(clock, kind, monkeypatch)
    owner: Any = Owner()  # a Textual MessageTarget in the app; only weakly kept

    def frame() -> None:
        timer.pause()
        frames.append(clock.now)

    timer = timer_class(owner, INTERVAL, callback=frame, pause=True)
    token = active_app.set(QuietApp())  # type: ignore[arg-type]
    try:
        timer._start()
        for at in changes:
            clock.now = max(clock.now, at)
            before = len(frames)
            timer.resume()
            for _ in range(1000):
                if len(frames) > before:
                    break
                await asyncio.sleep(0)
        timer.stop()
    finally:
        active_app.reset(token)
    return frames


@pytest.mark.parametrize(
    "kind",
    [
        FrameTimer,
        pytest.param(
            Timer,
            marks=pytest.mark.xfail(
                strict=True, reason="Textual 8's skip puts the next tick two slots ahead"
            ),
        ),
    ],
)
async def test_the_frame_after_a_late_frame_waits_one_interval_at_most(
    kind: type[Timer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idle, then a change (a late frame), then a key 2 ms after it: its frame is due at +I.

    Textual's own timer gets this wrong (strict xfail: if a Textual release
    fixes it, this fails and `frame_pacing` can go).
    """
    clock = HandClock()
    frames = await frames_for(clock, kind, [100.0, 100.3025, 100.3045], monkeypatch)
    assert len(frames) == 3
    assert frames[2] - frames[1] <= INTERVAL + 1e-9


async def test_a_change_after_a_quiet_spell_is_painted_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = HandClock()
    frames = await frames_for(clock, FrameTimer, [100.0, 100.3, 101.0], monkeypatch)
    assert frames == [100.0, 100.3, 101.0]


async def test_frames_stay_capped_at_one_an_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Changes faster than the cap (every 1 ms, a burst of previews): a frame an interval."""
    clock = HandClock()
    changes = [100.0 + step / 1000 for step in range(40)]
    frames = await frames_for(clock, FrameTimer, changes, monkeypatch)
    gaps = [later - earlier for earlier, later in itertools.pairwise(frames)]
    assert gaps and all(gap >= INTERVAL - 1e-9 for gap in gaps)
    assert all(gap <= INTERVAL + 1e-9 for gap in gaps)  # and never a slot later than due


async def test_every_screen_of_the_app_paints_from_a_frame_timer(tmp_path: Any) -> None:
    """Home, the funnel, and a screen of Textual's own (the command palette), and back."""
    app = make_app(None, demo=True, data_dir=tmp_path, graphics="halfcell", demo_speed=0.01)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        home = app.screen
        home_timer = home._update_timer
        assert isinstance(home_timer, FrameTimer)
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, FunnelScreen))
        assert isinstance(app.screen._update_timer, FrameTimer)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        assert isinstance(app.screen._update_timer, FrameTimer)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, FunnelScreen))
        await pilot.press("escape", "q")  # to the grid, and leave
        await until(pilot, lambda: app.screen is home)
        assert home._update_timer is home_timer  # made once per screen, still running
        assert home_timer._task is not None and not home_timer._task.done()


def test_pacing_is_installed_once() -> None:
    pace_screen_repaints()
    from textual.screen import Screen

    installed = Screen.__dict__["_update_timer"]
    pace_screen_repaints()
    assert Screen.__dict__["_update_timer"] is installed
