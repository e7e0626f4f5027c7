"""Test helpers: write UI-format workflows the way ComfyUI's frontend saves them.

`save_as_ui` turns an API graph into the file the frontend would save for it
(nodes with socket inputs, converted widgets where a literal input is wired,
widget values in `widgets_values` order with the control-after-generate,
filter and upload extras, a 0.4-style link table), so tests can check that
converting it back gives the graph again. Extra helpers splice in what a
person adds in the editor: reroutes, bypassed and muted nodes, notes,
primitives and subgraphs.
"""

from __future__ import annotations

import gzip
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from imgen_tui.graphs.widgets import default_value, input_specs, is_widget, widget_slots

FIXTURES = Path(__file__).parent / "fixtures" / "workflows"


@cache
def full_object_info() -> dict[str, Any]:
    """The recorded 780-class /object_info of ComfyUI 0.3.64 with five node packs."""
    with gzip.open(FIXTURES / "object_info_full_with_packs.json.gz", "rt", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def output_types(object_info: dict[str, Any], class_type: str) -> list[str]:
    outputs = object_info[class_type].get("output") or []
    return ["COMBO" if isinstance(kind, list) else str(kind) for kind in outputs]


class UiBuilder:
    """A UI-format workflow under construction (root graph only, 0.4 link tuples)."""

    def __init__(self, object_info: dict[str, Any]) -> None:
        self.object_info = object_info
        self.nodes: list[dict[str, Any]] = []
        self.links: list[list[Any]] = []
        self.by_id: dict[int, dict[str, Any]] = {}
        self.subgraphs: list[dict[str, Any]] = []
        self.last_link_id = 0

    # -- nodes and links ------------------------------------------------------------

    def add_node(
        self, class_type: str, node_id: int, literals: dict[str, Any], *, control: str = "fixed"
    ) -> dict[str, Any]:
        info = self.object_info[class_type]
        inputs: list[dict[str, Any]] = []
        for name, spec, _ in input_specs(info):
            if not is_widget(spec):
                inputs.append({"name": name, "type": str(spec[0]), "link": None})
        values: list[Any] | dict[str, Any] = []
        for slot in widget_slots(info):
            assert isinstance(values, list)
            if slot.kind == "value":
                values.append(literals.get(slot.input, default_value(slot.spec)))
            elif slot.kind == "control":
                values.append(control)
            elif slot.kind == "filter":
                values.append("")
            else:
                values.append("image")
        if _has_dynamic_widgets(info):
            # VHS adds per-format widgets in its script and saves all of them keyed by name.
            values = {**literals, "videopreview": {"hidden": False, "paused": False, "params": {}}}
        node = {
            "id": node_id,
            "type": class_type,
            "pos": [node_id * 10, 0],
            "size": [300, 100],
            "flags": {},
            "order": len(self.nodes),
            "mode": 0,
            "inputs": inputs,
            "outputs": [
                {"name": kind, "type": kind, "links": [], "slot_index": index}
                for index, kind in enumerate(output_types(self.object_info, class_type))
            ],
            "properties": {"Node name for S&R": class_type},
            "widgets_values": values,
        }
        self.nodes.append(node)
        self.by_id[node_id] = node
        return node

    def add_frontend_node(
        self,
        class_type: str,
        node_id: int,
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        values: list[Any] | None = None,
        mode: int = 0,
    ) -> dict[str, Any]:
        node = {
            "id": node_id,
            "type": class_type,
            "pos": [0, 0],
            "size": [100, 30],
            "flags": {},
            "order": len(self.nodes),
            "mode": mode,
            "inputs": inputs,
            "outputs": outputs,
            "properties": {},
        }
        if values is not None:
            node["widgets_values"] = values
        self.nodes.append(node)
        self.by_id[node_id] = node
        return node

    def input_slot(self, node: dict[str, Any], name: str) -> int:
        """The slot of input `name`, adding a converted-widget input if it is a literal one."""
        for index, slot in enumerate(node["inputs"]):
            if slot["name"] == name:
                return index
        spec = dict((n, s) for n, s, _ in input_specs(self.object_info[node["type"]]))[name]
        kind = "COMBO" if isinstance(spec[0], list) else str(spec[0])
        node["inputs"].append({"name": name, "type": kind, "widget": {"name": name}, "link": None})
        return len(node["inputs"]) - 1

    def link(
        self, origin: dict[str, Any], origin_slot: int, target: dict[str, Any], target_slot: int
    ) -> int:
        self.last_link_id += 1
        link_id = self.last_link_id
        kind = origin["outputs"][origin_slot]["type"]
        self.links.append([link_id, origin["id"], origin_slot, target["id"], target_slot, kind])
        origin["outputs"][origin_slot].setdefault("links", []).append(link_id)
        target["inputs"][target_slot]["link"] = link_id
        return link_id

    def unlink(self, link_id: int) -> list[Any]:
        link = next(item for item in self.links if item[0] == link_id)
        self.links.remove(link)
        self.by_id[link[1]]["outputs"][link[2]]["links"].remove(link_id)
        self.by_id[link[3]]["inputs"][link[4]]["link"] = None
        return link

    def workflow(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(uuid.UUID(int=len(self.nodes))),
            "revision": 0,
            "last_node_id": max((node["id"] for node in self.nodes), default=0),
            "last_link_id": max((link[0] for link in self.links), default=0),
            "nodes": self.nodes,
            "links": self.links,
            "groups": [],
            "config": {},
            "extra": {"ds": {"scale": 1, "offset": [0, 0]}, "frontendVersion": "1.27.10"},
            "version": 0.4,
        }
        if self.subgraphs:
            data["definitions"] = {"subgraphs": self.subgraphs}
        return data

    # -- what a person adds in the editor --------------------------------------------

    def reroute(self, link_id: int, node_id: int) -> None:
        """Put a Reroute node in the middle of a link."""
        _, origin, origin_slot, target, target_slot, kind = self.unlink(link_id)
        reroute = self.add_frontend_node(
            "Reroute",
            node_id,
            [{"name": "", "type": "*", "link": None}],
            [{"name": "", "type": kind, "links": []}],
        )
        self.link(self.by_id[origin], origin_slot, reroute, 0)
        self.link(reroute, 0, self.by_id[target], target_slot)

    def bypassed(
        self, link_id: int, class_type: str, node_id: int, literals: dict[str, Any]
    ) -> None:
        """Put a bypassed node of a pass-through class (its input 0 has the link's type) on a link."""
        _, origin, origin_slot, target, target_slot, _ = self.unlink(link_id)
        node = self.add_node(class_type, node_id, literals)
        node["mode"] = 4
        self.link(self.by_id[origin], origin_slot, node, 0)
        self.link(node, 0, self.by_id[target], target_slot)

    def primitive(self, target: dict[str, Any], name: str, value: Any, node_id: int) -> None:
        """Drive a literal input from a PrimitiveNode (the value stays in the target too, as saved)."""
        slot = self.input_slot(target, name)
        kind = target["inputs"][slot]["type"]
        primitive = self.add_frontend_node(
            "PrimitiveNode",
            node_id,
            [],
            [
                {
                    "name": "connect to widget input",
                    "type": kind,
                    "links": [],
                    "widget": {"name": name},
                }
            ],
            [value, "fixed"] if kind in ("INT", "FLOAT") else [value],
        )
        primitive["properties"] = {"Run widget replace on values": False}
        self.link(primitive, 0, target, slot)

    def note(self, node_id: int, text: str) -> None:
        self.add_frontend_node("Note", node_id, [], [], [text])


def save_as_ui(
    graph: dict[str, Any], object_info: dict[str, Any], *, control: str = "fixed"
) -> UiBuilder:
    """The builder holding what the frontend would save for `graph` (node ids must be digits)."""
    builder = UiBuilder(object_info)
    for node_id, node in graph.items():
        literals = {
            name: value["__value__"] if isinstance(value, dict) and "__value__" in value else value
            for name, value in node["inputs"].items()
            if not _is_wire(value)
        }
        builder.add_node(node["class_type"], int(node_id), literals, control=control)
    for node_id, node in graph.items():
        target = builder.by_id[int(node_id)]
        for name, value in node["inputs"].items():
            if _is_wire(value):
                builder.link(
                    builder.by_id[int(value[0])], value[1], target, builder.input_slot(target, name)
                )
    return builder


def _has_dynamic_widgets(info: dict[str, Any]) -> bool:
    return any(
        isinstance(spec, list)
        and len(spec) > 1
        and isinstance(spec[1], dict)
        and "formats" in spec[1]
        for _, spec, _ in input_specs(info)
    )


def _is_wire(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


def without_meta(graph: dict[str, Any]) -> dict[str, Any]:
    return {
        node_id: {"class_type": node["class_type"], "inputs": node["inputs"]}
        for node_id, node in graph.items()
    }


def wrap_in_subgraph(builder: UiBuilder, node_id: int, instance_id: int) -> None:
    """Move one node into a new subgraph; its wires pass through the subgraph's inputs and outputs."""
    node = builder.by_id.pop(node_id)
    builder.nodes.remove(node)
    sub_id = str(uuid.UUID(int=instance_id))
    instance = builder.add_frontend_node(sub_id, instance_id, [], [])
    inner_links: list[dict[str, Any]] = []
    sub_inputs: list[dict[str, Any]] = []
    sub_outputs: list[dict[str, Any]] = []
    next_inner = 1
    for slot_index, slot in enumerate(node["inputs"]):
        link_id = slot.get("link")
        if link_id is None:
            continue
        link = next(item for item in builder.links if item[0] == link_id)
        position = len(instance["inputs"])
        instance["inputs"].append({"name": slot["name"], "type": slot["type"], "link": link_id})
        link[3], link[4] = instance_id, position
        inner_id = 10_000 + next_inner
        next_inner += 1
        inner_links.append(
            {
                "id": inner_id,
                "origin_id": -10,
                "origin_slot": position,
                "target_id": node_id,
                "target_slot": slot_index,
                "type": slot["type"],
            }
        )
        sub_inputs.append(
            {
                "id": str(uuid.UUID(int=inner_id)),
                "name": slot["name"],
                "type": slot["type"],
                "linkIds": [inner_id],
            }
        )
        slot["link"] = inner_id
    for slot_index, slot in enumerate(node["outputs"]):
        outer = list(slot.get("links") or [])
        instance["outputs"].append({"name": slot["name"], "type": slot["type"], "links": outer})
        for link in builder.links:
            if link[0] in outer:
                link[1], link[2] = instance_id, slot_index
        inner_id = 10_000 + next_inner
        next_inner += 1
        inner_links.append(
            {
                "id": inner_id,
                "origin_id": node_id,
                "origin_slot": slot_index,
                "target_id": -20,
                "target_slot": slot_index,
                "type": slot["type"],
            }
        )
        sub_outputs.append(
            {
                "id": str(uuid.UUID(int=inner_id)),
                "name": slot["name"],
                "type": slot["type"],
                "linkIds": [inner_id],
            }
        )
        slot["links"] = [inner_id]
    builder.subgraphs.append(
        {
            "id": sub_id,
            "version": 1,
            "name": f"wrapped {node['type']}",
            "revision": 0,
            "config": {},
            "state": {
                "lastNodeId": node_id,
                "lastLinkId": 10_000 + next_inner,
                "lastGroupId": 0,
                "lastRerouteId": 0,
            },
            "inputNode": {"id": -10, "bounding": [0, 0, 100, 100]},
            "outputNode": {"id": -20, "bounding": [500, 0, 100, 100]},
            "inputs": sub_inputs,
            "outputs": sub_outputs,
            "widgets": [],
            "nodes": [node],
            "links": inner_links,
            "groups": [],
        }
    )


def renamed(graph: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """`graph` with node `old` under the id `new` and every wire to it following."""
    result: dict[str, Any] = {}
    for node_id, node in graph.items():
        inputs = {
            name: [new, value[1]] if _is_wire(value) and value[0] == old else value
            for name, value in node["inputs"].items()
        }
        result[new if node_id == old else node_id] = {**node, "inputs": inputs}
    return result


def with_defaults(graph: dict[str, Any], object_info: dict[str, Any]) -> dict[str, Any]:
    """`graph` with every unset literal input at its default, as a frontend-made prompt has it."""
    result = {}
    for node_id, node in graph.items():
        inputs = dict(node["inputs"])
        for name, spec, _ in input_specs(object_info[node["class_type"]]):
            if is_widget(spec) and name not in inputs:
                inputs[name] = default_value(spec)
        result[node_id] = {**node, "inputs": inputs}
    return result
