"""The scheduler when nodes fail for good, fail again and again, or are all gone.

Every case is a run over real loopback sockets against simulated nodes (or a
small aiohttp app that answers what the test chooses): a job that fails on
every node ends with ComfyUI's reason instead of waiting forever, tiers are
honoured, a retry goes to another node, a retried job gets a fresh time limit,
and a farm with no node up is named and given up on.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from imgen_tui.comfy.websocket import Backoff
from imgen_tui.config import DEFAULT_MODELS, FarmConfig, Tier
from imgen_tui.flows.recorder import SessionRecorder
from imgen_tui.scheduler.events import (
    JobAssigned,
    JobDone,
    JobEvent,
    JobFailed,
    JobRetrying,
    NodeStateChanged,
)
from imgen_tui.scheduler.jobs import Job, JobSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import SimNodeSpec
from imgen_tui.store import SessionStore
from tests.loopback import serve
from tests.test_scheduler_farm import LIBRARY, SD15, drafts

BROKEN = "broken.safetensors"
HEADER_TOO_LARGE = "Error while deserializing header: header too large"


def sim_node(node_id: str, tier: Tier, per_step: float, **update: Any) -> SimNodeSpec:
    return SimNodeSpec(
        id=node_id,
        tier=tier,
        capabilities=("sd15",),
        max_resolution=1024,
        seconds_per_step={"sd15": per_step},
        models={"checkpoints": [SD15, BROKEN]},
        **update,
    )


def make_scheduler(farm: FarmConfig, **options: Any) -> Scheduler:
    return Scheduler(
        farm,
        health_interval=0.2,
        retry_base=0.05,
        backoff=Backoff(first=0.05, cap=0.2),
        **options,
    )


async def wait_until_free(scheduler: Scheduler) -> None:
    for _ in range(200):
        if all(runtime.can_take() for runtime in scheduler.nodes.values()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the nodes never became free")


async def run_all(
    scheduler: Scheduler, specs: list[JobSpec], limit: float = 20
) -> tuple[list[JobEvent], float]:
    """Every event until the scheduler is idle; fails the test (no hang) past `limit`."""
    events: list[JobEvent] = []
    subscription = scheduler.subscribe()

    async def collect() -> None:
        async for event in subscription:
            events.append(event)

    collector = asyncio.create_task(collect())
    started = time.monotonic()
    scheduler.submit_many(specs)
    try:
        await asyncio.wait_for(scheduler.wait_idle(), limit)
    finally:
        await asyncio.sleep(0.05)
        collector.cancel()
    return events, time.monotonic() - started


def broken_checkpoint_jobs(count: int) -> list[JobSpec]:
    template = LIBRARY["sd15_txt2img"]
    return [
        JobSpec.from_graph(
            template.render({"prompt": "a fox", "seed": i, "checkpoint": BROKEN}, DEFAULT_MODELS),
            "sd15",
        )
        for i in range(count)
    ]


# -- 1: a job that fails on every node ends, with ComfyUI's reason ----------------------------


@pytest.mark.parametrize("count", [2, 12])
async def test_a_job_that_fails_on_every_node_fails_with_comfyuis_reason(count: int) -> None:
    farm = SimFarm(
        [sim_node("gpu-a", "premium", 0.001), sim_node("gpu-b", "quality", 0.001)],
        farm_models=dict(DEFAULT_MODELS),
        previews=False,
    )
    async with farm, make_scheduler(farm.config()) as scheduler:
        events, _ = await run_all(scheduler, broken_checkpoint_jobs(count))
    failed = [e for e in events if isinstance(e, JobFailed)]
    assert len(failed) == count and not any(isinstance(e, JobDone) for e in events)
    for event in failed:
        assert HEADER_TOO_LARGE in event.reason, event.reason
        assert "CheckpointLoaderSimple" in event.reason


# -- 2: quality and final work prefers the higher tiers -----------------------------------------


def tiered_farm(quality_per_step: float) -> SimFarm:
    # The quality node is listed first and is as fast or faster: only the tier can send
    # premium work to the premium node.
    return SimFarm(
        [
            sim_node("gpu-quality", "quality", quality_per_step),
            sim_node("gpu-premium", "premium", 0.01),
        ],
        farm_models=dict(DEFAULT_MODELS),
        previews=False,
    )


@pytest.mark.parametrize("quality_per_step", [0.01, 0.008])
async def test_premium_work_runs_on_the_idle_premium_node(quality_per_step: float) -> None:
    farm = tiered_farm(quality_per_step)
    async with farm, make_scheduler(farm.config()) as scheduler:
        await wait_until_free(scheduler)
        events, _ = await run_all(scheduler, drafts(1, steps=5, min_tier="premium"))
    (done,) = [e for e in events if isinstance(e, JobDone)]
    assert done.node_id == "gpu-premium"


async def test_premium_work_overflows_down_only_when_the_premium_node_is_busy() -> None:
    farm = tiered_farm(0.01)
    async with farm, make_scheduler(farm.config()) as scheduler:
        await wait_until_free(scheduler)
        events, _ = await run_all(scheduler, drafts(12, steps=5, min_tier="premium"))
    done = Counter(e.node_id for e in events if isinstance(e, JobDone))
    first = next(e for e in events if isinstance(e, JobAssigned))
    assert first.node_id == "gpu-premium"
    assert sum(done.values()) == 12
    assert done["gpu-premium"] > done["gpu-quality"] > 0  # it overflowed, but less


async def test_draft_work_still_goes_to_any_free_node() -> None:
    farm = tiered_farm(0.01)
    async with farm, make_scheduler(farm.config()) as scheduler:
        await wait_until_free(scheduler)
        events, _ = await run_all(scheduler, drafts(12, steps=5))
    done = Counter(e.node_id for e in events if isinstance(e, JobDone))
    assert sum(done.values()) == 12 and min(done["gpu-premium"], done["gpu-quality"]) >= 3


# -- 13: a retry goes to another node; a non-retryable error ends the job -----------------------


def pair_with_a_flaky_fast_node(**faults: int) -> SimFarm:
    farm = SimFarm(
        [sim_node("gpu-flaky", "premium", 0.002), sim_node("gpu-steady", "standard", 0.02)],
        farm_models=dict(DEFAULT_MODELS),
        previews=False,
    )
    for name, value in faults.items():
        setattr(farm.node("gpu-flaky").faults, name, value)
    return farm


async def test_a_failed_post_is_retried_on_another_node() -> None:
    farm = pair_with_a_flaky_fast_node(reject=3)  # HTTP 500 on the next three POSTs
    async with farm, make_scheduler(farm.config()) as scheduler:
        await wait_until_free(scheduler)
        events, _ = await run_all(scheduler, drafts(1, steps=5))
    (done,) = [e for e in events if isinstance(e, JobDone)]
    assert done.node_id == "gpu-steady" and done.job.attempts == 2
    assert not any(isinstance(e, JobFailed) for e in events)


async def test_a_failed_download_is_retried_on_another_node(tmp_path: Path) -> None:
    farm = pair_with_a_flaky_fast_node(truncate=3)  # the next three downloads are cut short
    store = await SessionStore.open(tmp_path / "data")
    specs = drafts(1, steps=5)
    session = await store.create_session("batch", "test")
    round_info = await store.add_round(session.id, "drafts")
    await store.add_jobs(round_info.id, [(spec.job_id, spec.to_json()) for spec in specs])
    try:
        async with farm, make_scheduler(farm.config(), keeper=SessionRecorder(store)) as scheduler:
            await wait_until_free(scheduler)
            events, _ = await run_all(scheduler, specs)
    finally:
        await store.close()
    (done,) = [e for e in events if isinstance(e, JobDone)]
    assert done.node_id == "gpu-steady" and done.job.attempts == 2


async def test_a_retry_stays_on_the_only_node_that_can_run_it() -> None:
    farm = SimFarm([sim_node("gpu-only", "standard", 0.002)], farm_models=dict(DEFAULT_MODELS))
    farm.node("gpu-only").faults.reject = 1
    async with farm, make_scheduler(farm.config()) as scheduler:
        await wait_until_free(scheduler)
        events, _ = await run_all(scheduler, drafts(1, steps=5))
    (done,) = [e for e in events if isinstance(e, JobDone)]
    assert done.node_id == "gpu-only" and done.job.attempts == 2


async def test_a_download_over_the_cap_fails_at_once_with_the_reason(tmp_path: Path) -> None:
    farm = pair_with_a_flaky_fast_node()
    store = await SessionStore.open(tmp_path / "data")
    specs = drafts(1, steps=5)
    session = await store.create_session("batch", "test")
    round_info = await store.add_round(session.id, "drafts")
    await store.add_jobs(round_info.id, [(spec.job_id, spec.to_json()) for spec in specs])
    tiny_cap = SessionRecorder(store, download_cap=100)  # every PNG is bigger than 100 bytes
    try:
        async with farm, make_scheduler(farm.config(), keeper=tiny_cap) as scheduler:
            await wait_until_free(scheduler)
            events, _ = await run_all(scheduler, specs)
    finally:
        await store.close()
    (failed,) = [e for e in events if isinstance(e, JobFailed)]
    assert failed.job.attempts == 1, failed.reason
    assert "gave up" not in failed.reason
    assert not any(isinstance(e, JobRetrying) for e in events)


# -- 14: a retried job gets a fresh time limit on its next node ----------------------------------


async def test_a_retried_job_is_not_timed_out_at_once_on_its_next_node() -> None:
    farm = SimFarm(
        [sim_node("gpu-hangs", "premium", 0.002), sim_node("gpu-healthy", "standard", 0.002)],
        farm_models=dict(DEFAULT_MODELS),
        previews=False,
    )
    farm.node("gpu-hangs").faults.hang = 1

    class SlowDisk:
        """A keeper whose commits take a while, as SQLite's do on a busy disk."""

        def __init__(self) -> None:
            self.posted: list[str] = []

        def record(self, event: JobEvent) -> None:
            pass

        async def before_post(self, job: Job) -> None:
            self.posted.append(job.node_id or "")
            if len(self.posted) > 1:
                await asyncio.sleep(0.8)

        async def keep_outputs(self, *args: Any) -> tuple[object, ...]:
            return ()

    async with farm, make_scheduler(farm.config(), keeper=SlowDisk()) as scheduler:
        await wait_until_free(scheduler)
        scheduler.nodes["gpu-healthy"].capacity = 0  # the first attempt goes to the hanging node
        spec = drafts(1, steps=5, time_limit=0.5)[0]
        task = asyncio.ensure_future(run_all(scheduler, [spec]))
        await asyncio.sleep(0.1)
        scheduler.nodes["gpu-healthy"].capacity = 2
        events, _ = await task
    (done,) = [e for e in events if isinstance(e, JobDone)]
    assert done.node_id == "gpu-healthy" and done.job.attempts == 2
    degraded = [e for e in events if isinstance(e, NodeStateChanged) and e.state == "degraded"]
    assert [e.node_id for e in degraded] == ["gpu-hangs"]


# -- 18: every node down: named, and given up on after the time limit unless told to wait ------


@pytest.fixture
async def refusing_node() -> AsyncIterator[str]:
    """A server in front of ComfyUI that wants a token we do not have."""

    async def unauthorized(request: web.Request) -> web.Response:
        return web.Response(status=401, text="401: Unauthorized")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", unauthorized)
    async with serve(app) as url:
        yield url


def down_farm(refusing_url: str, unreachable_port: int) -> FarmConfig:
    port = int(refusing_url.rsplit(":", 1)[1])
    shape = {"host": "127.0.0.1", "tier": "standard", "vram_gb": 8, "capabilities": ["sd15"]}
    return FarmConfig.model_validate(
        {
            "nodes": [
                {"id": "gpu-token", "port": port, **shape},
                {"id": "gpu-gone", "port": unreachable_port, **shape},
            ]
        }
    )


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_with_every_node_down_a_job_names_them_and_gives_up(refusing_node: str) -> None:
    farm = down_farm(refusing_node, free_port())
    async with make_scheduler(farm) as scheduler:
        assert {runtime.state for runtime in scheduler.nodes.values()} == {"down"}
        events, seconds = await run_all(scheduler, drafts(2, time_limit=1.0), limit=15)
    failed = [e for e in events if isinstance(e, JobFailed)]
    assert len(failed) == 2 and seconds < 10
    for event in failed:
        assert "gpu-token" in event.reason and "401" in event.reason, event.reason
        assert "gpu-gone" in event.reason and "unreachable" in event.reason.lower(), event.reason


async def test_told_to_wait_a_job_waits_for_a_node_to_come_back() -> None:
    farm = SimFarm([sim_node("gpu-late", "standard", 0.002)], farm_models=dict(DEFAULT_MODELS))
    async with farm:
        late = farm.node("gpu-late")
        await late.kill()
        scheduler = make_scheduler(farm.config(), wait_for_nodes=True)
        async with scheduler:
            task = asyncio.ensure_future(run_all(scheduler, drafts(1, time_limit=0.5), limit=20))
            await asyncio.sleep(2.0)  # four times the time limit
            assert not task.done()
            await late.revive()
            events, _ = await task
    (done,) = [e for e in events if isinstance(e, JobDone)]
    assert done.node_id == "gpu-late"
