"""The one long-lived WebSocket per node, with reconnects and prompt filtering.

ComfyUI sends execution events only to the socket whose clientId submitted the
prompt, and a second socket with the same clientId silences the first; so the
app keeps exactly one stream per node and reconnects it with the same id.
Events for prompts this app does not own are dropped, except `Status`, whose
queue depth (everyone's prompts) the scheduler needs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import websockets
from websockets.asyncio.client import ClientConnection

from imgen_tui.comfy.errors import ProtocolError
from imgen_tui.comfy.events import (
    Executing,
    ExecutionStart,
    NodeEvent,
    Status,
    parse_binary,
    parse_message,
)

log = logging.getLogger(__name__)

FEATURE_FLAGS = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}


@dataclass(frozen=True, slots=True)
class Connected:
    """The socket is (re)open; after a reconnect, missed events must be reconciled."""

    sid: str | None
    reconnect: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class FrameSkipped:
    """A text frame that could not be read: whatever it said (an `executed`?) is not known."""

    reason: str


StreamEvent = NodeEvent | Connected | Disconnected | FrameSkipped


@dataclass(frozen=True, slots=True)
class Backoff:
    """Jittered exponential backoff: ~100 ms first, never more than `cap` seconds."""

    first: float = 0.1
    cap: float = 4.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.first * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)


def websocket_url(base_url: str, client_id: str) -> str:
    scheme, rest = base_url.split("://", 1)
    ws_scheme = "wss" if scheme == "https" else "ws"
    return f"{ws_scheme}://{rest.rstrip('/')}/ws?clientId={client_id}"


class NodeEventStream:
    """Typed events from one node; iterate with `async for` after `start()`.

    One reader per stream (the scheduler's loop for that node): events are
    queued once and handed to whoever awaits first.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        *,
        name: str | None = None,
        headers: Mapping[str, str] | None = None,
        backoff: Backoff = Backoff(),
        max_frame: int = 32 * 1024 * 1024,
    ) -> None:
        self.url = websocket_url(base_url, client_id)
        self.name = name or base_url
        self.headers = dict(headers or {})
        self.backoff = backoff
        self.max_frame = max_frame
        self.connected = False
        self.queue_remaining = 0
        self.last_message_at: float | None = None
        self._ours: set[str] = set()
        self._was_connected = False
        self._running: str | None = None
        self._events: asyncio.Queue[StreamEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    # -- ownership ------------------------------------------------------------------

    def watch(self, prompt_id: str) -> None:
        """Claim a prompt; call before submitting it, so no early event is lost."""
        self._ours.add(prompt_id)

    def forget(self, prompt_id: str) -> None:
        self._ours.discard(prompt_id)

    @property
    def running_prompt(self) -> str | None:
        """The prompt this node is executing now, ours or not, as far as we have seen."""
        return self._running

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ws:{self.name}")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # closing must never re-raise what ended the stream
                log.exception("%s: the websocket task had failed", self.name)
        self.connected = False

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamEvent]:
        while True:
            yield await self._events.get()

    async def next_event(self) -> StreamEvent:
        return await self._events.get()

    # -- the loop -------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while True:
            reason = "connection failed"
            try:
                async with websockets.connect(
                    self.url,
                    additional_headers=self.headers,
                    max_size=self.max_frame,
                    open_timeout=10,
                    ping_interval=20,
                    ping_timeout=20,
                ) as socket:
                    await socket.send(json.dumps(FEATURE_FLAGS))
                    attempt = 0
                    await self._receive(socket)
                    reason = f"closed by the server (code {socket.close_code})"
            except (OSError, websockets.exceptions.WebSocketException, TimeoutError) as error:
                reason = str(error) or type(error).__name__
            except Exception as error:  # whatever a node sends, this stream must outlive it
                log.exception("%s: websocket failed unexpectedly", self.name)
                reason = f"{type(error).__name__}: {error}"
            if self.connected:
                self.connected = False
                self._running = None
                self._events.put_nowait(Disconnected(reason=reason))
            log.info("%s: websocket down (%s); retry %d", self.name, reason, attempt)
            await asyncio.sleep(self.backoff.delay(attempt))
            attempt += 1

    async def _receive(self, socket: ClientConnection) -> None:
        try:
            async for frame in socket:
                self.last_message_at = time.monotonic()
                try:
                    event = (
                        parse_binary(frame)
                        if isinstance(frame, bytes)
                        else parse_message(json.loads(frame))
                    )
                except (ProtocolError, ValueError, RecursionError) as error:
                    log.warning("%s: ignored a frame: %s", self.name, error)
                    self._skipped(frame, str(error))
                    continue
                except Exception as error:  # a parser bug costs one frame, never the stream
                    log.exception("%s: ignored a frame that could not be decoded", self.name)
                    self._skipped(frame, f"{type(error).__name__}: {error}")
                    continue
                if isinstance(event, Status) and not self.connected:
                    self.connected = True
                    self._events.put_nowait(Connected(sid=event.sid, reconnect=self._was_connected))
                    self._was_connected = True
                self._deliver(event)
        except websockets.exceptions.ConnectionClosed:
            pass

    def _skipped(self, frame: str | bytes, reason: str) -> None:
        """In order with the events: a text frame may have carried outputs (binary: previews)."""
        if isinstance(frame, str) and self.connected:
            self._events.put_nowait(FrameSkipped(reason))

    def _deliver(self, event: NodeEvent | None) -> None:
        if event is None:
            return
        if isinstance(event, Status):
            self.queue_remaining = event.queue_remaining
            self._events.put_nowait(event)
            return
        prompt_id = self._prompt_of(event)
        if prompt_id is not None and prompt_id in self._ours:
            self._events.put_nowait(event)

    def _prompt_of(self, event: NodeEvent) -> str | None:
        """Which prompt an event belongs to, tracking the running one for bare frames.

        Type-1 previews and the `executing` sent after a reconnect carry no
        prompt id: they belong to whatever this node is running.
        """
        explicit: str | None = getattr(event, "prompt_id", None)
        if isinstance(event, ExecutionStart):
            self._running = event.prompt_id
        elif isinstance(event, Executing):
            if event.node is None:
                finished = explicit or self._running
                self._running = None
                return finished
            if explicit is not None:
                self._running = explicit
        return explicit if explicit is not None else self._running
