"""The Nodes and Queue screens tick twice a second; a tick while the app closes must be harmless."""

from __future__ import annotations

from pathlib import Path

from textual._context import active_app

from imgen_tui.ui.app import make_app
from imgen_tui.ui.screens.nodes import NodesScreen
from tests.pilot_helpers import until


async def test_a_tick_after_the_screens_are_gone_does_nothing(tmp_path: Path) -> None:
    app = make_app(None, demo=True, data_dir=tmp_path, graphics="halfcell", demo_speed=0.01)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, NodesScreen))
        screen = app.screen
        assert isinstance(screen, NodesScreen)
    # The app has exited and its screen stack is empty: a timer that fires now
    # (it raced the shutdown in CI once) must neither raise nor repaint. The
    # timer runs in the app's context; outside run_test that has to be set back.
    active_app.set(app)
    screen._tick()
