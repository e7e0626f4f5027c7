"""Learned speeds: a fixed cost per job and a per-step cost that scales with the pixels.

A node that spends a second on text encoding and VAE decoding per prompt and
0.04 s per step at 512x512 must not be taken for a node that needs 0.9 s per
step because its first jobs were small: the estimate for a 512 px job after
learning at 128 px, and the ETA shown while a job runs, come out right.
"""

from __future__ import annotations

import asyncio
import time

from imgen_tui.comfy.websocket import Backoff
from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.scheduler.events import JobDone, JobEvent, JobProgress
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.scheduler.speed import SpeedModel
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import SimNodeSpec
from tests.test_scheduler_farm import LIBRARY, SD15

PER_STEP, FIXED = 0.04, 1.0  # the simulated node's truth: s/step at 512 px, s/job
CPU_NODE = SimNodeSpec(
    id="gpu-cpu",
    tier="standard",
    capabilities=("sd15",),
    seconds_per_step={"sd15": PER_STEP},
    fixed_seconds=FIXED,
    models={"checkpoints": [SD15]},
)


def job(side: int, seed: int, steps: int = 20) -> JobSpec:
    graph = LIBRARY["sd15_txt2img"].render(
        {"prompt": f"a fox {seed}", "seed": seed, "steps": steps, "width": side, "height": side},
        DEFAULT_MODELS,
    )
    return JobSpec.from_graph(graph, "sd15")


def truth(side: int, steps: int = 20) -> float:
    return FIXED + PER_STEP * steps * side * side / (512 * 512)


async def test_small_jobs_teach_a_fixed_cost_not_a_slow_step() -> None:
    farm = SimFarm([CPU_NODE], farm_models=dict(DEFAULT_MODELS), previews=False)
    async with (
        farm,
        Scheduler(
            farm.config(),
            learn_speed=True,
            health_interval=0.2,
            backoff=Backoff(first=0.05, cap=0.2),
        ) as scheduler,
    ):
        events: list[tuple[float, JobEvent]] = []

        async def collect() -> None:
            async for event in scheduler.subscribe():
                events.append((time.monotonic(), event))

        collector = asyncio.create_task(collect())
        await asyncio.sleep(0.05)
        for seed in range(3):  # one at a time, as a user trying a 128 px workflow does
            scheduler.submit(job(128, seed))
            await asyncio.wait_for(scheduler.wait_idle(), 20)
        view = scheduler.nodes["gpu-cpu"].view(time.monotonic())
        learned = scheduler.nodes["gpu-cpu"].speed.seconds_per_step["sd15"]
        at_512 = view.run_seconds(job(512, 0))
        scheduler.submit(job(512, 99))
        await asyncio.wait_for(scheduler.wait_idle(), 20)
        await asyncio.sleep(0.05)
        collector.cancel()
    assert learned < PER_STEP * 2, f"learned {learned:.3f} s/step at 128 px"
    assert abs(at_512 - truth(512)) < 0.35 * truth(512), f"estimated {at_512:.2f} s"
    # The ETA shown early in the 512 px job is about the time it really had left.
    last = [e for _, e in events if isinstance(e, JobDone)][-1].job
    done_at = next(at for at, e in events if isinstance(e, JobDone) and e.job is last)
    shown = [(at, e) for at, e in events if isinstance(e, JobProgress) and e.job is last]
    at, early = next((at, e) for at, e in shown if e.step == 3)
    assert early.eta_seconds is not None
    left = done_at - at
    assert abs(early.eta_seconds - left) < 0.5 * left + 0.2, (early.eta_seconds, left)


def test_the_model_splits_fixed_and_per_step_costs_from_the_sampling_it_saw() -> None:
    model = SpeedModel()
    small = job(128, 1)
    # 20 steps at 128 px take 0.05 s of sampling (0.0025 s a step); the job took 1.05 s.
    model.observe(small, 1.05, sampling=(19, 19 * 0.0025), after=0.5)
    assert abs(model.seconds_per_step["sd15"] - PER_STEP) < 1e-6
    assert abs(model.fixed_seconds["sd15"] - FIXED) < 1e-6
    assert abs(model.run_seconds(job(512, 1)) - truth(512)) < 1e-6


def test_without_step_timings_the_known_fixed_cost_is_kept_out_of_the_step() -> None:
    model = SpeedModel({"sd15": 0.5})
    model.observe(job(128, 1), 1.05, sampling=(19, 19 * 0.0025), after=0.5)
    model.observe(job(128, 2), 1.05)  # its progress events were missed
    assert model.seconds_per_step["sd15"] < PER_STEP * 1.5
