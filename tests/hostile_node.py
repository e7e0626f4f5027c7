"""A ComfyUI impersonator on loopback whose every answer the test chooses.

It speaks just enough of ComfyUI's HTTP and WebSocket API (the shapes
recorded in tests/fixtures/comfyui) to be a farm node: by default it behaves
like a healthy one-prompt-at-a-time server, and a test replaces the answer of
any endpoint with an `Answer` (a JSON body or raw bytes, a status, a delay, a
trickle, a redirect, an endless chunked body), or the frames the WebSocket
sends after a prompt is posted.

It runs in the test's event loop (`async with HostileNode() as node`) or, for
CLI tests where the app is a subprocess, in a thread beside a healthy
simulated node (`farm_in_thread`), with `write_farm` writing the farm config.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from imgen_tui.config import FarmConfig
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.object_info import build_object_info
from imgen_tui.sim.spec import SimNodeSpec, load_demo_farm

# A client that gives up on a trickling answer is the point of some tests, not news.
logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)

FIXTURES = Path(__file__).parent / "fixtures" / "comfyui"
SAMPLE_PNG = (FIXTURES / "sample_output.png").read_bytes()
SYSTEM_STATS = json.loads((FIXTURES / "system_stats.json").read_text())["json"]
MODELS = dict(load_demo_farm().models)
_SPEC: SimNodeSpec = load_demo_farm().nodes[0]
OBJECT_INFO = build_object_info(_SPEC, [])
OUTPUT_NAME = "ComfyUI_00001_.png"
_UNSET: Any = object()


@dataclass
class Answer:
    """One HTTP answer. `json` or `body` (default: the endpoint's healthy answer)."""

    json: Any = _UNSET
    body: bytes | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the status line
    trickle: float | None = None  # seconds between single bytes of the body
    redirect: str | None = None  # a Location; the status becomes 302 unless one is given
    repeat: int = 1  # the body sent this many times, chunked (a huge answer, little memory)

    def payload(self) -> bytes:
        if self.body is not None:
            return self.body
        return json.dumps(self.json).encode()


#: what an endpoint answers: one answer, one per call (the last repeats), or a function
#: of the prompt id the request is about ("" when it is about none)
Reply = Answer | Sequence[Answer] | Callable[[str], Answer]


@dataclass(frozen=True)
class Pause:
    """In a WebSocket script: wait this long before the next frame."""

    seconds: float


Frame = dict[str, Any] | str | bytes | Pause
Script = Callable[[str], list[Frame]]


def status_frame(queue_remaining: Any, sid: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": queue_remaining}}}
    if sid is not None:
        data["sid"] = sid
    return {"type": "status", "data": data}


def image_ref(filename: str = OUTPUT_NAME, folder_type: str = "output") -> dict[str, str]:
    return {"filename": filename, "subfolder": "", "type": folder_type}


def finished_frames(prompt_id: str) -> list[Frame]:
    """What a real server sends for a prompt that runs and saves one image."""
    return [
        status_frame(1),
        {"type": "execution_start", "data": {"prompt_id": prompt_id, "timestamp": 1}},
        {"type": "execution_cached", "data": {"nodes": [], "prompt_id": prompt_id}},
        {"type": "executing", "data": {"node": "5", "prompt_id": prompt_id}},
        {"type": "progress", "data": {"value": 1, "max": 1, "prompt_id": prompt_id, "node": "5"}},
        {"type": "executing", "data": {"node": "9", "prompt_id": prompt_id}},
        {
            "type": "executed",
            "data": {"node": "9", "prompt_id": prompt_id, "output": {"images": [image_ref()]}},
        },
        {"type": "execution_success", "data": {"prompt_id": prompt_id, "timestamp": 2}},
        {"type": "executing", "data": {"node": None, "prompt_id": prompt_id}},
        status_frame(0),
    ]


def history_entry(prompt_id: str, outputs: Any = _UNSET, status: Any = _UNSET) -> dict[str, Any]:
    """A `/history/{id}` body (shape of history_prompt.json)."""
    return {
        prompt_id: {
            "prompt": [0, prompt_id, {}, {}, ["9"]],
            "outputs": {"9": {"images": [image_ref()]}} if outputs is _UNSET else outputs,
            "status": (
                {"status_str": "success", "completed": True, "messages": []}
                if status is _UNSET
                else status
            ),
            "meta": {},
        }
    }


class HostileNode:
    """A farm node whose answers are `answers[path]` and whose frames are `script(prompt_id)`."""

    def __init__(self, node_id: str = "hostile") -> None:
        self.node_id = node_id
        self.answers: dict[str, Reply] = {}
        self.script: Script = finished_frames
        #: False: the script's `executed` frames are left out, as a client that reconnected
        #: mid-prompt misses them, so the app must ask /history what the prompt made
        self.outputs_heard = True
        self.calls: dict[str, int] = {}
        self.prompts: list[str] = []
        self.previews_only: set[str] = set()  # prompts whose graph has no SaveImage
        self.host, self.port = "127.0.0.1", 0
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self._scripts: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/ws", self._websocket)
        app.router.add_post("/prompt", self._post_prompt)
        app.router.add_get("/history/{prompt_id}", self._history)
        app.router.add_get(
            "/queue", self._simple("/queue", {"queue_running": [], "queue_pending": []})
        )
        app.router.add_post("/queue", self._simple("/queue POST", {}))
        app.router.add_post("/interrupt", self._simple("/interrupt", {}))
        app.router.add_get("/system_stats", self._simple("/system_stats", SYSTEM_STATS))
        app.router.add_get("/object_info", self._simple("/object_info", OBJECT_INFO))
        app.router.add_get("/view", self._view)
        app.router.add_post("/upload/image", self._upload)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for task in self._scripts:
            task.cancel()
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> HostileNode:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def node_config(self, **overrides: Any) -> dict[str, Any]:
        """This node's entry in a farm config: a premium sd15 node that jobs go to first."""
        return {
            "id": self.node_id,
            "vram_gb": 24,
            "tier": "premium",
            "host": self.host,
            "port": self.port,
            "capabilities": ["sd15"],
            "seconds_per_step": {"sd15": 0.01},
            "load_seconds": 0,
            **overrides,
        }

    # -- answers -----------------------------------------------------------------------

    def _answer(self, key: str, prompt_id: str, default: Any) -> Answer:
        answer = self._peek(key, prompt_id, default)
        self.calls[key] = self.calls.get(key, 0) + 1
        return answer

    def _peek(self, key: str, prompt_id: str, default: Any) -> Answer:
        """The answer the next call would get, without counting a call."""
        count = self.calls.get(key, 0)
        reply = self.answers.get(key)
        if reply is None:
            return Answer(json=default)
        if isinstance(reply, Answer):
            answer = reply
        elif callable(reply):
            answer = reply(prompt_id)
        else:
            answer = reply[min(count, len(reply) - 1)]
        if answer.json is _UNSET and answer.body is None:
            answer = Answer(**{**answer.__dict__, "json": default})
        return answer

    async def _send(self, request: web.Request, answer: Answer) -> web.StreamResponse:
        if answer.delay:
            await asyncio.sleep(answer.delay)
        headers = dict(answer.headers)
        status = answer.status
        if answer.redirect is not None:
            headers["Location"] = answer.redirect
            status = status if 300 <= status < 400 else 302
        if "Content-Type" not in headers and answer.body is None:
            headers["Content-Type"] = "application/json"
        payload = answer.payload()
        if answer.trickle is None and answer.repeat == 1:
            return web.Response(body=payload, status=status, headers=headers)
        response = web.StreamResponse(status=status, headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(answer.repeat):
            if answer.trickle is None:
                await response.write(payload)
                continue
            for index in range(len(payload)):
                await response.write(payload[index : index + 1])
                await asyncio.sleep(answer.trickle)
        await response.write_eof()
        return response

    def _simple(self, key: str, default: Any) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._send(request, self._answer(key, "", default))

        return handle

    async def _post_prompt(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        prompt_id = str(body.get("prompt_id"))
        self.prompts.append(prompt_id)
        graph = body.get("prompt") or {}
        if not any(node.get("class_type") == "SaveImage" for node in graph.values()):
            self.previews_only.add(prompt_id)  # ComfyUI lists its pictures as temp files
        default = {"prompt_id": prompt_id, "number": len(self.prompts), "node_errors": {}}
        answer = self._answer("/prompt", prompt_id, default)
        response = await self._send(request, answer)
        if answer.status == 200:
            task = asyncio.create_task(self._play(self._heard(prompt_id)))
            self._scripts.add(task)
            task.add_done_callback(self._scripts.discard)
        return response

    def _history_default(self, prompt_id: str) -> dict[str, Any]:
        folder_type = "temp" if prompt_id in self.previews_only else "output"
        return history_entry(
            prompt_id, outputs={"9": {"images": [image_ref("x.png", folder_type)]}}
        )

    def _heard(self, prompt_id: str) -> list[Frame]:
        """The script, its `executed` frames saying what /history will (a real server's two
        records of a prompt agree), or left out when `outputs_heard` is False."""
        entry = self._peek("/history", prompt_id, self._history_default(prompt_id)).json
        record = entry.get(prompt_id) if isinstance(entry, dict) else None
        outputs = record.get("outputs", _UNSET) if isinstance(record, dict) else _UNSET
        frames: list[Frame] = []
        for frame in self.script(prompt_id):
            if isinstance(frame, dict) and frame.get("type") == "executed":
                if not self.outputs_heard:
                    continue
                if isinstance(outputs, dict):  # a node without output sends no `executed`
                    node = frame["data"].get("node")
                    if node not in outputs:
                        continue
                    frame = {**frame, "data": {**frame["data"], "output": outputs[node]}}
                elif outputs is not _UNSET:  # a malformed record: the frame is as malformed
                    frame = {**frame, "data": {**frame["data"], "output": outputs}}
            frames.append(frame)
        return frames

    async def _history(self, request: web.Request) -> web.StreamResponse:
        prompt_id = request.match_info["prompt_id"]
        default = self._history_default(prompt_id)
        return await self._send(request, self._answer("/history", prompt_id, default))

    async def _view(self, request: web.Request) -> web.StreamResponse:
        answer = self._answer("/view", request.query.get("filename", ""), None)
        if answer.json is None and answer.body is None:
            answer = Answer(**{**answer.__dict__, "json": _UNSET, "body": SAMPLE_PNG})
            answer.headers.setdefault("Content-Type", "image/png")
        return await self._send(request, answer)

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        image = form.get("image")
        name = getattr(image, "filename", None) or "upload.png"
        default = {"name": name, "subfolder": "", "type": "input"}
        return await self._send(request, self._answer("/upload/image", "", default))

    # -- the WebSocket -------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(max_msg_size=0)
        await socket.prepare(request)
        self._sockets.add(socket)
        try:
            await socket.send_json(status_frame(0, request.query.get("clientId", "sid")))
            async for _ in socket:  # the client's feature_flags: nothing to answer
                pass
        finally:
            self._sockets.discard(socket)
        return socket

    async def _play(self, frames: list[Frame]) -> None:
        await asyncio.sleep(0.02)  # after the POST's answer, as a real server does
        for frame in frames:
            if isinstance(frame, Pause):
                await asyncio.sleep(frame.seconds)
                continue
            for socket in list(self._sockets):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    if isinstance(frame, bytes):
                        await socket.send_bytes(frame)
                    elif isinstance(frame, str):
                        await socket.send_str(frame)
                    else:
                        await socket.send_str(json.dumps(frame))


# -- farms for CLI tests -----------------------------------------------------------------------


def healthy_sim(count: int = 1) -> SimFarm:
    """The demo farm's first nodes, every job instant: the healthy neighbours."""
    return SimFarm.from_spec(load_demo_farm(), count, speed=0.0, previews=False)


def farm_document(hostile: Sequence[HostileNode], sim: SimFarm | None = None) -> dict[str, Any]:
    """A farm config (gpus.yaml shape) with the hostile nodes first, then the simulated ones."""
    nodes = [node.node_config() for node in hostile]
    if sim is not None:
        # Declared slower than the hostile nodes, so the scheduler tries those first.
        nodes += [
            {**entry, "seconds_per_step": {"sd15": 1.0}} for entry in sim.farm_config()["nodes"]
        ]
    return {"nodes": nodes, "models": MODELS}


def farm_config(hostile: Sequence[HostileNode], sim: SimFarm | None = None) -> FarmConfig:
    return FarmConfig.model_validate(farm_document(hostile, sim))


def write_farm(path: Path, hostile: Sequence[HostileNode], sim: SimFarm | None = None) -> Path:
    path.write_text(yaml.safe_dump(farm_document(hostile, sim), sort_keys=False))
    return path


@contextlib.contextmanager
def farm_in_thread(
    hostile: Sequence[HostileNode], sim: SimFarm | None = None
) -> Iterator[asyncio.AbstractEventLoop]:
    """Serve the nodes from a thread's event loop while the test runs a subprocess."""
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def serve() -> None:
        for node in hostile:
            await node.start()
        if sim is not None:
            await sim.start()
        started.set()

    async def shut() -> None:
        for node in hostile:
            await node.stop()
        if sim is not None:
            await sim.stop()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=30)
    try:
        yield loop
    finally:
        asyncio.run_coroutine_threadsafe(shut(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@contextlib.asynccontextmanager
async def running(
    hostile: Sequence[HostileNode], sim: SimFarm | None = None
) -> AsyncIterator[None]:
    """The same farm in the test's own event loop."""
    for node in hostile:
        await node.start()
    if sim is not None:
        await sim.start()
    try:
        yield
    finally:
        for node in hostile:
            await node.stop()
        if sim is not None:
            await sim.stop()
