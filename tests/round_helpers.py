"""The demo farm without a terminal: an engine, and scheduler events applied to a flow's rounds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from imgen_tui.comfy.websocket import Backoff
from imgen_tui.flows.engine import Engine
from imgen_tui.flows.recorder import SessionRecorder
from imgen_tui.flows.round_store import RoundRunner
from imgen_tui.flows.rounds import RoundHistory
from imgen_tui.scheduler.events import JobEvent
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import load_demo_farm
from imgen_tui.store import SessionStore


@dataclass
class Follower:
    """Applies every scheduler event to the history it follows (as a screen does)."""

    history: RoundHistory
    events: list[JobEvent] = field(default_factory=list)

    async def run(self, scheduler: Scheduler) -> None:
        async for event in scheduler.subscribe():
            self.events.append(event)
            self.history.apply(event)


@asynccontextmanager
async def demo_engine(data_dir: Path, speed: float = 0.01) -> AsyncIterator[Engine]:
    engine = Engine(None, demo=True, data_dir=data_dir, demo_speed=speed)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


def parts(engine: Engine) -> tuple[SessionStore, Scheduler]:
    assert engine.store is not None and engine.scheduler is not None
    return engine.store, engine.scheduler


@asynccontextmanager
async def following(engine: Engine, history: RoundHistory) -> AsyncIterator[Follower]:
    _, scheduler = parts(engine)
    follower = Follower(history)
    task = asyncio.create_task(follower.run(scheduler))
    await asyncio.sleep(0)  # subscribed before anything is submitted
    try:
        yield follower
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def runner_for(engine: Engine, flow: str) -> RoundRunner:
    store, scheduler = parts(engine)
    return RoundRunner(store, scheduler, flow)


async def until(check: Callable[[], bool], seconds: float = 30) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("never got there")


@dataclass
class Farm:
    """The demo farm's nodes, a store and a scheduler tuned to notice trouble quickly."""

    sim: SimFarm
    store: SessionStore
    scheduler: Scheduler
    recorder: SessionRecorder

    def runner(self, flow: str) -> RoundRunner:
        return RoundRunner(self.store, self.scheduler, flow)


@asynccontextmanager
async def demo_farm(data_dir: Path, speed: float = 0.01) -> AsyncIterator[Farm]:
    sim = SimFarm.from_spec(load_demo_farm(), speed=speed, previews=False)
    await sim.start()
    store = await SessionStore.open(data_dir)
    recorder = SessionRecorder(store)
    scheduler = Scheduler(
        sim.config(),
        keeper=recorder,
        health_interval=0.2,
        retry_base=0.05,
        backoff=Backoff(first=0.05, cap=0.2),
    )
    await scheduler.start()
    try:
        yield Farm(sim, store, scheduler, recorder)
    finally:
        with contextlib.suppress(Exception):
            await scheduler.cancel_all()
        await scheduler.stop()
        await store.close()
        await sim.stop()
