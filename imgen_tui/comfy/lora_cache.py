"""Each node's LoRA discovery kept on disk, checked against the node's own loader list.

Reading every LoRA's safetensors header costs one request per file; a farm
with hundreds of LoRAs should not pay that on every start. The cache keeps one
node's `NodeLoras` beside the file list its `/object_info/LoraLoader` gave; the
next discovery asks only that list and reuses the rest while it is unchanged
(a file added or removed re-reads the node). `refresh` ignores the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from imgen_tui.comfy.client import ComfyClient
from imgen_tui.comfy.lora_answers import LoraFile, LoraMetadata, NodeLoras
from imgen_tui.comfy.loras import discover_loras

log = logging.getLogger(__name__)

CACHE_VERSION = 1


class LoraDiscoveryCache:
    """One JSON file per node (by id and address) in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, client: ComfyClient, node: str) -> Path:
        address = hashlib.sha256(client.base_url.encode()).hexdigest()[:12]
        return self.folder / f"{node}-{address}.json"

    async def discover(
        self, client: ComfyClient, node: str | None = None, *, refresh: bool = False
    ) -> NodeLoras:
        node = node or client.name
        path = self.path_for(client, node)
        known = None if refresh else await asyncio.to_thread(_read, path)
        found = await discover_loras(client, node, known=known)
        if found.error is None and "cache" not in found.sources:
            await asyncio.to_thread(_write, path, found)
        return found


def _read(path: Path) -> NodeLoras | None:
    """The cached discovery, or None when there is none or it cannot be read (never fatal)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return node_loras_from_json(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as error:
        log.warning("ignoring the LoRA cache %s: %s", path, error)
        return None


def _write(path: Path, found: NodeLoras) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(node_loras_to_json(found)), encoding="utf-8")
        temporary.replace(path)
    except OSError as error:  # a read-only cache costs speed, not the answer
        log.warning("cannot write the LoRA cache %s: %s", path, error)


def node_loras_to_json(found: NodeLoras) -> dict[str, Any]:
    return {
        "version": CACHE_VERSION,
        "node": found.node,
        "sources": list(found.sources),
        "files": [
            {"name": f.name, "size": f.size, "modified": f.modified, "path_index": f.path_index}
            for f in found.files
        ],
        "metadata": {
            name: {
                "family": m.family,
                "trigger_words": list(m.trigger_words),
                "title": m.title,
                "base_model": m.base_model,
            }
            for name, m in found.metadata.items()
        },
    }


def node_loras_from_json(data: dict[str, Any]) -> NodeLoras | None:
    if data.get("version") != CACHE_VERSION:
        return None
    return NodeLoras(
        node=str(data["node"]),
        files=tuple(LoraFile(**item) for item in data["files"]),
        metadata={
            str(name): LoraMetadata(
                family=m["family"],
                trigger_words=tuple(m["trigger_words"]),
                title=m["title"],
                base_model=m["base_model"],
            )
            for name, m in data["metadata"].items()
        },
        sources=tuple(data["sources"]),
    )
