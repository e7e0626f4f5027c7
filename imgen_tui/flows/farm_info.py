"""Each node's `/object_info`, asked for once, for converting, typing and Ready/Missing.

A UI-format workflow is converted with the classes of the node that will run
it or, before one is chosen, with every class any node has (the first node
that has a class describes it). A node that does not answer is kept with its
error, so a listing says "unreachable" instead of "Missing everything".
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imgen_tui.comfy import ComfyClient, ComfyError
from imgen_tui.config import FarmConfig


@dataclass(frozen=True)
class FarmObjectInfo:
    """node id -> its classes; node id -> why it gave none."""

    classes: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    order: tuple[str, ...] = ()

    def merged(self) -> dict[str, Any] | None:
        """Every class any node has (None when no node answered)."""
        if not self.classes:
            return None
        merged: dict[str, Any] = {}
        for node_id in self.order:
            for name, spec in self.classes.get(node_id, {}).items():
                merged.setdefault(name, spec)
        return merged

    @classmethod
    def from_dump(cls, classes: Mapping[str, Any], name: str = "dump") -> FarmObjectInfo:
        return cls({name: dict(classes)}, {}, (name,))


async def farm_object_info(farm: FarmConfig) -> FarmObjectInfo:
    async def ask(node_id: str, base_url: str, headers: Mapping[str, str]) -> Any:
        async with ComfyClient(base_url, name=node_id, headers=headers) as client:
            return await client.object_info()

    results = await asyncio.gather(
        *(ask(node.id, node.base_url, node.headers) for node in farm.nodes),
        return_exceptions=True,
    )
    classes: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for node, result in zip(farm.nodes, results, strict=True):
        if isinstance(result, ComfyError):
            errors[node.id] = str(result)
        elif isinstance(result, BaseException):
            raise result
        else:
            classes[node.id] = result.classes
    return FarmObjectInfo(classes, errors, tuple(node.id for node in farm.nodes))
