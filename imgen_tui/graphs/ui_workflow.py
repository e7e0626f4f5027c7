"""The UI-format workflow of an API-format graph: what ComfyUI opens when a PNG is dropped on it.

ComfyUI's SaveImage writes the graph it ran (the `prompt` chunk) and, for
each key of the request's `extra_data.extra_pnginfo`, one more chunk. Its
editor loads only the `workflow` chunk, the UI format: positioned nodes,
numbered links and each node's widget values in the order of its inputs in
`/object_info`. Without it, a dropped picture opens nothing. This builds
that document from the graph, laid out left to right by depth (loaders on
the left, SaveImage on the right), so the picture opens as a readable graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imgen_tui.graphs.graph import Graph, is_link, iter_nodes

#: input types the editor shows as a widget on the node (the rest are sockets)
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
#: inputs that the editor follows with a "control after generate" widget
SEED_INPUTS = frozenset({"seed", "noise_seed"})
COLUMN_WIDTH, ROW_GAP, NODE_WIDTH = 420, 40, 340
_TITLE_HEIGHT, _SLOT_HEIGHT = 30, 26


def ui_workflow(graph: Graph, object_info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A UI-format workflow (version 0.4) of `graph`; `object_info` gives input order and types.

    A class the node does not describe keeps the graph's own input order,
    with every literal input as a widget.
    """
    info = object_info or {}
    nodes = list(iter_nodes(graph))
    numbers = _ui_ids(node_id for node_id, _, _ in nodes)
    depth = _depths(graph)
    layouts = {
        node_id: _layout(class_type, inputs, info.get(class_type))
        for node_id, class_type, inputs in nodes
    }

    links: list[list[Any]] = []
    outputs: dict[str, dict[int, list[int]]] = {node_id: {} for node_id, _, _ in nodes}
    input_links: dict[tuple[str, str], int] = {}
    for node_id, _, inputs in nodes:
        for name in layouts[node_id].sockets:
            value = inputs.get(name)
            if not is_link(value) or value[0] not in numbers:
                continue
            source, slot = value[0], value[1]
            link_id = len(links) + 1
            target_slot = layouts[node_id].sockets.index(name)
            kind = layouts[source].output_type(slot)
            links.append([link_id, numbers[source], slot, numbers[node_id], target_slot, kind])
            outputs[source].setdefault(slot, []).append(link_id)
            input_links[(node_id, name)] = link_id

    rows: dict[int, float] = {}
    ui_nodes = []
    for order, (node_id, class_type, _) in enumerate(
        sorted(nodes, key=lambda node: (depth[node[0]], _numeric(node[0])))
    ):
        layout = layouts[node_id]
        column = depth[node_id]
        height = _TITLE_HEIGHT + _SLOT_HEIGHT * max(
            len(layout.sockets) + len(layout.widget_values), len(layout.output_types), 1
        )
        y = rows.get(column, 0.0)
        rows[column] = y + height + ROW_GAP
        ui_nodes.append(
            {
                "id": numbers[node_id],
                "type": class_type,
                "pos": [column * COLUMN_WIDTH, y],
                "size": [NODE_WIDTH, height],
                "flags": {},
                "order": order,
                "mode": 0,
                "inputs": [
                    {
                        "name": name,
                        "type": layout.socket_types[index],
                        "link": input_links.get((node_id, name)),
                    }
                    for index, name in enumerate(layout.sockets)
                ],
                "outputs": [
                    {
                        "name": layout.output_names[slot],
                        "type": kind,
                        "links": outputs[node_id].get(slot, []),
                        "slot_index": slot,
                    }
                    for slot, kind in enumerate(layout.output_types_for(outputs[node_id]))
                ],
                "properties": {"Node name for S&R": class_type},
                "widgets_values": layout.widget_values,
            }
        )
    return {
        "last_node_id": max(numbers.values(), default=0),
        "last_link_id": len(links),
        "nodes": ui_nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"imgen_tui": "laid out from the API graph"},
        "version": 0.4,
    }


class _Layout:
    """One node's sockets, widget values and outputs, as the editor orders them."""

    def __init__(
        self,
        sockets: list[str],
        socket_types: list[str],
        widget_values: list[Any],
        output_types: list[str],
        output_names: list[str],
    ) -> None:
        self.sockets = sockets
        self.socket_types = socket_types
        self.widget_values = widget_values
        self.output_types = output_types
        self.output_names = output_names

    def output_type(self, slot: int) -> str:
        return self.output_types[slot] if 0 <= slot < len(self.output_types) else "*"

    def output_types_for(self, used: Mapping[int, list[int]]) -> list[str]:
        """The declared outputs, or as many `*` outputs as links use (an unknown class)."""
        count = max(len(self.output_types), max(used, default=-1) + 1)
        while len(self.output_names) < count:
            self.output_names.append(self.output_type(len(self.output_names)))
        return [self.output_type(slot) for slot in range(count)]


def _layout(class_type: str, inputs: Mapping[str, Any], spec: Any) -> _Layout:
    declared = _declared_inputs(spec)
    sockets: list[str] = []
    socket_types: list[str] = []
    widgets: list[Any] = []
    if declared:
        for name, kind, options in declared:
            value = inputs.get(name)
            if kind in WIDGET_TYPES and not options.get("forceInput"):
                if is_link(value):  # a widget fed by a link: a socket, and its widget slot
                    sockets.append(name)
                    socket_types.append(kind)
                    widgets.append(None)
                else:
                    widgets.append(value if name in inputs else options.get("default"))
                if name in SEED_INPUTS or options.get("control_after_generate"):
                    widgets.append("fixed")  # the graph that ran: never re-roll its seed
            else:
                sockets.append(name)
                socket_types.append(kind)
        # an input the class does not declare (a newer graph on an older node) still shows
        for name, value in inputs.items():
            if name not in {entry[0] for entry in declared} and is_link(value):
                sockets.append(name)
                socket_types.append("*")
    else:
        for name, value in inputs.items():
            if is_link(value):
                sockets.append(name)
                socket_types.append("*")
            else:
                widgets.append(value)
    outputs, names = _declared_outputs(spec)
    return _Layout(sockets, socket_types, widgets, outputs, names)


def _declared_inputs(spec: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, type, options) in `/object_info` order: `input_order` when the server sends it."""
    if not isinstance(spec, dict) or not isinstance(spec.get("input"), dict):
        return []
    sections = spec["input"]
    given = spec.get("input_order")
    order: dict[str, Any] = given if isinstance(given, dict) else {}
    found: list[tuple[str, str, dict[str, Any]]] = []
    for section in ("required", "optional"):
        entries = sections.get(section)
        if not isinstance(entries, dict):
            continue
        listed = order.get(section)
        names: list[Any] = listed if isinstance(listed, list) else list(entries)
        for name in names:
            entry = entries.get(name)
            if not isinstance(entry, list) or not entry:
                continue
            kind = "COMBO" if isinstance(entry[0], list) else str(entry[0])
            options = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
            found.append((str(name), kind, options))
    return found


def _declared_outputs(spec: Any) -> tuple[list[str], list[str]]:
    if not isinstance(spec, dict) or not isinstance(spec.get("output"), list):
        return [], []
    kinds = ["COMBO" if isinstance(kind, list) else str(kind) for kind in spec["output"]]
    names = spec.get("output_name")
    if not isinstance(names, list) or len(names) != len(kinds):
        names = kinds
    return kinds, [str(name) for name in names]


def _depths(graph: Graph) -> dict[str, int]:
    """How many links lie between a node and the graph's sources (loaders are 0)."""
    nodes = {node_id: inputs for node_id, _, inputs in iter_nodes(graph)}
    depth: dict[str, int] = {}

    def visit(node_id: str, trail: frozenset[str]) -> int:
        if node_id in depth:
            return depth[node_id]
        if node_id in trail:  # a cycle (ComfyUI would refuse it): stop, do not recurse forever
            return 0
        sources = [
            value[0] for value in nodes[node_id].values() if is_link(value) and value[0] in nodes
        ]
        result = 1 + max((visit(source, trail | {node_id}) for source in sources), default=-1)
        depth[node_id] = result
        return result

    for node_id in nodes:
        visit(node_id, frozenset())
    return depth


def _ui_ids(node_ids: Any) -> dict[str, int]:
    """The editor numbers nodes: digit ids keep their number, the others get the next ones."""
    ids = list(node_ids)
    numbers: dict[str, int] = {}
    for node_id in ids:
        if node_id.isdigit() and int(node_id) not in numbers.values():
            numbers[node_id] = int(node_id)
    next_number = max(numbers.values(), default=0) + 1
    for node_id in ids:
        if node_id not in numbers:  # not a number, or one ("01") another node has ("1")
            numbers[node_id] = next_number
            next_number += 1
    return numbers


def _numeric(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 62, node_id)
