"""Full garbage collections wait until the operator stops typing (imgen_tui.ui.collector).

`imgen-tui bench ui` found CPython's full collections (60-370 ms each, about
every 7 s while drafts stream) behind most of the key → repaint tail.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from imgen_tui.ui.app import make_app
from imgen_tui.ui.collector import NEVER, QuietCollector
from imgen_tui.ui.screens.home import HomeScreen
from tests.pilot_helpers import until

FIXTURES = Path(__file__).parent / "fixtures"


def _pile_up_cycles(count: int = 120_000) -> None:
    """Cyclic garbage: enough allocations for ten middle-generation collections and more."""
    for _ in range(count):
        loop: list[object] = []
        loop.append(loop)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_full_collections_wait_for_quiet_but_not_forever() -> None:
    clock = Clock()
    collector = QuietCollector(quiet=2.0, longest=60.0, clock=clock)
    before = gc.get_threshold()
    collector.start()
    try:
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[2] == NEVER
        _pile_up_cycles()
        assert gc.get_count()[2] >= before[2]
        for _ in range(20):  # typing: a key every half second for ten seconds
            clock.now += 0.5
            collector.touched()
            assert not collector.tick()
        clock.now += 2.0  # the operator stops
        assert collector.tick() and collector.full_collections == 1
        assert gc.get_count()[2] == 0
        clock.now += 5.0  # quiet, but nothing has piled up: no pause for nothing
        assert not collector.tick()
        for _ in range(130):  # typing on and on: one full collection a minute all the same
            clock.now += 0.5
            collector.touched()
            collector.tick()
        assert collector.full_collections == 2
    finally:
        collector.stop()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    assert not collector.tick()  # stopped: CPython's own schedule again


class Node:
    """A cycle's member that a weak reference can watch."""

    def __init__(self) -> None:
        self.me = self


def test_what_a_collection_leaves_is_frozen_and_a_quiet_sweep_frees_frozen_cycles() -> None:
    clock = Clock()
    collector = QuietCollector(quiet=2.0, longest=60.0, sweep=600.0, clock=clock)
    collector.start()
    try:
        holder = [Node()]
        watch = weakref.ref(holder[0])
        frozen = gc.get_freeze_count()
        _pile_up_cycles()
        clock.now += 3.0
        assert collector.tick()  # a quiet collection: the survivors join the frozen heap
        assert gc.get_freeze_count() > frozen
        holder.clear()  # now the cycle is garbage, but frozen: quiet collections skip it
        _pile_up_cycles()
        clock.now += 3.0
        assert collector.tick() and watch() is not None
        _pile_up_cycles()
        clock.now += 600.0  # a quiet moment ten minutes on: the whole heap, once
        assert collector.tick() and watch() is None
    finally:
        collector.stop()
    assert gc.get_freeze_count() == 0


async def test_the_app_defers_full_collections_while_keys_are_pressed(tmp_path: Path) -> None:
    before = gc.get_threshold()
    app = make_app(
        None,
        demo=True,
        data_dir=tmp_path,
        graphics="halfcell",
        demo_speed=0.01,
        demo_farm=FIXTURES / "one_node_farm.yaml",
    )
    app.collector = QuietCollector(quiet=0.6, longest=60.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, HomeScreen) and app.collector.running)
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[2] == NEVER
        for _ in range(12):  # keys every 0.1 s with garbage piling up: no full pause
            _pile_up_cycles(20_000)
            await pilot.press("down")
            await pilot.pause(0.1)
        assert gc.get_count()[2] >= before[2]
        assert app.collector.full_collections == 0
        await until(pilot, lambda: app.collector.full_collections == 1, seconds=5)
        assert gc.get_count()[2] < before[2]
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
