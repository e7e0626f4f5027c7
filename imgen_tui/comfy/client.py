"""HTTP side of one ComfyUI server.

One `ComfyClient` per node. It speaks only ComfyUI's public API and turns every
failure into a `ComfyError` whose text names the node and what to do. It never
sends a bare `POST /interrupt`: that would stop another user's prompt.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar

import httpx

from imgen_tui.comfy.errors import (
    ComfyError,
    DownloadTooLarge,
    NodeUnreachable,
    ProtocolError,
    TimedOut,
    graph_rejected,
)
from imgen_tui.comfy.events import ImageRef
from imgen_tui.comfy.outputs import require_saved_output
from imgen_tui.comfy.responses import (
    HistoryEntry,
    ObjectInfo,
    PromptState,
    QueueState,
    SubmitResult,
    SystemStats,
)

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
DEFAULT_DOWNLOAD_CAP = 256 * 1024 * 1024
#: the longest one request may take in all: httpx's timeouts are per read, so a node
#: trickling a byte every few seconds would otherwise hold a request open for ever
REQUEST_DEADLINE = 30.0
OBJECT_INFO_DEADLINE = 60.0  # a full object_info is megabytes
DOWNLOAD_DEADLINE = 300.0
#: downloads are written to disk in pieces this big (from a worker thread)
WRITE_PIECE = 1024 * 1024

T = TypeVar("T")


def new_prompt_id() -> str:
    """Prompt ids are minted here so they can be stored before the POST is sent."""
    return str(uuid.uuid4())


class ComfyClient:
    """Async client for one ComfyUI server's HTTP API."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str | None = None,
        client_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name or self.base_url
        self.client_id = client_id or str(uuid.uuid4())
        self.headers = dict(headers or {})
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=timeout
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    # -- prompts -----------------------------------------------------------------

    async def submit(
        self,
        graph: Mapping[str, Any],
        *,
        prompt_id: str | None = None,
        front: bool = False,
        extra_data: Mapping[str, Any] | None = None,
    ) -> SubmitResult:
        """Queue a graph under a client-minted prompt id.

        A 200 can still carry `node_errors` (one output invalid, another valid);
        such a half-accepted prompt is taken back off the queue and reported as
        rejected, because a partial run is never what the caller asked for.
        A graph that saves no picture is refused before it is sent (`GraphError`).
        """
        require_saved_output(graph)
        body: dict[str, Any] = {
            "prompt": dict(graph),
            "client_id": self.client_id,
            "prompt_id": prompt_id or new_prompt_id(),
        }
        if front:
            body["front"] = True
        if extra_data:
            body["extra_data"] = dict(extra_data)
        response = await self._request("POST", "/prompt", json=body)
        if response.status_code == 400:
            raise graph_rejected(_json_or_text(response), self.name)
        data = self._json(response, "/prompt")
        if not isinstance(data, dict) or "prompt_id" not in data:
            raise ProtocolError(f"{self.name} answered /prompt without a prompt_id", node=self.name)
        if data.get("node_errors"):
            await self.delete_queued([str(data["prompt_id"])])
            raise graph_rejected(data, self.name)
        number = data.get("number")
        return SubmitResult(
            prompt_id=str(data["prompt_id"]),
            number=number if isinstance(number, int) and not isinstance(number, bool) else 0,
        )

    async def prompt_state(self, prompt_id: str) -> PromptState:
        """Tell a queued, running, finished or unknown prompt apart.

        `/history/{id}` answers `{}` both for unknown ids and for prompts not
        finished yet, so the queue is asked first; a prompt that has left the
        queue is already in the history (the server writes both together).
        """
        state = (await self.queue()).state_of(prompt_id)
        if state is not None:
            return state
        return "done" if await self.history(prompt_id) is not None else "unknown"

    async def history(self, prompt_id: str) -> HistoryEntry | None:
        data = self._json(await self._request("GET", f"/history/{prompt_id}"), "/history")
        if not isinstance(data, dict):
            raise ProtocolError(
                f"{self.name} answered /history with a {type(data).__name__}, not an object",
                node=self.name,
            )
        entry = data.get(prompt_id)
        if entry is None:
            return None
        return self._parsed(lambda: HistoryEntry.from_json(prompt_id, entry))

    async def queue(self) -> QueueState:
        data = self._json(await self._request("GET", "/queue"), "/queue")
        return self._parsed(lambda: QueueState.from_json(data))

    async def delete_queued(self, prompt_ids: Iterable[str]) -> None:
        """Take still-pending prompts back; running ones are unaffected (use `interrupt`)."""
        ids = list(prompt_ids)
        if ids:
            self._check(await self._request("POST", "/queue", json={"delete": ids}), "/queue")

    async def interrupt(self, prompt_id: str) -> None:
        """Stop `prompt_id` if it is running now; the server ignores any other id."""
        if not prompt_id:
            raise ValueError(
                "interrupt needs a prompt id: a bare interrupt stops other users' work"
            )
        response = await self._request("POST", "/interrupt", json={"prompt_id": prompt_id})
        self._check(response, "/interrupt")

    # -- files ----------------------------------------------------------------------

    async def download(
        self,
        image: ImageRef,
        *,
        max_bytes: int = DEFAULT_DOWNLOAD_CAP,
        deadline: float = DOWNLOAD_DEADLINE,
    ) -> bytes:
        """An output from `/view`, in memory; refuses anything over `max_bytes`."""
        chunks: list[bytes] = []

        async def keep(chunk: bytes) -> None:
            chunks.append(chunk)

        await self._stream_view(image, keep, max_bytes=max_bytes, deadline=deadline)
        return b"".join(chunks)

    async def download_to(
        self,
        image: ImageRef,
        destination: Path,
        *,
        max_bytes: int = DEFAULT_DOWNLOAD_CAP,
        deadline: float = DOWNLOAD_DEADLINE,
    ) -> int:
        """Stream an output from `/view` into `destination`; returns its size in bytes.

        Only one piece of the file is in memory at a time, so a huge (or
        endless) answer costs disk up to `max_bytes`, never RAM. A partial
        file is left for the caller to remove; a missing folder is made.
        """
        return await self.download_then(
            image,
            destination,
            lambda path: path.stat().st_size,
            max_bytes=max_bytes,
            deadline=deadline,
        )

    async def download_then(
        self,
        image: ImageRef,
        destination: Path,
        then: Callable[[Path], T],
        *,
        max_bytes: int = DEFAULT_DOWNLOAD_CAP,
        deadline: float = DOWNLOAD_DEADLINE,
    ) -> T:
        """`download_to`, then `then(destination)` in the thread that wrote the last piece.

        What a caller does with a finished file (check it, read it back) then
        costs no thread hop of its own: on a busy loop each hop waits for a
        frame, and those waits were most of a finished picture's delay.
        """
        handle: IO[bytes] | None = None
        piece = bytearray()

        def put(data: bytes) -> None:
            nonlocal handle
            if handle is None:
                destination.parent.mkdir(parents=True, exist_ok=True)
                handle = destination.open("wb")
            handle.write(data)

        def finish(data: bytes) -> T:
            """The last piece, the file closed, and the caller's step: a small file is one hop."""
            put(data)
            assert handle is not None
            handle.close()
            return then(destination)

        async def write(chunk: bytes) -> None:
            piece.extend(chunk)
            if len(piece) >= WRITE_PIECE:
                await asyncio.to_thread(put, bytes(piece))
                piece.clear()

        try:
            await self._stream_view(image, write, max_bytes=max_bytes, deadline=deadline)
            return await asyncio.to_thread(finish, bytes(piece))
        finally:
            if handle is not None and not handle.closed:
                await asyncio.to_thread(handle.close)

    async def _stream_view(
        self,
        image: ImageRef,
        sink: Callable[[bytes], Awaitable[None]],
        *,
        max_bytes: int,
        deadline: float,
    ) -> int:
        params = {"filename": image.filename, "subfolder": image.subfolder, "type": image.type}
        received = 0
        try:
            async with asyncio.timeout(deadline):
                async with self._http.stream("GET", "/view", params=params) as response:
                    if response.status_code == 404:
                        raise ComfyError(
                            f"{self.name} has no file {image.filename!r} ({image.type})",
                            node=self.name,
                        )
                    if response.status_code >= 300:
                        await response.aread()
                        self._check(response, "/view")
                    declared = _declared_length(response)
                    if declared > max_bytes:
                        raise self._too_large(image, declared, max_bytes)
                    async for chunk in response.aiter_bytes():
                        received += len(chunk)
                        if received > max_bytes:
                            raise self._too_large(image, received, max_bytes)
                        await sink(chunk)
            return received
        except TimeoutError:
            raise TimedOut(
                f"{self.name}: downloading {image.filename!r} took over {deadline:g} s "
                f"({received} bytes arrived); the node is sending too slowly",
                node=self.name,
            ) from None
        except httpx.HTTPError as error:
            raise self._transport_error(error, "/view") from error

    def _too_large(self, image: ImageRef, size: int, cap: int) -> DownloadTooLarge:
        return DownloadTooLarge(
            f"{self.name}: {image.filename} is over the {cap // (1024 * 1024)} MiB download cap "
            f"({size} bytes); raise the cap if the file is expected",
            node=self.name,
        )

    async def upload_image(
        self,
        data: bytes,
        filename: str,
        *,
        subfolder: str = "",
        overwrite: bool = False,
        image_type: str = "input",
    ) -> ImageRef:
        """Upload an image for LoadImage; the server may rename it (`name (1).png`)."""
        form = {"type": image_type, "subfolder": subfolder, "overwrite": str(overwrite).lower()}
        files = {"image": (filename, data, "image/png")}
        response = await self._request("POST", "/upload/image", data=form, files=files)
        answer = self._json(response, "/upload/image")
        if not isinstance(answer, dict) or "name" not in answer:
            raise ProtocolError(
                f"{self.name} answered /upload/image without a name", node=self.name
            )
        return ImageRef(
            filename=str(answer["name"]),
            subfolder=str(answer.get("subfolder") or ""),
            type=str(answer.get("type") or image_type),
        )

    # -- node facts -------------------------------------------------------------------

    async def object_info(self) -> ObjectInfo:
        timeout = httpx.Timeout(OBJECT_INFO_DEADLINE, connect=5.0)
        response = await self._request(
            "GET", "/object_info", timeout=timeout, deadline=OBJECT_INFO_DEADLINE
        )
        data = self._json(response, "/object_info")
        return self._parsed(lambda: ObjectInfo.from_json(data))

    async def system_stats(
        self, *, http_timeout: httpx.Timeout | None = None, deadline: float = REQUEST_DEADLINE
    ) -> SystemStats:
        """`http_timeout` and `deadline` let a health probe give up sooner than others do."""
        options = {} if http_timeout is None else {"timeout": http_timeout}
        response = await self._request("GET", "/system_stats", deadline=deadline, **options)
        data = self._json(response, "/system_stats")
        return self._parsed(lambda: SystemStats.from_json(data))

    async def get(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        deadline: float = REQUEST_DEADLINE,
    ) -> httpx.Response:
        """Any GET, whatever its status: for optional endpoints whose 404 means "not here".

        Only a transport failure raises (as a `ComfyError` naming the node); the
        caller reads the status, because for `/experiment/...` a 404 is an answer.
        """
        return await self._request("GET", path, params=params, deadline=deadline)

    # -- plumbing ---------------------------------------------------------------------

    async def _request(
        self, method: str, path: str, *, deadline: float = REQUEST_DEADLINE, **kwargs: Any
    ) -> httpx.Response:
        try:
            async with asyncio.timeout(deadline):
                return await self._http.request(method, path, **kwargs)
        except TimeoutError:
            raise TimedOut(
                f"{self.name} ({self.base_url}) did not finish answering {path.split('?')[0]} "
                f"within {deadline:g} s",
                node=self.name,
            ) from None
        except httpx.HTTPError as error:
            raise self._transport_error(error, path) from error

    def _parsed(self, parse: Callable[[], T]) -> T:
        """Parse an answer, naming this node in the error: the parsers know only the path."""
        try:
            return parse()
        except ProtocolError as error:
            raise ProtocolError(
                f"{self.name} ({self.base_url}): {error}; is this a ComfyUI server?",
                node=self.name,
            ) from None

    def _transport_error(self, error: httpx.HTTPError, path: str = "") -> ComfyError:
        if isinstance(error, httpx.TimeoutException):
            asked = f" {path.split('?')[0]}" if path else ""
            return TimedOut(
                f"{self.name} ({self.base_url}) did not answer{asked} in time", node=self.name
            )
        reason = str(error) or type(error).__name__
        return NodeUnreachable(
            f"{self.name} ({self.base_url}) is unreachable: {reason}; check that ComfyUI runs "
            "there and listens on that address (--listen)",
            node=self.name,
        )

    def _check(self, response: httpx.Response, path: str) -> None:
        if 300 <= response.status_code < 400:
            target = response.headers.get("location") or "another address"
            raise ProtocolError(
                f"{self.name} answered {path} with a redirect (HTTP {response.status_code} to "
                f"{target:.120}); point the farm config at the ComfyUI server itself",
                node=self.name,
            )
        if response.status_code in (401, 403):
            raise ComfyError(
                f"{self.name} refused {path} with {response.status_code}: check the node's "
                "headers (e.g. Authorization) in the farm config",
                node=self.name,
            )
        if response.status_code >= 400:
            lines = response.text.strip().splitlines()
            text = lines[0] if lines else ""
            raise ProtocolError(
                f"{self.name} answered {path} with HTTP {response.status_code} {text}".rstrip(),
                node=self.name,
            )

    def _json(self, response: httpx.Response, path: str) -> Any:
        self._check(response, path)
        try:
            return response.json()
        except (ValueError, RecursionError):
            kind = response.headers.get("content-type") or "no content type"
            start = response.content[:40].decode("utf-8", "replace")
            raise ProtocolError(
                f"{self.name} answered {path} with something that is not JSON ({kind}, "
                f"starting {start!r}); is this a ComfyUI server?",
                node=self.name,
            ) from None


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _declared_length(response: httpx.Response) -> int:
    try:
        return max(0, int(response.headers.get("content-length") or 0))
    except ValueError:
        return 0
