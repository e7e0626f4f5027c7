"""The farm's LoRA catalog: one entry per file with its family, trigger words and nodes.

Built from each node's `NodeLoras` (see `imgen_tui.comfy.loras`), so the
explorer and `imgen-tui loras` show the same thing: what the farm really has,
and which machine has which file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from imgen_tui.comfy.lora_answers import LoraMetadata, NodeLoras

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
