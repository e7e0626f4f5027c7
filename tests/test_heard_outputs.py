"""A finished prompt's outputs from its `executed` messages, /history when they were not heard whole.

ComfyUI sends every output node's `executed` (cached ones too) before
`execution_success`, with the dict its history lists for that node: heard
whole, they save a /history round trip per picture. Missed ones (a reconnect,
an adopted prompt, a frame that could not be read) or ones that saved nothing
send the app to /history, the record that survives a dropped WebSocket.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from imgen_tui.comfy import ComfyClient, ProtocolError
from imgen_tui.comfy.events import ImageRef
from imgen_tui.comfy.responses import HistoryEntry
from imgen_tui.scheduler.events import JobDone, JobEvent, JobFailed, JobStarted
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import load_demo_farm
from tests.hostile_node import (
    Answer,
    HostileNode,
    farm_config,
    finished_frames,
    history_entry,
    image_ref,
    running,
)
from tests.test_hostile_node import draft, run_jobs


def asked_history(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Which prompts the app asked /history about (the real call still goes out)."""
    asked: Counter[str] = Counter()
    real: Callable[[ComfyClient, str], Awaitable[HistoryEntry | None]] = ComfyClient.history

    async def history(self: ComfyClient, prompt_id: str) -> HistoryEntry | None:
        asked[prompt_id] += 1
        return await real(self, prompt_id)

    monkeypatch.setattr(ComfyClient, "history", history)
    return asked


async def one_job(node: HostileNode) -> list[JobEvent]:
    async with running([node]), Scheduler(farm_config([node]), max_attempts=1) as scheduler:
        return await run_jobs(scheduler, [draft(1)])


def done(events: list[JobEvent]) -> JobDone:
    (finished,) = [event for event in events if isinstance(event, JobDone | JobFailed)]
    assert isinstance(finished, JobDone), finished
    return finished


async def test_outputs_heard_whole_need_no_history(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = asked_history(monkeypatch)
    node = HostileNode()
    # A /history that would fail the job: it is never asked.
    node.answers["/history"] = lambda pid: Answer(json=history_entry(pid, status=["done"]))
    finished = done(await one_job(node))
    assert finished.images == (ImageRef(image_ref()["filename"]),)
    assert not asked and "/history" not in node.calls


async def test_outputs_not_heard_are_read_from_history(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = asked_history(monkeypatch)
    node = HostileNode()
    node.outputs_heard = False  # as a client that reconnected mid-prompt misses them
    finished = done(await one_job(node))
    assert finished.images == (ImageRef("x.png"),)
    assert list(asked.values()) == [1] and node.calls["/history"] == 1


async def test_a_frame_that_could_not_be_read_sends_the_app_to_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The unreadable frame might have been another output node's `executed`."""
    asked = asked_history(monkeypatch)
    node = HostileNode()

    def script(prompt_id: str) -> list[Any]:
        frames = finished_frames(prompt_id)
        return [*frames[:3], '{"type": "executed", "data": {"output": [1]}}', *frames[3:]]

    node.script = script
    finished = done(await one_job(node))
    assert finished.images == (ImageRef("x.png"),)
    assert list(asked.values()) == [1]


async def test_executed_messages_that_saved_nothing_are_checked_with_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Heard outputs with no saved picture are not trusted to fail the job: /history decides."""
    asked = asked_history(monkeypatch)
    node = HostileNode()
    told = iter(["temp", "output"])  # the executed frame is made first, then /history answers
    node.answers["/history"] = lambda pid: Answer(
        json=history_entry(pid, outputs={"9": {"images": [image_ref(folder_type=next(told))]}})
    )
    finished = done(await one_job(node))
    assert finished.images == (ImageRef(image_ref()["filename"]),)
    assert list(asked.values()) == [1]


def sim_node_farm(speed: float) -> SimFarm:
    return SimFarm.from_spec(load_demo_farm(), 1, speed=speed, previews=False)


async def test_on_the_simulator_every_picture_comes_without_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = asked_history(monkeypatch)
    sim = sim_node_farm(0.0)
    async with running([], sim), Scheduler(farm_config([], sim)) as scheduler:
        events = await run_jobs(scheduler, [draft(seed) for seed in range(3)])
    assert len([event for event in events if isinstance(event, JobDone)]) == 3
    assert not asked


async def test_a_socket_dropped_mid_prompt_sends_the_app_to_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reconnected, the stream may have missed an `executed`: the job's outcome is read."""
    asked = asked_history(monkeypatch)
    sim = sim_node_farm(0.0)
    node = sim.nodes[0]
    node.spec = node.spec.model_copy(update={"seconds_per_step": {"sd15": 0.2}})
    async with running([], sim), Scheduler(farm_config([], sim)) as scheduler:
        subscription = scheduler.subscribe()
        events: list[JobEvent] = []

        async def collect() -> None:
            async for event in subscription:
                events.append(event)
                if isinstance(event, JobStarted):
                    await node.drop_websockets()

        collector = asyncio.create_task(collect())
        scheduler.submit_many([draft(7)])
        try:
            await asyncio.wait_for(scheduler.wait_idle(), 20)
        finally:
            collector.cancel()
    finished = done(events)
    assert finished.images and sum(asked.values()) >= 1


def test_heard_outputs_list_files_as_history_does() -> None:
    picture = {"filename": "a.png", "subfolder": "", "type": "output"}
    outputs = {
        "9": {"images": [picture, picture]},  # listed twice: one image
        "12": {"gifs": [{"filename": "v.mp4", "subfolder": "", "type": "output"}]},
        "13": {"images": [{"filename": "map.png", "subfolder": "", "type": "temp"}]},
    }
    entry = HistoryEntry.from_outputs("p", outputs)
    assert entry.saved_images == (ImageRef("a.png"), ImageRef("v.mp4"))
    assert entry == HistoryEntry.from_json("p", history_entry("p", outputs=outputs)["p"])
    with pytest.raises(ProtocolError, match="the images in the executed messages of p is a str"):
        HistoryEntry.from_outputs("p", {"9": {"images": "x"}})
