"""Other front ends' dispatch policies, replayed against the same simulated farm.

- SwarmUI: every backend takes up to two prompts up front; a waiting job goes
  to the first backend in list order that has room (its users' complaint: a
  fast GPU idles while a slow one works through its share).
- Even split: job i goes to node i mod n, all queued at once
  (ComfyUI-Distributed's approach).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from imgen_tui.comfy import ComfyClient, NodeEventStream
from imgen_tui.comfy.client import new_prompt_id
from imgen_tui.comfy.events import Executing
from imgen_tui.graphs.graph import Graph


class FarmClients:
    """One client and event stream per node, and a way to wait for a prompt's end."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.clients = [ComfyClient(url, name=url) for url in urls]
        self.streams = [
            NodeEventStream(url, client.client_id)
            for url, client in zip(urls, self.clients, strict=True)
        ]
        self._finished: dict[str, asyncio.Future[None]] = {}
        self._readers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> FarmClients:
        for stream in self.streams:
            stream.start()
            self._readers.append(asyncio.create_task(self._read(stream)))
        for _ in range(1000):  # up to 10 s for every socket to open
            if all(stream.connected for stream in self.streams):
                break
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for reader in self._readers:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        for stream, client in zip(self.streams, self.clients, strict=True):
            await stream.close()
            await client.close()

    async def _read(self, stream: NodeEventStream) -> None:
        async for event in stream:
            if isinstance(event, Executing) and event.node is None and event.prompt_id:
                future = self._finished.get(event.prompt_id)
                if future is not None and not future.done():
                    future.set_result(None)

    async def submit(self, index: int, graph: Graph) -> asyncio.Future[None]:
        prompt_id = new_prompt_id()
        self.streams[index].watch(prompt_id)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._finished[prompt_id] = future
        await self.clients[index].submit(graph, prompt_id=prompt_id)
        return future


async def swarm_policy(farm: FarmClients, graphs: Sequence[Graph], per_backend: int = 2) -> None:
    waiting = list(graphs)
    in_flight: list[list[asyncio.Future[None]]] = [[] for _ in farm.clients]
    while waiting or any(in_flight):
        for index, slots in enumerate(in_flight):  # first free backend in list order
            slots[:] = [future for future in slots if not future.done()]
            while waiting and len(slots) < per_backend:
                slots.append(await farm.submit(index, waiting.pop(0)))
        pending = [future for slots in in_flight for future in slots]
        if pending:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)


async def even_split(farm: FarmClients, graphs: Sequence[Graph]) -> None:
    futures = [
        await farm.submit(index % len(farm.clients), graph) for index, graph in enumerate(graphs)
    ]
    await asyncio.gather(*futures)
