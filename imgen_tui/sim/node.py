"""A ComfyUI-compatible server on loopback: the same routes, answers and messages.

Used by demo mode and by every test; nothing in the app can tell it from a real
ComfyUI. It holds one prompt at a time, keeps a real queue and history, and
can be told to fail (see `Faults`, `drop_websockets`, `kill`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from imgen_tui.comfy.events import encode_preview
from imgen_tui.sim import images
from imgen_tui.sim.execution import Faults, NodeMemory, PromptRun, QueuedPrompt
from imgen_tui.sim.model_files import PreviewLog, add_model_file_routes
from imgen_tui.sim.object_info import MODEL_INPUTS, build_object_info
from imgen_tui.sim.spec import SimNodeSpec
from imgen_tui.sim.validation import prompt_error, validate_prompt
from imgen_tui.sim.video import content_type_of

MAX_UPLOAD_SIZE = 104857600
_FOLDER_TYPES = ("output", "input", "temp")


@dataclass(eq=False)
class _Socket:
    ws: web.WebSocketResponse
    sid: str
    request: web.Request
    preview_metadata: bool = False


class SimulatedNode:
    """One simulated ComfyUI server. `await start()`, use `.url`, `await stop()`."""

    def __init__(
        self,
        spec: SimNodeSpec,
        *,
        farm_models: dict[str, str] | None = None,
        root: Path | None = None,
        previews: bool = True,
    ) -> None:
        self.spec = spec
        self.farm_models = dict(farm_models or {})
        self.previews = previews
        self.faults = Faults()
        self.preview_log = PreviewLog()  # kept across restarts: it counts what clients asked
        self._own_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix=f"imgen-sim-{spec.id}-"))
        for folder in _FOLDER_TYPES:
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = 0
        self._object_info_cache: dict[str, Any] | None = None
        self._runner: web.AppRunner | None = None
        self._worker: asyncio.Task[None] | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        """What a ComfyUI restart forgets: queue, history, sockets, loaded model."""
        self._counter = 0
        self._pending: list[QueuedPrompt] = []
        self._running: QueuedPrompt | None = None
        self._run: PromptRun | None = None
        self._interrupt_flag = False
        self._history: dict[str, Any] = {}
        self._sockets: dict[str, _Socket] = {}
        self._all_sockets: set[_Socket] = set()
        self._memory = NodeMemory()
        self._wakeup = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def alive(self) -> bool:
        return self._runner is not None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        await self._listen(host, port)
        self._worker = asyncio.create_task(self._work(), name=f"sim:{self.spec.id}")
        return self.url

    async def _listen(self, host: str, port: int) -> None:
        self.host = host
        app = web.Application(client_max_size=MAX_UPLOAD_SIZE)
        self._add_routes(app)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port or self.port)
        await site.start()
        self.port = int(runner.addresses[0][1])
        self._runner = runner

    async def stop(self) -> None:
        was_running = self._running is not None
        await self.kill()
        if self._own_root:
            await asyncio.to_thread(_remove_root, self.root, settle=was_running)

    async def kill(self) -> None:
        """Die like a crashed ComfyUI: connections drop, queue and history are forgotten."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        await self.unplug()
        self._reset_state()

    async def unplug(self) -> None:
        """A network outage: the node goes on working and remembering, but cannot be reached."""
        for sock in list(self._all_sockets):
            with contextlib.suppress(Exception):
                await sock.ws.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def plug_in(self) -> None:
        """The network is back: same port, same queue and history."""
        await self._listen(self.host, self.port)

    async def revive(self) -> str:
        """Come back on the same port, empty-handed, as ComfyUI does after a restart."""
        return await self.start(self.host, self.port)

    async def drop_websockets(self) -> None:
        """Cut every WebSocket without a close frame, as a network failure would."""
        for sock in list(self._all_sockets):
            transport = sock.request.transport
            if transport is not None:
                transport.close()

    # -- state views (for tests and the CLI) ------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._pending) + (1 if self._running else 0)

    @property
    def loaded_checkpoint(self) -> str | None:
        return self._memory.loaded_checkpoint

    @property
    def timeline(self) -> list[tuple[float, float]]:
        return self._memory.timeline

    def finished_at(self, prompt_id: str) -> float | None:
        """When the prompt's execution_success went out (epoch seconds), if it ran here."""
        entry = self._history.get(prompt_id)
        for kind, data in entry["status"]["messages"] if entry else ():
            if kind == "execution_success":
                return float(data["timestamp"]) / 1000
        return None

    @property
    def checkpoint_loads(self) -> int:
        return self._memory.checkpoint_loads

    @property
    def lora_patches(self) -> int:
        return self._memory.lora_patches

    def object_info(self) -> dict[str, Any]:
        """Built once; an upload (the only thing that changes LoadImage's list) rebuilds it."""
        if self._object_info_cache is None:
            inputs = [p.name for p in (self.root / "input").iterdir() if p.is_file()]
            self._object_info_cache = build_object_info(self.spec, inputs)
        return self._object_info_cache

    # -- messaging ---------------------------------------------------------------------

    async def _send_json(self, sock: _Socket, kind: str, data: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await sock.ws.send_str(json.dumps({"type": kind, "data": data}))

    async def _broadcast(self, kind: str, data: dict[str, Any]) -> None:
        for sock in list(self._sockets.values()):
            await self._send_json(sock, kind, data)

    async def _send_status(self) -> None:
        await self._broadcast(
            "status", {"status": {"exec_info": {"queue_remaining": self.queue_depth}}}
        )

    async def _send_to_submitter(self, kind: str, data: dict[str, Any]) -> None:
        client_id = self._running.client_id if self._running else None
        if client_id is None:
            if kind == "progress":
                await self._broadcast(kind, data)
            return
        sock = self._sockets.get(client_id)
        if sock is not None:
            await self._send_json(sock, kind, data)

    async def _send_preview(self, image: bytes, metadata: dict[str, Any]) -> None:
        client_id = self._running.client_id if self._running else None
        targets = (
            list(self._sockets.values())
            if client_id is None
            else [s for s in [self._sockets.get(client_id)] if s is not None]
        )
        for sock in targets:
            frame = encode_preview(image, "jpeg", metadata if sock.preview_metadata else None)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await sock.ws.send_bytes(frame)

    # -- the worker ----------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            self._pending.sort(key=lambda queued: queued.number)
            item = self._pending.pop(0)
            self._running, self._interrupt_flag = item, False
            await self._send_status()
            run = PromptRun(
                item,
                spec=self.spec,
                farm_models=self.farm_models,
                root=self.root,
                memory=self._memory,
                faults=self.faults,
                send=self._send_to_submitter,
                send_preview=self._send_preview,
                interrupted=lambda: self._interrupt_flag,
                previews=self.previews,
            )
            self._run = run
            started = time.monotonic()
            status = await run.run()
            self._memory.timeline.append((started, time.monotonic()))
            self._history[item.prompt_id] = {
                "prompt": item.as_queue_item(),
                "outputs": run.outputs,
                "status": {
                    "status_str": status,
                    "completed": status == "success",
                    "messages": run.messages,
                },
                "meta": {
                    node: {
                        "node_id": node,
                        "display_node": node,
                        "parent_node": None,
                        "real_node_id": node,
                    }
                    for node in run.outputs
                },
            }
            self._running, self._run = None, None
            await self._send_status()
            await self._send_to_submitter_after(
                item, "executing", {"node": None, "prompt_id": item.prompt_id}
            )

    async def _send_to_submitter_after(
        self, item: QueuedPrompt, kind: str, data: dict[str, Any]
    ) -> None:
        sock = self._sockets.get(item.client_id or "")
        if sock is not None:
            await self._send_json(sock, kind, data)

    # -- routes --------------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/ws", self._websocket)
        app.router.add_post("/prompt", self._post_prompt)
        app.router.add_get("/prompt", self._get_prompt)
        app.router.add_get("/queue", self._get_queue)
        app.router.add_post("/queue", self._post_queue)
        app.router.add_get("/history", self._get_history)
        app.router.add_get("/history/{prompt_id}", self._get_history_entry)
        app.router.add_post("/history", self._post_history)
        app.router.add_post("/interrupt", self._interrupt)
        app.router.add_get("/view", self._view)
        app.router.add_post("/upload/image", self._upload)
        app.router.add_get("/object_info", self._object_info)
        app.router.add_get("/object_info/{class_type}", self._object_info_one)
        app.router.add_get("/system_stats", self._system_stats)
        app.router.add_get("/models", self._models)
        app.router.add_get("/models/{folder}", self._models_folder)
        app.router.add_get("/embeddings", self._embeddings)
        app.router.add_get("/features", self._features)
        app.router.add_post("/free", self._free)
        app.router.add_post("/sim/faults", self._set_faults)
        add_model_file_routes(app, lambda: self.spec, self._model_folders, self.preview_log)

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_UPLOAD_SIZE)
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        sock = _Socket(ws=ws, sid=sid, request=request)
        self._sockets[sid] = sock  # a second socket with the same id silences the first
        self._all_sockets.add(sock)
        try:
            await self._send_json(
                sock,
                "status",
                {"status": {"exec_info": {"queue_remaining": self.queue_depth}}, "sid": sid},
            )
            run = self._run
            if (
                run is not None
                and self._running
                and self._running.client_id == sid
                and run.current_node
            ):
                await self._send_json(sock, "executing", {"node": run.current_node})
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                with contextlib.suppress(ValueError, AttributeError):
                    payload = json.loads(message.data)
                    if payload.get("type") == "feature_flags":
                        sock.preview_metadata = bool(
                            payload["data"].get("supports_preview_metadata")
                        )
                        await self._send_json(
                            sock,
                            "feature_flags",
                            {"supports_preview_metadata": True, "max_upload_size": MAX_UPLOAD_SIZE},
                        )
        finally:
            self._all_sockets.discard(sock)
            if self._sockets.get(sid) is sock:
                del self._sockets[sid]
        return ws

    async def _post_prompt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.Response(
                status=500, text="500 Internal Server Error\n\nServer got itself in trouble"
            )
        number = self._counter
        self._counter += 1
        if self.faults.reject > 0:
            self.faults.reject -= 1
            return web.Response(
                status=500, text="500 Internal Server Error\n\nServer got itself in trouble"
            )
        if not isinstance(body, dict) or "prompt" not in body:
            return web.json_response(
                {
                    "error": prompt_error("no_prompt", "No prompt provided", "No prompt provided"),
                    "node_errors": {},
                },
                status=400,
            )
        prompt = body["prompt"]
        if not isinstance(prompt, dict):
            return web.json_response(
                {
                    "error": prompt_error("invalid_prompt", "Invalid prompt: not an object"),
                    "node_errors": {},
                },
                status=400,
            )
        result = validate_prompt(prompt, self.object_info())
        if result.error is not None:
            return web.json_response(
                {"error": result.error, "node_errors": result.node_errors}, status=400
            )
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        if body.get("front"):
            number = -number
        extra_data = dict(body.get("extra_data") or {})
        if body.get("client_id") is not None:
            extra_data["client_id"] = body["client_id"]
        self._pending.append(QueuedPrompt(number, prompt_id, prompt, extra_data, result.outputs))
        self._wakeup.set()
        await self._send_status()
        return web.json_response(
            {"prompt_id": prompt_id, "number": number, "node_errors": result.node_errors}
        )

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response({"exec_info": {"queue_remaining": self.queue_depth}})

    async def _get_queue(self, request: web.Request) -> web.Response:
        running = [self._running.as_queue_item()] if self._running else []
        return web.json_response(
            {"queue_running": running, "queue_pending": [p.as_queue_item() for p in self._pending]}
        )

    async def _post_queue(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if body.get("clear"):
            self._pending.clear()
        delete = set(body.get("delete") or ())
        if delete:
            self._pending = [p for p in self._pending if p.prompt_id not in delete]
        await self._send_status()
        return web.Response(status=200)

    async def _get_history(self, request: web.Request) -> web.Response:
        entries = list(self._history.items())
        max_items = request.query.get("max_items")
        if max_items and max_items.isdigit():
            entries = entries[-int(max_items) :]
        return web.json_response(dict(entries))

    async def _get_history_entry(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self._history.get(prompt_id)
        return web.json_response({} if entry is None else {prompt_id: entry})

    async def _post_history(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if body.get("clear"):
            self._history.clear()
        for prompt_id in body.get("delete") or ():
            self._history.pop(prompt_id, None)
        return web.Response(status=200)

    async def _interrupt(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        wanted = body.get("prompt_id")
        if self._running is not None and (wanted is None or wanted == self._running.prompt_id):
            self._interrupt_flag = True
        return web.Response(status=200)

    async def _view(self, request: web.Request) -> web.StreamResponse:
        filename = request.query.get("filename")
        if not filename:
            return web.Response(status=404)
        folder_type = request.query.get("type") or "output"
        subfolder = request.query.get("subfolder") or ""
        path = self._inside(folder_type, subfolder, filename)
        if path is None:
            return web.Response(status=400)
        if not path.is_file():
            return web.Response(status=404)
        data = await asyncio.to_thread(path.read_bytes)
        if self.faults.truncate > 0:
            self.faults.truncate -= 1
            data = data[: len(data) // 2]
        content_type = content_type_of(filename)  # image/webp, image/gif, video/mp4 as recorded
        preview = request.query.get("preview", "")
        if preview.startswith("jpeg") or preview.startswith("webp"):
            quality = int(preview.split(";")[1]) if ";" in preview else 90
            data = await asyncio.to_thread(images.to_jpeg, data, quality)
            content_type = "image/jpeg"
        return web.Response(
            body=data,
            content_type=content_type,
            headers={"Content-Disposition": f'filename="{filename}"'},
        )

    def _inside(self, folder_type: str, *parts: str) -> Path | None:
        """The path under the folder of `folder_type`, or None if it would leave it.

        One rule for reading (`/view`) and writing (`/upload/image`), as
        ComfyUI's own `commonpath` check: `..`, an absolute subfolder or a
        symbolic link out of the folder are all refused.
        """
        if folder_type not in _FOLDER_TYPES or any(".." in part for part in parts):
            return None
        base = (self.root / folder_type).resolve()
        path = base.joinpath(*parts).resolve()
        return path if path == base or path.is_relative_to(base) else None

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("image")
        if not isinstance(upload, web.FileField):
            return web.Response(status=400)
        folder_type = str(form.get("type") or "input")
        subfolder = str(form.get("subfolder") or "")
        folder = self._inside(folder_type, subfolder)
        if folder is None or ".." in upload.filename:
            return web.Response(status=400)
        overwrite = str(form.get("overwrite") or "").lower() in ("true", "1")
        data = upload.file.read()
        candidate = await asyncio.to_thread(
            _store_upload, folder, Path(upload.filename).name, data, overwrite
        )
        self._object_info_cache = None
        return web.json_response({"name": candidate, "subfolder": subfolder, "type": folder_type})

    async def _object_info(self, request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(self.object_info))

    async def _object_info_one(self, request: web.Request) -> web.Response:
        class_type = request.match_info["class_type"]
        info = await asyncio.to_thread(self.object_info)
        return web.json_response({class_type: info[class_type]} if class_type in info else {})

    async def _system_stats(self, request: web.Request) -> web.Response:
        vram = int(self.spec.vram_gb * 1024**3)
        used = int(vram * (0.45 if self._memory.loaded_checkpoint else 0.05))
        return web.json_response(
            {
                "system": {
                    "os": "posix",
                    "ram_total": 34359738368,
                    "ram_free": 20000000000,
                    "comfyui_version": self.spec.comfyui_version,
                    "required_frontend_version": "1.27.10",
                    "installed_templates_version": "0.1.95",
                    "required_templates_version": "0.1.95",
                    "python_version": "3.11.7 (main) [GCC 12.2.0]",
                    "pytorch_version": "2.13.0+cu128 (simulated)",
                    "embedded_python": False,
                    "argv": ["main.py", "--listen", self.host, "--port", str(self.port)],
                },
                "devices": [
                    {
                        "name": f"cuda:0 {self.spec.name or self.spec.id}",
                        "type": "cuda",
                        "index": 0,
                        "vram_total": vram,
                        "vram_free": vram - used,
                        "torch_vram_total": vram,
                        "torch_vram_free": vram - used,
                    }
                ],
            }
        )

    def _model_folders(self) -> set[str]:
        return {*MODEL_INPUTS, *self.spec.models}

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(sorted(self._model_folders()))

    async def _models_folder(self, request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        known = self._model_folders()
        if folder not in known:
            return web.Response(status=404)
        return web.json_response(list(self.spec.models.get(folder, [])))

    async def _embeddings(self, request: web.Request) -> web.Response:
        return web.json_response([])

    async def _features(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"supports_preview_metadata": True, "max_upload_size": MAX_UPLOAD_SIZE}
        )

    async def _free(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if body.get("unload_models"):
            self._memory.loaded_checkpoint = None
            self._memory.lora_stack = ()
        return web.Response(status=200)

    async def _set_faults(self, request: web.Request) -> web.Response:
        """Failure injection for a simulator in another process: {"oom": 1, "drop_ws": true}."""
        body = await _json_body(request)
        for name in ("oom", "hang", "reject", "truncate"):
            if name in body:
                setattr(self.faults, name, int(body[name]))
        if body.get("drop_ws"):
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self.drop_websockets())
            )
        return web.json_response(dataclasses.asdict(self.faults))


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _remove_root(root: Path, *, settle: bool) -> None:
    """Remove a node's temporary folder for good.

    A prompt cancelled mid-run may still have a picture being written on a
    worker thread (cancelling the task does not stop the thread), and that
    write recreates the folder after it was removed: with a prompt running,
    look again until the folder stays gone.
    """
    deadline = time.monotonic() + 5.0
    while True:
        shutil.rmtree(root, ignore_errors=True)
        if not settle or time.monotonic() > deadline:
            return
        time.sleep(0.25)
        if not root.exists():
            return


def _store_upload(folder: Path, name: str, data: bytes, overwrite: bool) -> str:
    """Write an upload as ComfyUI does: same bytes keep the name, other bytes get `name (1).png`."""
    folder.mkdir(parents=True, exist_ok=True)
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, copy = name, 1
    while (
        not overwrite
        and (folder / candidate).is_file()
        and (folder / candidate).read_bytes() != data
    ):
        candidate = f"{stem} ({copy}){suffix}"
        copy += 1
    (folder / candidate).write_bytes(data)
    return candidate
