"""The GPU dashboard's numbers, from a real scheduler driving simulated nodes over sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.scheduler.events import JobDone, JobStarted, NodeStateChanged
from imgen_tui.scheduler.farm_stats import (
    BUCKET_SECONDS,
    BUCKETS,
    FarmStats,
    NodeRow,
    buckets,
    farm_line,
    farm_snapshot,
    now_text,
    spark_text,
)
from imgen_tui.scheduler.jobs import Job, JobSpec, JobState
from imgen_tui.sim.farm import SimFarm
from tests.test_scheduler_farm import FARM, LIBRARY, drafts, make_scheduler, run_all


@pytest.fixture
async def sim_farm() -> AsyncIterator[SimFarm]:
    farm = SimFarm(FARM, farm_models=dict(DEFAULT_MODELS), previews=False)
    async with farm:
        yield farm


def row_of(rows: tuple[NodeRow, ...], node_id: str) -> NodeRow:
    return next(row for row in rows if row.id == node_id)


def sdxl_jobs(count: int, steps: int = 30) -> list[JobSpec]:
    template = LIBRARY["sdxl_txt2img"]
    return [
        JobSpec.from_graph(
            template.render({"prompt": "x", "seed": seed, "steps": steps}, DEFAULT_MODELS), "sdxl"
        )
        for seed in range(count)
    ]


async def test_a_batch_shows_in_counts_busy_time_memory_and_the_sparkline(
    sim_farm: SimFarm,
) -> None:
    async with make_scheduler(sim_farm, learn_speed=True) as scheduler:
        events = await run_all(scheduler, drafts(12, steps=10))
        await asyncio.sleep(1.1)  # a queue-depth sample after the batch
        snapshot = farm_snapshot(
            scheduler.nodes, scheduler.jobs.values(), scheduler.stats, time.monotonic()
        )
    done = [e for e in events if isinstance(e, JobDone)]
    assert snapshot.images_total == len(done) == 12
    assert snapshot.images_per_minute == 12 and snapshot.waiting == 0
    for row in snapshot.nodes:
        made = sum(1 for e in done if e.node_id == row.id)
        assert row.images_recent == made
        assert sum(row.throughput) == made and len(row.throughput) == BUCKETS
        assert (row.busy_share > 0) == (made > 0)
        assert row.vram_total == int(next(n for n in FARM if n.id == row.id).vram_gb * 1024**3)
        assert row.ram_total and row.ram_used is not None and 0 < row.ram_used < row.ram_total
        assert row.health == "up" and row.idle_reasons == ()
        if made:
            assert "sd15" in row.seconds_per_step
    assert "12 this session" in farm_line(snapshot) and "gpu-draft" in farm_line(snapshot)


async def test_a_node_going_down_and_up_shows_since_and_its_last_error(sim_farm: SimFarm) -> None:
    draft = sim_farm.node("gpu-draft")
    async with make_scheduler(sim_farm) as scheduler:
        runtime = scheduler.nodes["gpu-draft"]
        up_since = runtime.state_since
        await draft.kill()
        for _ in range(200):
            if runtime.state == "down":
                break
            await asyncio.sleep(0.02)
        row = row_of(
            farm_snapshot(scheduler.nodes, [], scheduler.stats, time.monotonic()).nodes,
            "gpu-draft",
        )
        assert row.health == "down" and row.since >= up_since
        assert row.last_error and "gpu-draft" in row.last_error
        await draft.revive()
        for _ in range(200):
            if runtime.state == "up":
                break
            await asyncio.sleep(0.02)
        row = row_of(
            farm_snapshot(scheduler.nodes, [], scheduler.stats, time.monotonic()).nodes,
            "gpu-draft",
        )
    assert row.health == "up" and row.reason == "answering"
    assert row.last_error and "gpu-draft" in row.last_error  # the last error stays to be read


async def test_an_idle_node_beside_waiting_jobs_says_why(sim_farm: SimFarm) -> None:
    async with make_scheduler(sim_farm) as scheduler:
        jobs = scheduler.submit_many(sdxl_jobs(8, steps=40))
        for _ in range(200):
            running = {job.node_id for job in jobs if job.state == JobState.RUNNING}
            if "gpu-premium" in running and any(j.state == JobState.QUEUED for j in jobs):
                break
            await asyncio.sleep(0.02)
        snapshot = farm_snapshot(
            scheduler.nodes, scheduler.jobs.values(), scheduler.stats, time.monotonic()
        )
        await scheduler.cancel_all()
    assert snapshot.waiting > 0
    draft = row_of(snapshot.nodes, "gpu-draft")
    assert draft.ours == 0
    assert draft.idle_reasons == (f"{snapshot.waiting} jobs: no sdxl",)
    assert now_text(draft) == "idle: no sdxl"
    standard = row_of(snapshot.nodes, "gpu-standard")  # declares sdxl, lacks the checkpoint
    assert standard.idle_reasons == (f"{snapshot.waiting} jobs: no sdxl",)
    busy = row_of(snapshot.nodes, "gpu-premium")
    assert busy.ours > 0 and busy.idle_reasons == () and busy.running is not None


def test_events_make_busy_time_and_bars_without_a_farm() -> None:
    stats = FarmStats(["a", "b"], now=0.0)
    job = Job(spec=drafts(1)[0], seq=1)
    stats.record(JobStarted(job, "a"), now=10.0)
    assert stats.busy_seconds("a", 15.0) == 5.0  # the running job counts
    stats.record(JobDone(job, "a", ()), now=20.0)
    stats.record(NodeStateChanged("b", "down", "b: refused"), now=21.0)
    stats.sample({"a": 3, "b": 0}, now=22.0)
    assert stats.busy_seconds("a", 100.0) == 10.0 and stats.busy_seconds("b", 100.0) == 0.0
    assert stats.history["b"].last_error == "b: refused"
    bars = buckets([(25.0, 1.0), (25.0, 1.0), (-999.0, 1.0)], now=30.0)
    assert bars[-1] == 2.0 and sum(bars) == 2.0  # older than the window: left out
    depth = buckets([(29.0, 3.0), (28.0, 1.0)], now=30.0, combine="max")
    assert depth[-1] == 3.0
    assert buckets([(30.0 - BUCKET_SECONDS * BUCKETS + 0.5, 1.0)], now=30.0)[0] == 1.0
    assert spark_text([0.0, 1.0, 2.0]) == "▁▅█" and spark_text([0.0, 0.0]) == "▁▁"
