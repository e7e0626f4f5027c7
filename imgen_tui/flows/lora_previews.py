"""The explorer's LoRA preview pictures: fetched from a node that has the file, once.

The browser's cursor moves over the list much faster than a node answers, so
every picture is asked for at most once per node and file and kept decoded
(small: ComfyUI's previews are thumbnails, and they are scaled to
`PREVIEW_SIDE` here). A node without a preview, an older server without the
route and a node that dies mid-answer all come back as None — "no picture",
never an error — and None is cached too: asking again after every cursor move
would only repeat the 404. `forget` (the explorer's refresh) starts over.

Fetching is a network wait; decoding runs in a thread.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping, Sequence

from PIL import Image

from imgen_tui.comfy.client import ComfyClient
from imgen_tui.comfy.lora_answers import LoraFile, NodeLoras
from imgen_tui.comfy.loras import lora_preview
from imgen_tui.config import NodeConfig

#: the longest side a preview is kept at: the right column is about 40 cells wide
PREVIEW_SIDE = 256


class LoraPreviews:
    def __init__(self, nodes: Sequence[NodeConfig]) -> None:
        self.nodes: dict[str, NodeConfig] = {node.id: node for node in nodes}
        self.found: Mapping[str, NodeLoras] = {}
        self._pictures: dict[tuple[str, str], Image.Image | None] = {}
        self._fetching: dict[tuple[str, str], asyncio.Task[Image.Image | None]] = {}

    def know(self, found: Sequence[NodeLoras]) -> None:
        """What each node said it has (the catalog's discovery): where a file can be asked for."""
        self.found = {node.node: node for node in found if node.error is None}

    def forget(self) -> None:
        self._pictures.clear()

    def close(self) -> None:
        """Stop what is still being fetched (the screen is gone: nobody will look)."""
        for task in self._fetching.values():
            task.cancel()
        self._fetching.clear()

    def source(self, name: str) -> tuple[str, LoraFile] | None:
        """The first node (in farm order) that listed the file, with its listing."""
        for node_id in self.nodes:
            listed = self.found.get(node_id)
            file = next((f for f in listed.files if f.name == name), None) if listed else None
            if file is not None:
                return node_id, file
        return None

    def asked(self, name: str) -> bool:
        """Whether the answer for `name` is in hand (picture or None): asking sends nothing."""
        where = self.source(name)
        return where is None or (where[0], name) in self._pictures

    async def picture(self, name: str) -> Image.Image | None:
        """The preview of `name` from the first node that has it, or None; one fetch per node+file.

        Callers asking for the same file at once share one request.
        """
        where = self.source(name)
        if where is None:
            return None
        node_id, file = where
        key = (node_id, name)
        if key in self._pictures:
            return self._pictures[key]
        task = self._fetching.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch(node_id, file), name=f"preview:{name}")
            self._fetching[key] = task
        # shielded: a caller that moves on (the cursor left the row) does not cancel the
        # fetch, whose answer is kept for when the cursor comes back
        return await asyncio.shield(task)

    async def _fetch(self, node_id: str, file: LoraFile) -> Image.Image | None:
        key = (node_id, file.name)
        node = self.nodes[node_id]
        try:
            async with ComfyClient(node.base_url, name=node.id, headers=node.headers) as client:
                data = await lora_preview(client, file)
            picture = None if data is None else await asyncio.to_thread(decode_preview, data)
            self._pictures[key] = picture
            return picture
        finally:
            self._fetching.pop(key, None)


def decode_preview(data: bytes) -> Image.Image | None:
    """The picture, scaled down to `PREVIEW_SIDE`; None for bytes that are no picture."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            picture = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    return picture
