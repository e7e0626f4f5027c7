"""Run one graph on one node and wait for its outcome, as typed results or errors.

The scheduler drives many prompts through one event stream; this is the
single-prompt path for commands and checks, and the one place that turns an
execution's end into `ExecutionFailed`, `Interrupted` or `TimedOut`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from imgen_tui.comfy.client import ComfyClient, new_prompt_id
from imgen_tui.comfy.errors import ComfyError, ExecutionFailed, Interrupted, TimedOut
from imgen_tui.comfy.events import Executing, ExecutionError, ExecutionInterrupted
from imgen_tui.comfy.responses import HistoryEntry
from imgen_tui.comfy.websocket import Connected, NodeEventStream, StreamEvent


def execution_failed(error: ExecutionError, node: str) -> ExecutionFailed:
    where = f"node {error.node_id} {error.node_type}" if error.node_id else "the graph"
    detail = (
        error.exception_message.splitlines()[0] if error.exception_message else error.exception_type
    )
    return ExecutionFailed(
        f"{node}: {where} failed: {detail}",
        node=node,
        node_id=error.node_id,
        node_type=error.node_type,
        exception_type=error.exception_type,
    )


def history_outcome(entry: HistoryEntry, node: str) -> HistoryEntry:
    """The entry itself when it succeeded; the matching error when it did not."""
    if entry.error is not None:
        raise execution_failed(entry.error, node)
    if entry.interrupted:
        raise Interrupted(f"{node}: prompt {entry.prompt_id} was interrupted", node=node)
    if entry.status not in ("success", ""):
        raise ComfyError(
            f"{node}: prompt {entry.prompt_id} ended with status {entry.status}", node=node
        )
    return entry


def no_saved_image(entry: HistoryEntry, node: str) -> str:
    """Why a prompt that ended well still counts as failed: nothing was saved to keep."""
    kinds = sorted({image.type for image in entry.images})
    if not entry.images:
        what = "its history lists no output image"
    elif kinds == ["temp"]:
        what = "its only images are previews (PreviewImage), which the node deletes"
    else:
        what = f"its images are of type {', '.join(repr(kind) for kind in kinds)}, not 'output'"
    return f"{node}: prompt {entry.prompt_id} finished without saving an image: {what}"


async def run_prompt(
    client: ComfyClient,
    stream: NodeEventStream,
    graph: Mapping[str, Any],
    *,
    time_limit: float = 300.0,
    prompt_id: str | None = None,
    on_event: Callable[[StreamEvent], None] | None = None,
) -> HistoryEntry:
    """Submit `graph` and wait for it to finish; the stream must have no other reader."""
    prompt_id = prompt_id or new_prompt_id()
    stream.watch(prompt_id)
    try:
        await client.submit(graph, prompt_id=prompt_id)
        async with asyncio.timeout(time_limit):
            while True:
                event = await stream.next_event()
                if on_event is not None:
                    on_event(event)
                if isinstance(event, Connected) and event.reconnect:
                    entry = await client.history(prompt_id)  # it may have ended while we were away
                    if entry is not None:
                        return history_outcome(entry, client.name)
                elif isinstance(event, ExecutionError) and event.prompt_id == prompt_id:
                    raise execution_failed(event, client.name)
                elif isinstance(event, ExecutionInterrupted) and event.prompt_id == prompt_id:
                    raise Interrupted(
                        f"{client.name}: prompt {prompt_id} was interrupted", node=client.name
                    )
                elif (
                    isinstance(event, Executing)
                    and event.node is None
                    and event.prompt_id == prompt_id
                ):
                    entry = await client.history(prompt_id)
                    if entry is None:
                        raise ComfyError(
                            f"{client.name} finished {prompt_id} but has no history for it",
                            node=client.name,
                        )
                    return history_outcome(entry, client.name)
    except TimeoutError:
        raise TimedOut(
            f"{client.name}: prompt {prompt_id} did not finish within {time_limit:g} s",
            node=client.name,
        ) from None
    finally:
        stream.forget(prompt_id)
