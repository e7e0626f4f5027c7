"""The shape of an API-format graph and the few questions every module asks of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeGuard

#: node id -> {"class_type": str, "inputs": {name: literal | [node_id, output_index]}}
Graph = dict[str, Any]

Link = list[Any]


class GraphError(ValueError):
    """A graph cannot take the requested change; the message says which node and why."""


def is_link(value: object) -> TypeGuard[Link]:
    """An input wired to another node's output: `[node_id, output_index]`."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def iter_nodes(graph: object) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(node id, class type, inputs) of every well-formed node; anything else is skipped."""
    if not isinstance(graph, dict):
        return
    for node_id, node in graph.items():
        if not isinstance(node_id, str) or not isinstance(node, dict):
            continue
        class_type, inputs = node.get("class_type"), node.get("inputs")
        if isinstance(class_type, str) and isinstance(inputs, dict):
            yield node_id, class_type, inputs


def node_inputs(graph: Graph, node_id: str) -> dict[str, Any] | None:
    node = graph.get(node_id)
    if isinstance(node, dict) and isinstance(node.get("inputs"), dict):
        return node["inputs"]  # type: ignore[no-any-return]
    return None


def next_node_id(graph: Graph) -> int:
    numeric = [int(node_id) for node_id in graph if isinstance(node_id, str) and node_id.isdigit()]
    return max(numeric, default=0) + 1
