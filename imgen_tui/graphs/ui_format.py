"""UI-format workflow (what ComfyUI's frontend saves) → API-format graph (what /prompt takes).

This follows the frontend's own `graphToPrompt` (ComfyUI_frontend
src/utils/executionUtil.ts and litegraph's ExecutableNodeDTO), step for step:

- every node of the root graph and of each subgraph instance
  (`definitions.subgraphs`) becomes one entry, subgraph nodes under the
  execution id `instance:inner` (nested instances add more parts);
- widget values are named through the class's `/object_info` input order
  (graphs/widgets.py), a list value is wrapped as `{"__value__": [...]}`;
- a link is followed upstream: through `Reroute` and other frontend-only
  relays, through a bypassed node (mode 4) by the first input whose type
  matches, through subgraph boundaries; a `PrimitiveNode` gives its value;
- frontend-only nodes (notes, reroutes, primitives) and muted nodes (mode 2)
  are not sent, and an input wired to a node that is not sent is dropped.

A class the `/object_info` does not know cannot have its widget values named;
such a node keeps only its links and is listed in `missing_classes`, so the
caller can say "needs the custom node class 'X', which no node has" instead
of guessing. The function is pure: no I/O, the object_info is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from imgen_tui.graphs.graph import Graph, GraphError
from imgen_tui.graphs.widgets import CONTROL_MODES, assign_widget_values

WorkflowFormat = Literal["ui", "api"]

MODE_MUTED = 2  # LGraphEventMode.NEVER
MODE_BYPASSED = 4  # LGraphEventMode.BYPASS
SUBGRAPH_INPUT_NODE = -10
SUBGRAPH_OUTPUT_NODE = -20

#: nodes that live only in the frontend (their class is never on a server)
RELAY_CLASSES = frozenset({"Reroute", "Reroute (rgthree)"})
PRIMITIVE_CLASSES = frozenset({"PrimitiveNode"})
SET_GET_CLASSES = frozenset({"SetNode", "GetNode"})
DISPLAY_ONLY_CLASSES = frozenset(
    {
        "Note",
        "MarkdownNote",
        "Label (rgthree)",
        "Bookmark (rgthree)",
        "Fast Groups Bypasser (rgthree)",
        "Fast Groups Muter (rgthree)",
        "Fast Bypasser (rgthree)",
        "Fast Muter (rgthree)",
        "Note Plus (mtb)",
    }
)
FRONTEND_ONLY_CLASSES = RELAY_CLASSES | PRIMITIVE_CLASSES | SET_GET_CLASSES | DISPLAY_ONLY_CLASSES
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_MAX_DEPTH = 32


class ConversionError(GraphError):
    """The workflow cannot be turned into a prompt; the message is one sentence naming the node."""


@dataclass(frozen=True)
class Conversion:
    """The API graph and what the caller must know about it."""

    graph: Graph
    #: node classes the object_info lacks, sorted (their widget values were not named)
    missing_classes: tuple[str, ...] = ()
    #: execution id -> {input: "randomize" | "fixed" | ...} from the control-after-generate widgets
    controls: dict[str, dict[str, str]] = field(default_factory=dict)


def detect_format(data: object) -> WorkflowFormat | None:
    """'ui' for a saved workflow (`nodes` + `links`), 'api' for a prompt graph, else None."""
    if isinstance(data, dict):
        if isinstance(data.get("nodes"), list) and "links" in data:
            return "ui"
        nodes = [value for value in data.values() if isinstance(value, dict)]
        if nodes and len(nodes) == len(data) and all("class_type" in node for node in nodes):
            return "api"
    return None


def ui_to_api(workflow: Mapping[str, Any], object_info: Mapping[str, Any]) -> Conversion:
    """Convert a UI-format workflow exactly as the frontend does when it queues it."""
    if detect_format(workflow) != "ui":
        raise ConversionError(
            "the file is not a UI-format workflow (it needs 'nodes' and 'links' lists)"
        )
    return _Converter(workflow, object_info).run()


@dataclass(frozen=True, eq=False)
class _Scope:
    """One graph level: the root, or one instance of a subgraph definition."""

    nodes: dict[Any, dict[str, Any]]
    links: dict[Any, tuple[Any, int, Any, int, Any]]  # id -> origin, slot, target, slot, type
    path: tuple[str, ...]
    definition: Mapping[str, Any] | None = None
    parent: _Scope | None = None
    instance: dict[str, Any] | None = None

    def execution_id(self, node: Mapping[str, Any]) -> str:
        return ":".join((*self.path, str(node.get("id"))))


_Resolved = tuple[Literal["link"], str, int] | tuple[Literal["value"], Any]


class _Converter:
    def __init__(self, workflow: Mapping[str, Any], object_info: Mapping[str, Any]) -> None:
        self.workflow = workflow
        self.object_info = object_info
        definitions = workflow.get("definitions")
        subgraphs = definitions.get("subgraphs") if isinstance(definitions, Mapping) else None
        self.subgraphs: dict[str, Mapping[str, Any]] = {
            str(sub["id"]): sub
            for sub in subgraphs or ()
            if isinstance(sub, Mapping) and "id" in sub
        }
        extra = workflow.get("extra")
        groups = extra.get("groupNodes") if isinstance(extra, Mapping) else None
        self.group_nodes = set(groups) if isinstance(groups, Mapping) else set()
        self.output: Graph = {}
        self.missing: set[str] = set()
        self.controls: dict[str, dict[str, str]] = {}
        #: the control of the primitive the input being resolved came from, if any
        self.primitive_control: str | None = None
        self.children: dict[int, _Scope] = {}

    def run(self) -> Conversion:
        root = _scope(self.workflow, (), None, None, None)
        self._emit_scope(root, depth=0, silenced=False)
        for node in self.output.values():
            inputs = node["inputs"]
            for name in [n for n, v in inputs.items() if _is_wire(v) and v[0] not in self.output]:
                del inputs[name]
        return Conversion(self.output, tuple(sorted(self.missing)), self.controls)

    # -- walking the nodes ---------------------------------------------------------------

    def _emit_scope(self, scope: _Scope, depth: int, silenced: bool) -> None:
        if depth > _MAX_DEPTH:
            raise ConversionError("the workflow's subgraphs contain themselves")
        for node in scope.nodes.values():
            class_type = _class_of(node)
            where = f"node {scope.execution_id(node)}"
            if class_type in self.subgraphs:
                child = self._child(scope, node)
                off = silenced or node.get("mode") in (MODE_MUTED, MODE_BYPASSED)
                self._emit_scope(child, depth + 1, off)
                continue
            if class_type in self.group_nodes or class_type.startswith("workflow>"):
                raise ConversionError(
                    f"{where} is a legacy group node ({class_type!r}); open the workflow in "
                    "ComfyUI, convert the group node to a subgraph and save it again"
                )
            if _UUID.match(class_type):
                raise ConversionError(
                    f"{where} is a subgraph whose definition ({class_type}) is not in the file"
                )
            if not class_type:
                raise ConversionError(f"{where} has no type")
            if self._is_frontend_only(class_type):
                continue
            if silenced or node.get("mode") in (MODE_MUTED, MODE_BYPASSED):
                continue
            self._emit_node(scope, node, class_type)

    def _emit_node(self, scope: _Scope, node: dict[str, Any], class_type: str) -> None:
        execution_id = scope.execution_id(node)
        class_info = self.object_info.get(class_type)
        inputs: dict[str, Any] = {}
        if isinstance(class_info, Mapping):
            sent, controls = assign_widget_values(class_info, node.get("widgets_values"))
            inputs.update({name: _wrap(value) for name, value in sent.items()})
            if controls:
                self.controls[execution_id] = controls
        else:
            self.missing.add(class_type)
        for index, slot in enumerate(_slots(node, "inputs")):
            self.primitive_control = None
            resolved = self._resolve_input(scope, node, index, set(), None)
            name = slot.get("name")
            if resolved is None or not isinstance(name, str):
                continue
            if resolved[0] == "value":
                inputs[name] = _wrap(resolved[1])
                control = self._primitive_control_taken()
                if control is not None:
                    self.controls.setdefault(execution_id, {})[name] = control
            else:
                inputs[name] = [resolved[1], resolved[2]]
        title = node.get("title")
        if not isinstance(title, str) or not title:
            info_title = class_info.get("display_name") if isinstance(class_info, Mapping) else None
            title = info_title if isinstance(info_title, str) and info_title else class_type
        self.output[execution_id] = {
            "inputs": inputs,
            "class_type": class_type,
            "_meta": {"title": title},
        }

    def _primitive_control_taken(self) -> str | None:
        """The control of the primitive the last input resolved through (then forgotten)."""
        control, self.primitive_control = self.primitive_control, None
        return control

    def _is_frontend_only(self, class_type: str) -> bool:
        return class_type in FRONTEND_ONLY_CLASSES and class_type not in self.object_info

    def _child(self, scope: _Scope, instance: dict[str, Any]) -> _Scope:
        cached = self.children.get(id(instance))
        if cached is None:
            definition = self.subgraphs[_class_of(instance)]
            path = (*scope.path, str(instance.get("id")))
            cached = _scope(definition, path, definition, scope, instance)
            self.children[id(instance)] = cached
        return cached

    # -- following links (ExecutableNodeDTO.resolveInput / resolveOutput) ------------------

    def _resolve_input(
        self,
        scope: _Scope,
        node: dict[str, Any],
        slot: int,
        visited: set[str],
        wanted_type: Any,
    ) -> _Resolved | None:
        key = f"{id(scope)}:{node.get('id')}[I]{slot}"
        if key in visited:
            raise ConversionError(
                f"node {scope.execution_id(node)} is wired in a loop "
                f"(input {slot} leads back to it)"
            )
        visited.add(key)
        slots = _slots(node, "inputs")
        if slot >= len(slots):
            return None
        link = scope.links.get(slots[slot].get("link"))
        if link is None:
            return None
        origin_id, origin_slot = link[0], link[1]
        if scope.instance is not None and origin_id == SUBGRAPH_INPUT_NODE:
            return self._resolve_from_instance(scope, origin_slot, visited)
        origin = scope.nodes.get(origin_id)
        if origin is None:
            return None
        return self._resolve_output(
            scope, origin, origin_slot, wanted_type or slots[slot].get("type"), visited
        )

    def _resolve_from_instance(
        self, scope: _Scope, origin_slot: int, visited: set[str]
    ) -> _Resolved | None:
        """A link from the subgraph's input node: continue outside, on the instance."""
        instance, parent = scope.instance, scope.parent
        assert instance is not None and parent is not None
        outer = _slots(instance, "inputs")
        if origin_slot >= len(outer):
            return None
        if outer[origin_slot].get("link") is None:
            return _instance_widget_value(instance, origin_slot)
        return self._resolve_input(parent, instance, origin_slot, visited, None)

    def _resolve_output(
        self,
        scope: _Scope,
        node: dict[str, Any],
        slot: int,
        wanted_type: Any,
        visited: set[str],
    ) -> _Resolved | None:
        key = f"{id(scope)}:{node.get('id')}[O]{slot}"
        if key in visited:
            raise ConversionError(f"node {scope.execution_id(node)} is wired in a loop")
        visited.add(key)
        class_type = _class_of(node)
        if node.get("mode") == MODE_BYPASSED:
            index = _bypass_slot(node, slot, wanted_type)
            return None if index < 0 else self._resolve_input(scope, node, index, visited, None)
        if class_type in self.subgraphs:
            return self._resolve_subgraph_output(scope, node, slot, wanted_type, visited)
        if self._is_frontend_only(class_type):
            if class_type in PRIMITIVE_CLASSES:
                values = node.get("widgets_values")
                if not isinstance(values, list) or not values:
                    return None
                # The primitive's own "control after generate" governs the value it feeds.
                if len(values) > 1 and values[1] in CONTROL_MODES:
                    self.primitive_control = str(values[1])
                return ("value", values[0])
            if class_type == "GetNode":
                setter = _setter_for(scope, node)
                if setter is None:
                    return None
                return self._resolve_input(scope, setter, 0, visited, wanted_type)
            if slot < len(_slots(node, "inputs")):
                return self._resolve_input(scope, node, slot, visited, wanted_type)
            return None
        return ("link", scope.execution_id(node), int(slot))

    def _resolve_subgraph_output(
        self,
        scope: _Scope,
        instance: dict[str, Any],
        slot: int,
        wanted_type: Any,
        visited: set[str],
    ) -> _Resolved | None:
        child = self._child(scope, instance)
        for origin_id, origin_slot, target_id, target_slot, _ in child.links.values():
            if target_id == SUBGRAPH_OUTPUT_NODE and target_slot == slot:
                if origin_id == SUBGRAPH_INPUT_NODE:  # an input wired straight to an output
                    return self._resolve_from_instance(child, origin_slot, visited)
                inner = child.nodes.get(origin_id)
                if inner is None:
                    return None
                return self._resolve_output(child, inner, origin_slot, wanted_type, visited)
        return None


# -- reading the saved shapes ------------------------------------------------------------


def _scope(
    graph: Mapping[str, Any],
    path: tuple[str, ...],
    definition: Mapping[str, Any] | None,
    parent: _Scope | None,
    instance: dict[str, Any] | None,
) -> _Scope:
    nodes: dict[Any, dict[str, Any]] = {}
    raw_nodes = graph.get("nodes")
    if not isinstance(raw_nodes, list):
        where = f"subgraph {definition.get('name') or definition.get('id')}" if definition else ""
        raise ConversionError(f"the workflow's {where or 'root'} 'nodes' is not a list")
    for node in raw_nodes:
        if not isinstance(node, dict) or "id" not in node:
            raise ConversionError(f"the workflow has a node without an id: {str(node)[:60]}")
        nodes[node["id"]] = node
    links: dict[Any, tuple[Any, int, Any, int, Any]] = {}
    for link in graph.get("links") or ():
        parsed = _parse_link(link)
        if parsed is not None:
            links[parsed[0]] = parsed[1:]
    return _Scope(nodes, links, path, definition, parent, instance)


def _parse_link(link: object) -> tuple[Any, Any, int, Any, int, Any] | None:
    """`[id, origin, slot, target, slot, type]` (format 0.4) or the object form (v1, subgraphs)."""
    if isinstance(link, list) and len(link) >= 5:
        link_id, origin, origin_slot, target, target_slot = link[:5]
        link_type = link[5] if len(link) > 5 else None
    elif isinstance(link, Mapping):
        link_id, origin = link.get("id"), link.get("origin_id")
        origin_slot = link.get("origin_slot")
        target, target_slot, link_type = (
            link.get("target_id"),
            link.get("target_slot"),
            link.get("type"),
        )
    else:
        return None
    if not isinstance(origin_slot, int) or not isinstance(target_slot, int):
        return None
    return link_id, origin, origin_slot, target, target_slot, link_type


def _class_of(node: Mapping[str, Any]) -> str:
    value = node.get("type") or node.get("class_type")
    return value if isinstance(value, str) else ""


def _slots(node: Mapping[str, Any], side: str) -> list[dict[str, Any]]:
    slots = node.get(side)
    if not isinstance(slots, list):
        return []
    return [slot if isinstance(slot, dict) else {} for slot in slots]


def _instance_widget_value(instance: Mapping[str, Any], slot: int) -> _Resolved | None:
    """The promoted widget of an unwired subgraph input: its value in the instance's widgets."""
    slots = _slots(instance, "inputs")
    if not isinstance(slots[slot].get("widget"), Mapping):
        return None
    position = sum(1 for other in slots[:slot] if isinstance(other.get("widget"), Mapping))
    values = instance.get("widgets_values")
    if isinstance(values, list) and position < len(values):
        return ("value", values[position])
    return None


def _setter_for(scope: _Scope, getter: Mapping[str, Any]) -> dict[str, Any] | None:
    """KJNodes' GetNode reads the SetNode of the same name in its graph."""
    name = _first_value(getter)
    for node in scope.nodes.values():
        if _class_of(node) == "SetNode" and _first_value(node) == name:
            return node
    return None


def _first_value(node: Mapping[str, Any]) -> Any:
    values = node.get("widgets_values")
    return values[0] if isinstance(values, list) and values else None


def _bypass_slot(node: Mapping[str, Any], slot: int, wanted_type: Any) -> int:
    """Which input a bypassed node passes on to output `slot` (litegraph's getBypassSlotIndex)."""
    inputs = _slots(node, "inputs")
    outputs = _slots(node, "outputs")
    output_type = outputs[slot].get("type") if slot < len(outputs) else None
    if wanted_type in ("*", "", None):
        return slot if len(inputs) > slot else (0 if inputs else -1)
    if slot < len(inputs):
        opposite = inputs[slot].get("type")
        if _connectable(opposite, output_type) and _connectable(opposite, wanted_type):
            return slot
    for index, candidate in enumerate(inputs):
        if candidate.get("type") == wanted_type:
            return index
    for index, candidate in enumerate(inputs):
        kind = candidate.get("type")
        if _connectable(kind, output_type) and _connectable(kind, wanted_type):
            return index
    return -1


def _connectable(first: Any, second: Any) -> bool:
    """LiteGraph.isValidConnection: equal, a wildcard, or comma lists that share a type."""
    a, b = str(first or "").lower(), str(second or "").lower()
    if a in ("", "*", "0") or b in ("", "*", "0") or a == b:
        return True
    return bool(set(a.split(",")) & set(b.split(",")))


def _is_wire(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


def _wrap(value: Any) -> Any:
    """A list literal would read as a link; the frontend boxes it and the server unboxes it."""
    return {"__value__": value} if isinstance(value, list) else value
