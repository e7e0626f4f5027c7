"""The scheduler against simulated nodes over real sockets: delivery, failures, exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from imgen_tui.comfy.websocket import Backoff
from imgen_tui.config import DEFAULT_MODELS, FarmConfig, Tier
from imgen_tui.graphs import load_library
from imgen_tui.locations import bundled_dir
from imgen_tui.scheduler.events import (
    JobDone,
    JobEvent,
    JobFailed,
    JobProgress,
    JobRetrying,
    NodeStateChanged,
)
from imgen_tui.scheduler.jobs import JobSpec, JobState, Priority
from imgen_tui.scheduler.runtime import NodeRuntime
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import SimNodeSpec

LIBRARY = load_library([bundled_dir("workflows")])


def node(
    node_id: str, tier: Tier, caps: tuple[str, ...], per_step: float, checkpoints: list[str]
) -> SimNodeSpec:
    return SimNodeSpec(
        id=node_id,
        tier=tier,
        capabilities=caps,
        max_resolution=1024 if "sdxl" in caps else 512,
        seconds_per_step={"sd15": per_step, "sdxl": per_step * 4},
        load_seconds=0.0,
        models={"checkpoints": checkpoints},
    )


SD15, SDXL = DEFAULT_MODELS["sd15"], DEFAULT_MODELS["sdxl"]
FARM = [
    node("gpu-premium", "premium", ("sd15", "sdxl"), 0.004, [SD15, SDXL]),
    node("gpu-quality", "quality", ("sd15", "sdxl"), 0.006, [SD15, SDXL]),
    node(
        "gpu-standard", "standard", ("sd15", "sdxl"), 0.008, [SD15]
    ),  # declares sdxl, lacks the model
    node("gpu-draft", "draft", ("sd15",), 0.015, [SD15]),
]


@pytest.fixture
async def sim_farm() -> AsyncIterator[SimFarm]:
    farm = SimFarm(FARM, farm_models=dict(DEFAULT_MODELS), previews=False)
    await farm.start()
    yield farm
    await farm.stop()


def farm_config(sim_farm: SimFarm) -> FarmConfig:
    return FarmConfig.model_validate(sim_farm.farm_config())


def drafts(count: int, *, steps: int = 10, first_seed: int = 1, **options: object) -> list[JobSpec]:
    template = LIBRARY["sd15_txt2img"]
    return [
        JobSpec.from_graph(
            template.render(
                {"prompt": "a red fox", "seed": first_seed + i, "steps": steps}, DEFAULT_MODELS
            ),
            "sd15",
            **options,
        )
        for i in range(count)
    ]


async def run_all(
    scheduler: Scheduler, specs: list[JobSpec], time_limit: float = 30
) -> list[JobEvent]:
    events: list[JobEvent] = []
    subscription = scheduler.subscribe()

    async def collect() -> None:
        async for event in subscription:
            events.append(event)

    collector = asyncio.create_task(collect())
    scheduler.submit_many(specs)
    await asyncio.wait_for(scheduler.wait_idle(), time_limit)
    await asyncio.sleep(0.05)
    collector.cancel()
    return events


def make_scheduler(sim_farm: SimFarm, **options: Any) -> Scheduler:
    return Scheduler(
        farm_config(sim_farm),
        health_interval=0.2,
        retry_base=0.05,
        backoff=Backoff(first=0.05, cap=0.2),
        **options,
    )


async def test_twenty_drafts_are_delivered_once_each_over_every_idle_gpu(sim_farm: SimFarm) -> None:
    async with make_scheduler(sim_farm) as scheduler:
        events = await run_all(scheduler, drafts(20))
    done = [e for e in events if isinstance(e, JobDone)]
    assert len(done) == 20 and len({e.job.job_id for e in done}) == 20
    assert all(len(e.images) == 1 for e in done)
    assert len({e.node_id for e in done}) == 4  # all idle capable GPUs took part


async def test_a_node_killed_mid_batch_loses_nothing_and_is_shown_down(sim_farm: SimFarm) -> None:
    async with make_scheduler(sim_farm) as scheduler:
        events: list[JobEvent] = []
        subscription = scheduler.subscribe()
        collector = asyncio.create_task(_collect(subscription, events))
        scheduler.submit_many(drafts(20, steps=20))
        for _ in range(1000):
            if any(isinstance(e, JobDone) for e in events):
                break
            await asyncio.sleep(0.01)
        await sim_farm.node("gpu-quality").kill()
        await asyncio.wait_for(scheduler.wait_idle(), 30)
        await asyncio.sleep(0.05)
        collector.cancel()
        assert scheduler.nodes["gpu-quality"].state == "down"
    done = Counter(e.job.job_id for e in events if isinstance(e, JobDone))
    assert len(done) == 20 and set(done.values()) == {1}
    assert any(
        isinstance(e, NodeStateChanged) and e.node_id == "gpu-quality" and e.state == "down"
        for e in events
    )


async def test_a_missing_model_is_rerouted_or_fails_with_the_reason(sim_farm: SimFarm) -> None:
    template = LIBRARY["sdxl_txt2img"]
    sdxl = [
        JobSpec.from_graph(
            template.render({"prompt": "x", "seed": s, "steps": 4}, DEFAULT_MODELS), "sdxl"
        )
        for s in range(6)
    ]
    missing = template.render({"prompt": "x", "steps": 4}, {"sdxl": "not-anywhere.safetensors"})
    hopeless = JobSpec.from_graph(missing, "sdxl")
    async with make_scheduler(sim_farm) as scheduler:
        events = await run_all(scheduler, [*sdxl, hopeless])
    done = [e for e in events if isinstance(e, JobDone)]
    assert len(done) == 6 and {e.node_id for e in done} <= {"gpu-premium", "gpu-quality"}
    (failed,) = [e for e in events if isinstance(e, JobFailed)]
    assert failed.job.job_id == hopeless.job_id
    assert "not-anywhere.safetensors" in failed.reason


async def test_a_hanging_node_times_out_and_the_job_is_retried_elsewhere(sim_farm: SimFarm) -> None:
    sim_farm.node("gpu-premium").faults.hang = 1
    async with make_scheduler(sim_farm) as scheduler:
        events = await run_all(scheduler, drafts(1, time_limit=0.5))
    (done,) = [e for e in events if isinstance(e, JobDone)]
    assert done.node_id != "gpu-premium" and done.job.attempts == 2


async def test_a_node_down_at_start_is_picked_up_when_it_comes_back(sim_farm: SimFarm) -> None:
    draft_node = sim_farm.node("gpu-draft")
    await draft_node.kill()
    async with make_scheduler(sim_farm) as scheduler:
        runtime = scheduler.nodes["gpu-draft"]
        assert state_of(runtime) == "down"
        events = await run_all(scheduler, drafts(4))
        assert len([e for e in events if isinstance(e, JobDone)]) == 4
        await draft_node.revive()
        for _ in range(100):
            if state_of(runtime) == "up" and runtime.stream.connected:
                break
            await asyncio.sleep(0.05)
        assert state_of(runtime) == "up"
        later = await run_all(scheduler, drafts(12, first_seed=100))
        assert "gpu-draft" in {e.node_id for e in later if isinstance(e, JobDone)}


async def test_the_websocket_dropping_as_a_job_ends_still_delivers_it(sim_farm: SimFarm) -> None:
    only = SimFarm(
        [FARM[0].model_copy(update={"seconds_per_step": {"sd15": 0.02}})],
        farm_models=dict(DEFAULT_MODELS),
        previews=False,
    )
    async with only, make_scheduler(only) as scheduler:
        events: list[JobEvent] = []
        collector = asyncio.create_task(_collect(scheduler.subscribe(), events))
        scheduler.submit_many(drafts(2, steps=10))
        await asyncio.sleep(0.15)
        await only.nodes[0].drop_websockets()
        await asyncio.wait_for(scheduler.wait_idle(), 20)
        await asyncio.sleep(0.05)
        collector.cancel()
    done = Counter(e.job.job_id for e in events if isinstance(e, JobDone))
    assert len(done) == 2 and set(done.values()) == {1}


async def test_other_clients_prompts_count_as_load_and_are_never_touched(sim_farm: SimFarm) -> None:
    from imgen_tui.comfy import ComfyClient

    target = sim_farm.node("gpu-draft")
    target.faults.hang = 1
    async with ComfyClient(target.url, name="someone-else") as other:
        theirs = (
            await other.submit(LIBRARY["sd15_txt2img"].render({"prompt": "theirs"}, DEFAULT_MODELS))
        ).prompt_id
        async with make_scheduler(sim_farm) as scheduler:
            await asyncio.sleep(0.1)
            events = await run_all(scheduler, drafts(8))
            runtime = scheduler.nodes["gpu-draft"]
            assert runtime.others_queued() >= 1
            assert theirs not in runtime.in_flight
        assert all(e.job.prompt_id != theirs for e in events if isinstance(e, JobDone))
        assert await other.prompt_state(theirs) == "running"  # nobody interrupted it
        await other.interrupt(theirs)


async def test_cancel_a_round_stops_only_our_prompts(sim_farm: SimFarm) -> None:
    async with make_scheduler(sim_farm) as scheduler:
        for _ in range(100):
            if all(runtime.can_take() for runtime in scheduler.nodes.values()):
                break
            await asyncio.sleep(0.02)
        jobs = scheduler.submit_many(drafts(12, steps=40, round_id="r1"))
        await asyncio.sleep(0.1)
        await scheduler.cancel_round("r1")
        await asyncio.wait_for(scheduler.wait_idle(), 10)
        states = Counter(job.state for job in jobs)
        for _ in range(200):  # an interrupt lands at the next sampler step
            if all(sim_node.queue_depth == 0 for sim_node in sim_farm.nodes):
                break
            await asyncio.sleep(0.01)
    assert states[JobState.CANCELLED] + states[JobState.DONE] == 12
    assert states[JobState.CANCELLED] > 0
    assert [sim_node.queue_depth for sim_node in sim_farm.nodes] == [0, 0, 0, 0]


def state_of(runtime: NodeRuntime) -> str:
    return runtime.state


async def _collect(subscription: AsyncIterator[JobEvent], events: list[JobEvent]) -> None:
    async for event in subscription:
        events.append(event)


async def test_interactive_work_overtakes_background_batches() -> None:
    slow = SimFarm(
        [node("gpu-only", "standard", ("sd15",), 0.01, [SD15])],
        farm_models=dict(DEFAULT_MODELS),
        previews=False,
    )
    async with slow, make_scheduler(slow, prefetch=0) as scheduler:
        events: list[JobEvent] = []
        collector = asyncio.create_task(_collect(scheduler.subscribe(), events))
        for _ in range(100):
            if scheduler.nodes["gpu-only"].can_take():
                break
            await asyncio.sleep(0.02)
        batch = scheduler.submit_many(drafts(5, priority=Priority.BACKGROUND))
        urgent = scheduler.submit(drafts(1, first_seed=50)[0])
        await asyncio.wait_for(scheduler.wait_idle(), 20)
        await asyncio.sleep(0.05)
        collector.cancel()
    order = [e.job.job_id for e in events if isinstance(e, JobDone)]
    assert order.index(urgent.job_id) <= 1  # at most the one already running goes first
    assert len(order) == 6 and {job.job_id for job in batch} < set(order)


async def test_a_reader_that_falls_behind_gets_progress_coalesced_and_every_outcome(
    sim_farm: SimFarm,
) -> None:
    async with make_scheduler(sim_farm) as scheduler:
        keeping_up = scheduler.subscribe()
        live: list[JobEvent] = []
        collector = asyncio.create_task(_collect(keeping_up, live))
        behind = scheduler.subscribe()  # nobody reads this one until the end
        first = asyncio.ensure_future(anext(behind))  # subscribes before any event is sent
        await asyncio.sleep(0)
        jobs = scheduler.submit_many(drafts(12, steps=15))
        await asyncio.wait_for(scheduler.wait_idle(), 30)
        await asyncio.sleep(0.05)
        collector.cancel()
        late = [await first]
        while True:
            try:
                late.append(await asyncio.wait_for(anext(behind), 0.2))
            except TimeoutError:
                break
    for job in jobs:
        mine = [type(e).__name__ for e in late if getattr(e, "job", None) is job]
        # every lifecycle event, in order; the 15 progress steps arrive as the latest one
        assert mine == ["JobQueued", "JobAssigned", "JobStarted", "JobProgress", "JobDone"]
        (progress,) = [e for e in late if isinstance(e, JobProgress) and e.job is job]
        assert progress.step == progress.total == 15
        steps = [e.step for e in live if isinstance(e, JobProgress) and e.job is job]
        assert len(steps) > 1 and steps == sorted(steps)  # a reader keeping up sees them all


async def test_a_free_fast_node_takes_back_a_prompt_still_queued_on_a_slow_one() -> None:
    # Speeds unknown at the start, so the four jobs are shared two and two; the slow
    # node's second prompt waits in its queue while the fast node has finished both.
    pair = SimFarm(
        [
            node("gpu-fast", "premium", ("sd15",), 0.01, [SD15]),
            node("gpu-slow", "draft", ("sd15",), 0.15, [SD15]),
        ],
        farm_models=dict(DEFAULT_MODELS),
        previews=False,
    )
    async with pair, make_scheduler(pair, learn_speed=True) as scheduler:
        for _ in range(100):
            if all(runtime.can_take() for runtime in scheduler.nodes.values()):
                break
            await asyncio.sleep(0.02)
        events = await run_all(scheduler, drafts(4))
        assert scheduler.taken_back == 1
        assert len(pair.node("gpu-slow").timeline) == 1  # its queued prompt never ran there
    done = {e.job.job_id: e.node_id for e in events if isinstance(e, JobDone)}
    assert len(done) == 4 and Counter(done.values()) == {"gpu-fast": 3, "gpu-slow": 1}
    (moved,) = [e for e in events if isinstance(e, JobRetrying)]
    assert moved.node_id == "gpu-slow" and "taken back from gpu-slow" in moved.reason
    assert done[moved.job.job_id] == "gpu-fast" and moved.job.attempts == 1
    assert sum(isinstance(e, JobDone) for e in events) == 4  # exactly once
