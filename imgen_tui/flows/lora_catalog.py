"""The farm's LoRA catalog: one entry per file with its family, trigger words and nodes.

Built from each node's `NodeLoras` (see `imgen_tui.comfy.loras`), so the
explorer and `imgen-tui loras` show the same thing: what the farm really has,
and which machine has which file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imgen_tui.comfy.client import ComfyClient
from imgen_tui.comfy.lora_answers import LoraMetadata, NodeLoras
from imgen_tui.comfy.lora_cache import LoraDiscoveryCache
from imgen_tui.comfy.loras import discover_loras
from imgen_tui.config import NodeConfig

FAMILY_LABELS: dict[str, str] = {
    "sd15": "SD1.5",
    "sdxl": "SDXL",
    "pony": "Pony",
    "illustrious": "Illustrious",
    "flux": "Flux",
}


@dataclass(frozen=True, slots=True)
class LoraEntry:
    """One LoRA across the farm: what it is and the nodes that have it."""

    name: str
    family: str | None
    trigger_words: tuple[str, ...]
    size: int | None
    nodes: tuple[str, ...]
    missing_on: tuple[str, ...]
    title: str | None = None

    @property
    def family_label(self) -> str | None:
        return FAMILY_LABELS.get(self.family) if self.family else None

    def availability(self) -> str:
        """'on premium, quality; missing on draft': the sentence the browser shows."""
        text = f"on {', '.join(self.nodes)}" if self.nodes else "on no node"
        if self.missing_on:
            text += f"; missing on {', '.join(self.missing_on)}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.name,
            "family": self.family,
            "title": self.title,
            "trigger_words": list(self.trigger_words),
            "size": self.size,
            "nodes": list(self.nodes),
            "missing_on": list(self.missing_on),
        }


# -- the farm's catalog ----------------------------------------------------------------


def build_catalog(nodes: Iterable[NodeLoras]) -> list[LoraEntry]:
    """One entry per file name across every node that answered, sorted by name.

    Metadata and size come from the first node that knew them; a node that did
    not answer is neither "has it" nor "missing it", so it appears in neither list.
    """
    answered = [node for node in nodes if node.error is None]
    names = sorted(
        {file.name for node in answered for file in node.files},
        key=lambda name: (name.lower(), name),
    )
    catalog: list[LoraEntry] = []
    for name in names:
        having = [node for node in answered if any(f.name == name for f in node.files)]
        metadata = next((n.metadata[name] for n in having if name in n.metadata), LoraMetadata())
        sizes = (f.size for n in having for f in n.files if f.name == name and f.size is not None)
        catalog.append(
            LoraEntry(
                name=name,
                family=metadata.family,
                trigger_words=metadata.trigger_words,
                size=next(sizes, None),
                nodes=tuple(node.node for node in having),
                missing_on=tuple(node.node for node in answered if node not in having),
                title=metadata.title,
            )
        )
    return catalog


def availability_map(catalog: Iterable[LoraEntry]) -> dict[str, dict[str, bool]]:
    """LoRA name -> node -> whether that node has it (nodes that did not answer are absent)."""
    return {
        entry.name: {
            **{node: True for node in entry.nodes},
            **{node: False for node in entry.missing_on},
        }
        for entry in catalog
    }


def short_name(name: str) -> str:
    """'styles/detail-tweaker.safetensors' -> 'detail-tweaker': what labels show."""
    base = name.rsplit("/", 1)[-1]
    for suffix in (".safetensors", ".ckpt", ".pt", ".bin"):
        base = base.removesuffix(suffix)
    return base


def filter_catalog(
    catalog: Iterable[LoraEntry],
    query: str = "",
    *,
    family: str | None = None,
    node: str | None = None,
    works_with: str | None = None,
) -> list[LoraEntry]:
    """The browser's rows: every word of `query` in the name, title or trigger words,
    of that family, on that node, and (works_with) of the checkpoint's family.

    A LoRA whose family is unknown passes `works_with`: nothing says it does
    not fit, and hiding the files without metadata would hide half a farm.
    """
    words = query.lower().split()
    rows = []
    for entry in catalog:
        haystack = " ".join((entry.name, entry.title or "", *entry.trigger_words)).lower()
        if any(word not in haystack for word in words):
            continue
        if family is not None and entry.family != family:
            continue
        if node is not None and node not in entry.nodes:
            continue
        if works_with is not None and entry.family not in (None, works_with):
            continue
        rows.append(entry)
    return rows


def nodes_for_stack(
    catalog: Sequence[LoraEntry], names: Iterable[str]
) -> tuple[list[str], dict[str, str]]:
    """The nodes that have every LoRA of a stack, and for each other node what it lacks."""
    by_name = {entry.name: entry for entry in catalog}
    wanted = list(dict.fromkeys(names))
    answered = list(dict.fromkeys(n for e in catalog for n in (*e.nodes, *e.missing_on)))
    having: list[str] = []
    lacking: dict[str, str] = {}
    for node in answered:
        missing = [n for n in wanted if n not in by_name or node not in by_name[n].nodes]
        if missing:
            lacking[node] = f"{node}: no {', '.join(short_name(n) for n in missing)}"
        else:
            having.append(node)
    return having, lacking


async def discover_farm(
    nodes: Sequence[NodeConfig],
    *,
    cache: LoraDiscoveryCache | None = None,
    refresh: bool = False,
) -> list[NodeLoras]:
    """Every node asked at once; a node that is down comes back with its `error` set."""

    async def one(node: NodeConfig) -> NodeLoras:
        async with ComfyClient(node.base_url, name=node.id, headers=node.headers) as client:
            if cache is None:
                return await discover_loras(client, node.id)
            return await cache.discover(client, node.id, refresh=refresh)

    return list(await asyncio.gather(*(one(node) for node in nodes)))


def node_errors(found: Iterable[NodeLoras]) -> Mapping[str, str]:
    return {node.node: node.error for node in found if node.error is not None}
