"""Everything the app runs on, started and stopped together: farm, store, scheduler.

Kept out of the UI so the TUI, the benchmarks and the tests share one way of
wiring the scheduler to the store (through the recorder).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from imgen_tui.config import FarmConfig
from imgen_tui.flows.recorder import SessionRecorder
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import load_demo_farm
from imgen_tui.store import SessionStore


class Engine:
    def __init__(
        self,
        farm: FarmConfig | None,
        *,
        data_dir: Path | None = None,
        demo: bool = False,
        demo_speed: float = 1.0,
        demo_farm: Path | None = None,
    ) -> None:
        if farm is None and not demo:
            raise ValueError("an engine needs a farm config or demo mode")
        self._farm = farm
        self.data_dir = data_dir
        self.demo, self.demo_speed, self.demo_farm = demo, demo_speed, demo_farm
        self.sim_farm: SimFarm | None = None
        self.store: SessionStore | None = None
        self.scheduler: Scheduler | None = None
        self.recorder: SessionRecorder | None = None

    @property
    def farm(self) -> FarmConfig:
        assert self._farm is not None, "start() the engine first"
        return self._farm

    async def start(self) -> None:
        if self.demo:
            self.sim_farm = SimFarm.from_spec(load_demo_farm(self.demo_farm), speed=self.demo_speed)
            await self.sim_farm.start()
            self._farm = self.sim_farm.config()
        self.store = await SessionStore.open(self.data_dir)
        self.recorder = SessionRecorder(self.store)
        self.scheduler = Scheduler(self.farm, keeper=self.recorder)
        await self.scheduler.start()

    async def stop(self, *, cancel_jobs: bool = True) -> None:
        """`cancel_jobs=False`: the nodes go on with them, and the next start collects them."""
        if self.scheduler is not None:
            if cancel_jobs:
                with contextlib.suppress(Exception):
                    await self.scheduler.cancel_all()
            await self.scheduler.stop()
        if self.recorder is not None:
            await self.recorder.drain()
        if self.store is not None:
            await self.store.close()
        if self.sim_farm is not None:
            await self.sim_farm.stop()
