"""How the screens look, as SVG snapshots (pytest-textual-snapshot).

Everything that would differ between runs is pinned: one simulated node (so
every job goes to the same place in the same order), seeded random numbers
for the funnel's seeds, counted UUIDs for session and job ids, a stopped clock
for the store's timestamps and each image's seconds, the half-cell renderer, no cursor blink and a
fixed terminal size. "In progress" is a node that hangs on its first job.

Update after a deliberate change of look with `pytest --snapshot-update`.
"""

from __future__ import annotations

import itertools
import random
import shutil
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select

from imgen_tui.ui.app import ImgenApp, make_app
from imgen_tui.ui.screens.funnel import FunnelScreen
from imgen_tui.ui.screens.home import HomeScreen
from imgen_tui.ui.screens.lightbox import LightboxScreen
from imgen_tui.ui.screens.nodes import NodesScreen
from imgen_tui.ui.screens.queue import QueueScreen
from imgen_tui.ui.screens.refine import RefineScreen
from imgen_tui.ui.widgets.grid import ThumbCell
from tests.pilot_helpers import start_drafts, until

FIXTURES = Path(__file__).parent / "fixtures"
SIZE = (140, 42)
Before = Callable[[Pilot[Any]], Awaitable[None]]
SnapCompare = Callable[..., bool]


class _StoppedClock:
    """The store's `time` module, with a clock that never moves."""

    @staticmethod
    def time() -> float:
        return 1_790_000_000.0


class _StoppedDashboardClock:
    """The GPU dashboard's clocks, stopped: "up for 0 s", no busy time, bars at the end."""

    @staticmethod
    def time() -> float:
        return 1_790_000_000.0

    @staticmethod
    def monotonic() -> float:
        return 1_000_000.0


def _spread(number: int) -> int:
    """A counted UUID whose first hex digits differ too (screens show id prefixes)."""
    return (number * 0x1F3D5B79 % 2**32) << 96 | number


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ImgenApp:
    counter = itertools.count(1)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=_spread(next(counter))))
    real_random = random.Random
    monkeypatch.setattr(
        "imgen_tui.flows.funnel.random.Random",
        lambda seed=None: real_random(20261121 if seed is None else seed),
    )
    monkeypatch.setattr("imgen_tui.store.database.time", _StoppedClock)
    monkeypatch.setattr("imgen_tui.scheduler.farm_stats.time", _StoppedDashboardClock)
    monkeypatch.setattr("imgen_tui.ui.screens.nodes.time", _StoppedDashboardClock)
    monkeypatch.setattr("imgen_tui.flows.recorder.job_seconds", lambda job: 1.5)
    data_dir = Path("/tmp/imgen-tui-snapshots")  # the same path every run: the lightbox shows it
    shutil.rmtree(data_dir, ignore_errors=True)
    return make_app(
        None,
        demo=True,
        data_dir=data_dir,
        graphics="halfcell",
        demo_speed=0.01,
        demo_farm=FIXTURES / "one_node_farm.yaml",
    )


async def node_up(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, ImgenApp)
    await until(pilot, lambda: isinstance(app.screen, HomeScreen))
    scheduler = app.engine.scheduler
    assert scheduler is not None
    await until(pilot, lambda: all(n.state == "up" for n in scheduler.nodes.values()))
    await pilot.pause(0.6)  # the node strip refreshes twice a second


async def drafts(pilot: Pilot[Any], *, hang: bool) -> FunnelScreen:
    app = pilot.app
    assert isinstance(app, ImgenApp) and app.engine.sim_farm is not None
    await node_up(pilot)
    if hang:
        app.engine.sim_farm.nodes[0].faults.hang = 1
    screen = await start_drafts(pilot)
    assert screen.funnel is not None and screen.funnel.current is not None
    cells = screen.funnel.current.cells
    if hang:
        await until(pilot, lambda: cells[0].state == "running" and cells[1].node_id is not None)
    else:
        await until(pilot, lambda: all(cell.state == "done" for cell in cells))
        pictures = [widget.query_one(".picture") for widget in screen.query(ThumbCell)]
        await until(pilot, lambda: all(p.image is not None for p in pictures))  # type: ignore[attr-defined]
    await pilot.pause(0.6)
    return screen


def test_home(snap_compare: SnapCompare, pinned: ImgenApp) -> None:
    assert snap_compare(pinned, terminal_size=SIZE, run_before=node_up)


def test_funnel_drafts_in_progress(snap_compare: SnapCompare, pinned: ImgenApp) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await drafts(pilot, hang=True)

    assert snap_compare(pinned, terminal_size=SIZE, run_before=before)


def test_funnel_drafts_done_with_a_pick(snap_compare: SnapCompare, pinned: ImgenApp) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await drafts(pilot, hang=False)
        await pilot.press("right", "space", "right")
        await pilot.pause(0.3)

    assert snap_compare(pinned, terminal_size=SIZE, run_before=before)


def test_lightbox(snap_compare: SnapCompare, pinned: ImgenApp) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await drafts(pilot, hang=False)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, LightboxScreen))
        picture = pilot.app.screen.query_one("#large")
        await until(pilot, lambda: picture.image is not None)  # type: ignore[attr-defined]
        await pilot.pause(0.3)

    assert snap_compare(pinned, terminal_size=SIZE, run_before=before)


@pytest.mark.parametrize(("key", "screen_class"), [("f2", NodesScreen), ("f3", QueueScreen)])
def test_nodes_and_queue(
    snap_compare: SnapCompare, pinned: ImgenApp, key: str, screen_class: type[Any]
) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await drafts(pilot, hang=True)
        await pilot.press(key)
        await until(pilot, lambda: isinstance(pilot.app.screen, screen_class))
        await pilot.pause(0.6)

    assert snap_compare(pinned, terminal_size=SIZE, run_before=before)


def test_refine_panel_after_the_offline_rules(snap_compare: SnapCompare, pinned: ImgenApp) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await drafts(pilot, hang=False)
        await pilot.press("space", "right", "x", "r")
        await until(pilot, lambda: isinstance(pilot.app.screen, RefineScreen))
        panel = pilot.app.screen
        for field in panel.query(Input):
            field.cursor_blink = False
        panel.query_one(Select).value = "minimal"
        panel.query_one("#refine-feedback", Input).value = "no snow, more fox, sing"
        await pilot.press("enter")
        result = panel.query_one("#refine-prompt", Input)
        await until(pilot, lambda: not result.disabled)
        await pilot.pause(0.3)

    assert snap_compare(pinned, terminal_size=SIZE, run_before=before)
