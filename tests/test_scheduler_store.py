"""Scheduler + store over real sockets: committed before POST, kept before told, re-attached."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from imgen_tui.comfy.client import ComfyClient
from imgen_tui.comfy.events import ImageRef
from imgen_tui.comfy.websocket import Backoff
from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.flows.recorder import SessionRecorder
from imgen_tui.scheduler.events import JobDone, JobEvent, JobRetrying
from imgen_tui.scheduler.jobs import Job, JobSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.node import SimulatedNode
from imgen_tui.sim.spec import SimNodeSpec
from imgen_tui.store import ImageRecord, SessionStore
from tests.conftest import FAST_NODE
from tests.test_scheduler_farm import drafts

SLOW_NODE = FAST_NODE.model_copy(update={"seconds_per_step": {"sd15": 0.03}})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SessionStore]:
    opened = await SessionStore.open(tmp_path / "data")
    yield opened
    await opened.close()


async def node_of(spec: SimNodeSpec) -> SimFarm:
    farm = SimFarm([spec], farm_models=dict(DEFAULT_MODELS), previews=False)
    await farm.start()
    return farm


def scheduler_for(
    farm: SimFarm, recorder: SessionRecorder, client_id: str | None = None
) -> Scheduler:
    return Scheduler(
        farm.config(),
        keeper=recorder,
        client_id=client_id,
        health_interval=0.2,
        retry_base=0.05,
        backoff=Backoff(first=0.05, cap=0.2),
    )


async def stored_jobs(store: SessionStore, specs: list[JobSpec]) -> str:
    session = await store.create_session("batch", "test")
    round_info = await store.add_round(session.id, "drafts")
    await store.add_jobs(round_info.id, [(spec.job_id, spec.to_json()) for spec in specs])
    return session.id


def history_size(node: SimulatedNode) -> int:
    return len(node._history)


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.01)):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never came true")


async def run_to_idle(scheduler: Scheduler, events: list[JobEvent], limit: float = 30) -> None:
    subscription = scheduler.subscribe()

    async def collect() -> None:
        async for event in subscription:
            events.append(event)

    collector = asyncio.create_task(collect())
    await asyncio.wait_for(scheduler.wait_idle(), limit)
    await asyncio.sleep(0.05)
    collector.cancel()


async def run_and_stop(farm: SimFarm, store: SessionStore, specs: list[JobSpec]) -> list[JobEvent]:
    """The specs run to idle by a scheduler that keeps them in `store`; the farm stopped after."""
    events: list[JobEvent] = []
    try:
        async with scheduler_for(farm, SessionRecorder(store)) as scheduler:
            scheduler.submit_many(specs)
            await run_to_idle(scheduler, events)
    finally:
        await farm.stop()
    return events


async def test_committed_before_post_and_on_disk_before_anyone_is_told(
    tmp_path: Path, store: SessionStore
) -> None:
    farm = await node_of(FAST_NODE)
    node = farm.nodes[0]
    specs = drafts(3)
    session_id = await stored_jobs(store, specs)
    seen_at_post: list[tuple[str, str | None, bool]] = []

    class Watching(SessionRecorder):
        async def before_post(self, job: Job) -> None:
            await super().before_post(job)
            (row,) = [r for r in await self.store.jobs(session_id) if r.id == job.job_id]
            async with ComfyClient(node.url) as client:
                known = await client.prompt_state(job.prompt_id or "") != "unknown"
            seen_at_post.append((row.state, row.prompt_id, known))

    told: list[tuple[bool, int]] = []
    try:
        scheduler = scheduler_for(farm, Watching(store))
        async with scheduler:
            subscription = scheduler.subscribe()
            scheduler.submit_many(specs)

            async def listen() -> None:
                async for event in subscription:
                    if isinstance(event, JobDone):
                        (record,) = event.kept
                        assert isinstance(record, ImageRecord)
                        rows = await store.images(session_id=session_id)
                        told.append((record.path.is_file(), sum(r.id == record.id for r in rows)))

            listener = asyncio.create_task(listen())
            await asyncio.wait_for(scheduler.wait_idle(), 30)
            await asyncio.sleep(0.05)
            listener.cancel()
    finally:
        await farm.stop()
    assert [(state, known) for state, _, known in seen_at_post] == [("submitted", False)] * 3
    assert all(prompt_id for _, prompt_id, _ in seen_at_post)
    assert told == [(True, 1)] * 3


async def test_a_truncated_download_is_retried_and_kept_once(
    tmp_path: Path, store: SessionStore
) -> None:
    farm = await node_of(FAST_NODE)
    farm.nodes[0].faults.truncate = 1
    specs = drafts(1)
    session_id = await stored_jobs(store, specs)
    events = await run_and_stop(farm, store, specs)
    (retry,) = [e for e in events if isinstance(e, JobRetrying)]
    assert "not a readable image" in retry.reason
    (done,) = [e for e in events if isinstance(e, JobDone)]
    assert done.job.attempts == 2
    assert len(await store.images(session_id=session_id)) == 1


async def test_prompts_left_by_a_crashed_run_are_settled_exactly_once(
    tmp_path: Path, store: SessionStore
) -> None:
    """Finished, queued, running and forgotten prompts, re-attached by a new client id."""
    farm = await node_of(SLOW_NODE)
    node = farm.nodes[0]
    specs = drafts(4, steps=10)
    session_id = await stored_jobs(store, specs)
    try:
        first = scheduler_for(farm, SessionRecorder(store))
        async with first:
            first.submit_many(specs[:3])

            async def all_accepted() -> bool:
                return sum(job.accepted for job in first.jobs.values()) == 3

            await until(all_accepted)
        # `first` stopped without cancelling anything: its prompts live on in the node.
        rows = await store.jobs(session_id)
        forgotten = rows[3]
        await store.job_submitted(forgotten.id, node.spec.id, "never-posted", 1)
        rows = await store.jobs(session_id)
        # On a loaded machine the first prompt may already have been fetched and kept.
        assert {row.state for row in rows} <= {"submitted", "running", "done"}

        events: list[JobEvent] = []
        async with scheduler_for(farm, SessionRecorder(store)) as second:
            SessionRecorder.resume(second, rows)
            await run_to_idle(second, events)
        ran = history_size(node)
    finally:
        await farm.stop()
    done = Counter(e.job.job_id for e in events if isinstance(e, JobDone))
    # A prompt `first` already fetched and kept is settled: the second run leaves it alone.
    kept_by_first = {row.id for row in rows if row.state == "done"}
    assert done == Counter({spec.job_id: 1 for spec in specs if spec.job_id not in kept_by_first})
    images = await store.images(session_id=session_id)
    assert sorted(image.job_id for image in images) == sorted(spec.job_id for spec in specs)
    assert ran == 4  # three adopted prompts ran once; the forgotten one once


async def test_a_node_down_at_start_is_reconciled_when_it_comes_back(
    tmp_path: Path, store: SessionStore
) -> None:
    farm = await node_of(FAST_NODE)
    node = farm.nodes[0]
    specs = drafts(1)
    session_id = await stored_jobs(store, specs)
    try:
        async with ComfyClient(node.url) as client:
            result = await client.submit(specs[0].graph)

            async def finished() -> bool:
                return await client.prompt_state(result.prompt_id) == "done"

            await until(finished)
        await store.job_submitted(specs[0].job_id, node.spec.id, result.prompt_id, 1)
        await node.unplug()  # the network is out; the picture waits on the node
        events: list[JobEvent] = []
        async with scheduler_for(farm, SessionRecorder(store)) as scheduler:
            SessionRecorder.resume(scheduler, await store.jobs(session_id))
            await asyncio.sleep(0.5)
            assert scheduler.nodes[node.spec.id].state == "down"
            assert not await store.images(session_id=session_id)
            await node.plug_in()
            await run_to_idle(scheduler, events)
        ran = history_size(node)
    finally:
        await farm.stop()
    (done,) = [e for e in events if isinstance(e, JobDone)]
    assert done.images == (ImageRef(filename="imgen_00001_.png"),)
    assert len(await store.images(session_id=session_id)) == 1
    assert ran == 1  # fetched, not made again
