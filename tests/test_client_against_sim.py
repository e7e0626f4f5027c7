"""The real client against a simulated node over real loopback sockets."""

from __future__ import annotations

import asyncio
import io
import json
from typing import TypeVar

import httpx
import pytest
from PIL import Image

from imgen_tui.comfy import (
    ComfyClient,
    DownloadTooLarge,
    ExecutionFailed,
    GraphRejected,
    Interrupted,
    NodeEventStream,
    NodeUnreachable,
    TimedOut,
)
from imgen_tui.comfy.client import new_prompt_id
from imgen_tui.comfy.events import Executed, Preview, Progress, Status
from imgen_tui.comfy.run import run_prompt
from imgen_tui.comfy.websocket import Backoff, Connected, Disconnected, StreamEvent
from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.graphs import LoraSpec, inject_loras, load_library
from imgen_tui.graphs.graph import Graph
from imgen_tui.locations import bundled_dir
from imgen_tui.sim.node import SimulatedNode

EventT = TypeVar("EventT")

LIBRARY = load_library([bundled_dir("workflows")])


def draft(prompt: str = "a red fox", seed: int = 1, **params: object) -> Graph:
    return LIBRARY["sd15_txt2img"].render(
        {"prompt": prompt, "seed": seed, **params}, DEFAULT_MODELS
    )


async def test_submit_uses_the_client_minted_prompt_id(client: ComfyClient) -> None:
    prompt_id = new_prompt_id()
    result = await client.submit(draft(), prompt_id=prompt_id)
    assert result.prompt_id == prompt_id
    queue = await client.queue()
    assert queue.state_of(prompt_id) in ("running", "pending", None)


async def test_a_run_streams_progress_previews_and_a_downloadable_png(
    client: ComfyClient, stream: NodeEventStream
) -> None:
    seen: list[StreamEvent] = []
    entry = await run_prompt(client, stream, draft(steps=4), time_limit=10, on_event=seen.append)
    progress = [e for e in seen if isinstance(e, Progress)]
    assert [p.value for p in progress] == [1, 2, 3, 4] and progress[0].max == 4
    previews = [e for e in seen if isinstance(e, Preview)]
    assert len(previews) == 4 and all(p.prompt_id == entry.prompt_id for p in previews)
    assert any(isinstance(e, Executed) for e in seen)
    png = await client.download(entry.saved_images[0])
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (512, 512)
        assert json.loads(image.info["prompt"])["5"]["inputs"]["seed"] == 1
    assert await client.prompt_state(entry.prompt_id) == "done"


async def test_prompt_state_tells_pending_running_done_and_unknown(
    client: ComfyClient, sim_node: SimulatedNode
) -> None:
    sim_node.faults.hang = 1
    running = (await client.submit(draft(seed=10))).prompt_id
    waiting = (await client.submit(draft(seed=11))).prompt_id
    for _ in range(100):
        if await client.prompt_state(running) == "running":
            break
        await asyncio.sleep(0.01)
    assert await client.prompt_state(running) == "running"
    assert await client.prompt_state(waiting) == "pending"
    assert await client.prompt_state("no-such-prompt") == "unknown"
    assert await client.history(waiting) is None  # {} means "not finished" as well as unknown
    await client.delete_queued([waiting])
    await client.interrupt(running)
    for _ in range(200):
        if await client.prompt_state(running) == "done":
            break
        await asyncio.sleep(0.01)
    entry = await client.history(running)
    assert entry is not None and entry.interrupted
    assert await client.prompt_state(waiting) == "unknown"


async def test_interrupt_by_id_stops_only_that_prompt(
    client: ComfyClient, stream: NodeEventStream, sim_node: SimulatedNode
) -> None:
    sim_node.faults.hang = 1
    task = asyncio.create_task(run_prompt(client, stream, draft(seed=3), time_limit=10))
    for _ in range(200):
        if sim_node.queue_depth and (await client.queue()).running:
            break
        await asyncio.sleep(0.01)
    await client.interrupt("00000000-0000-0000-0000-000000000000")  # not running: ignored
    await asyncio.sleep(0.1)
    assert not task.done()
    running = (await client.queue()).running[0].prompt_id
    await client.interrupt(running)
    with pytest.raises(Interrupted, match="was interrupted"):
        await task


async def test_a_bare_interrupt_is_refused_client_side(client: ComfyClient) -> None:
    with pytest.raises(ValueError, match="other users"):
        await client.interrupt("")


async def test_graph_rejection_names_node_input_and_missing_model(client: ComfyClient) -> None:
    graph = draft()
    graph["1"]["inputs"]["ckpt_name"] = "x.safetensors"
    with pytest.raises(GraphRejected) as caught:
        await client.submit(graph)
    assert (
        "node 1 CheckpointLoaderSimple: ckpt_name 'x.safetensors' is not installed on gpu-test"
        in str(caught.value)
    )
    assert caught.value.missing_models == ("x.safetensors",)


async def test_half_valid_graph_is_taken_back_and_rejected(
    client: ComfyClient, sim_node: SimulatedNode
) -> None:
    graph = draft()
    graph["9"] = {"class_type": "PreviewImage", "inputs": {}}  # a second, broken output
    with pytest.raises(
        GraphRejected, match="node 9 PreviewImage: required input images is missing"
    ):
        await client.submit(graph)
    assert (await client.queue()).pending == ()


async def test_execution_error_becomes_execution_failed(
    client: ComfyClient, stream: NodeEventStream
) -> None:
    graph = inject_loras(draft(), [LoraSpec("broken-lora.safetensors", 0.8)])
    with pytest.raises(ExecutionFailed) as caught:
        await run_prompt(client, stream, graph, time_limit=10)
    assert str(caught.value) == (
        "gpu-test: node 8 LoraLoader failed: Error while deserializing header: header too large"
    )
    assert not caught.value.out_of_memory


async def test_out_of_memory_is_recognisable(
    client: ComfyClient, stream: NodeEventStream, sim_node: SimulatedNode
) -> None:
    sim_node.faults.oom = 1
    with pytest.raises(ExecutionFailed) as caught:
        await run_prompt(client, stream, draft(), time_limit=10)
    assert caught.value.out_of_memory and caught.value.retryable


async def test_a_hung_prompt_times_out(
    client: ComfyClient, stream: NodeEventStream, sim_node: SimulatedNode
) -> None:
    sim_node.faults.hang = 1
    with pytest.raises(TimedOut, match=r"did not finish within 0\.3 s"):
        await run_prompt(client, stream, draft(), time_limit=0.3)


async def test_download_refuses_files_over_the_cap(
    client: ComfyClient, stream: NodeEventStream
) -> None:
    entry = await run_prompt(client, stream, draft(), time_limit=10)
    with pytest.raises(DownloadTooLarge, match="download cap"):
        await client.download(entry.saved_images[0], max_bytes=1000)


async def test_upload_renames_different_bytes_and_keeps_same_bytes(client: ComfyClient) -> None:
    first = await client.upload_image(b"\x89PNG one", "source.png")
    same = await client.upload_image(b"\x89PNG one", "source.png")
    other = await client.upload_image(b"\x89PNG two", "source.png")
    forced = await client.upload_image(b"\x89PNG three", "source.png", overwrite=True)
    assert (first.filename, same.filename, other.filename, forced.filename) == (
        "source.png",
        "source.png",
        "source (1).png",
        "source.png",
    )
    assert first.type == "input"


async def test_unreachable_node_is_one_sentence() -> None:
    async with ComfyClient("http://127.0.0.1:9", name="gpu-gone") as client:
        with pytest.raises(NodeUnreachable) as caught:
            await client.system_stats()
    message = str(caught.value)
    assert message.startswith("gpu-gone (http://127.0.0.1:9) is unreachable")
    assert "--listen" in message


async def test_other_clients_prompts_are_ignored_but_count_in_queue_depth(
    client: ComfyClient, stream: NodeEventStream, sim_node: SimulatedNode
) -> None:
    await asyncio.wait_for(_until(stream, Connected), 5)
    async with ComfyClient(sim_node.url, name="someone-else") as other:
        sim_node.faults.hang = 1
        foreign = (await other.submit(draft(seed=99))).prompt_id
        await asyncio.wait_for(_until_depth(stream, 1), 5)
        assert stream.queue_remaining == 1  # another user's prompt still counts
        await other.interrupt(foreign)
    # A prompt sent with our client id but never claimed (say, by an earlier run
    # of the app) reaches our socket; its events must not reach the consumer.
    unclaimed = (await client.submit(draft(seed=7))).prompt_id
    for _ in range(200):
        if await client.prompt_state(unclaimed) == "done":
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    leaked = []
    while not stream._events.empty():
        event = stream._events.get_nowait()
        if getattr(event, "prompt_id", None) in (foreign, unclaimed):
            leaked.append(event)
    assert leaked == []


async def _until_depth(stream: NodeEventStream, depth: int) -> None:
    while True:
        event = await stream.next_event()
        if isinstance(event, Status) and event.queue_remaining >= depth:
            return


async def test_stream_reconnects_after_the_socket_drops(
    client: ComfyClient, stream: NodeEventStream, sim_node: SimulatedNode
) -> None:
    await asyncio.wait_for(_until(stream, Connected), 5)
    await sim_node.drop_websockets()
    await asyncio.wait_for(_until(stream, Disconnected), 5)
    again = await asyncio.wait_for(_until(stream, Connected), 5)
    assert again.reconnect
    entry = await run_prompt(client, stream, draft(seed=42), time_limit=10)
    assert entry.status == "success"


async def test_completion_missed_while_disconnected_is_found_in_history(
    client: ComfyClient, stream: NodeEventStream, sim_node: SimulatedNode
) -> None:
    await asyncio.wait_for(_until(stream, Connected), 5)
    slow = sim_node.spec.model_copy(update={"seconds_per_step": {"sd15": 0.05}})
    sim_node.spec = slow
    task = asyncio.create_task(run_prompt(client, stream, draft(seed=8, steps=6), time_limit=10))
    await asyncio.sleep(0.1)
    await sim_node.drop_websockets()
    entry = await task
    assert entry.status == "success" and entry.saved_images


async def _until(stream: NodeEventStream, kind: type[EventT]) -> EventT:
    while True:
        event = await stream.next_event()
        if isinstance(event, kind):
            return event


async def test_a_node_that_dies_is_unreachable_and_comes_back_empty(
    client: ComfyClient, stream: NodeEventStream, sim_node: SimulatedNode
) -> None:
    finished = await run_prompt(client, stream, draft(seed=21), time_limit=10)
    await sim_node.kill()
    with pytest.raises(NodeUnreachable):
        await client.queue()
    await asyncio.wait_for(_until(stream, Disconnected), 5)
    await sim_node.revive()
    back = await asyncio.wait_for(_until(stream, Connected), 10)
    assert back.reconnect
    # Like a restarted ComfyUI, it has forgotten its history: the app must keep its own.
    assert await client.prompt_state(finished.prompt_id) == "unknown"


def test_backoff_starts_near_100ms_and_is_capped() -> None:
    backoff = Backoff()
    first = [backoff.delay(0) for _ in range(200)]
    assert all(0.05 <= delay <= 0.1 for delay in first) and len(set(first)) > 1
    assert all(backoff.delay(20) <= backoff.cap for _ in range(200))


async def test_a_silent_node_times_out_with_a_sentence() -> None:
    """A node that accepts the connection and never answers: the probe gives up."""
    server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, ComfyClient(f"http://127.0.0.1:{port}", name="gpu-silent") as client:
        with pytest.raises(
            TimedOut,
            match=r"^gpu-silent \(http://127\.0\.0\.1:\d+\) did not answer /system_stats in time$",
        ):
            await client.system_stats(http_timeout=httpx.Timeout(0.2))
