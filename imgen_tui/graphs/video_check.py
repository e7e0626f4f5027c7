"""A built graph checked against one node's `/object_info` before it is posted.

ComfyUI validates on `POST /prompt` and answers a 400 naming the node; for a
graph the app built itself that answer would arrive per node and per retry.
Checking here first turns the same mistakes (a missing class, a missing
required input, a value outside its list or range, a link of the wrong type)
into one sentence before anything leaves the machine.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from imgen_tui.graphs.graph import GraphError, is_link, iter_nodes


def input_sections(description: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(required, optional) input specs of one class description."""
    inputs = description.get("input")
    inputs = inputs if isinstance(inputs, Mapping) else {}
    required = inputs.get("required")
    optional = inputs.get("optional")
    return (
        dict(required) if isinstance(required, Mapping) else {},
        dict(optional) if isinstance(optional, Mapping) else {},
    )


def combo_options(spec: list[Any]) -> list[Any] | None:
    """The choices of a list-form or COMBO input; None for any other kind."""
    kind = spec[0] if spec else None
    if isinstance(kind, list):
        return kind
    if kind == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
        options = spec[1].get("options")
        return list(options) if isinstance(options, list) else []
    return None


def check_graph(
    graph: Mapping[str, Any],
    classes: Mapping[str, Any],
    node: str,
    *,
    uploaded: Collection[str] = (),
) -> None:
    """Raise `GraphError` naming the first node and input that `node` would refuse.

    The LoadImage nodes in `uploaded` read a local file's name until the
    scheduler uploads it to the chosen node: their image is not in the
    node's list yet, and is not checked against it.
    """
    for node_id, class_type, inputs in iter_nodes(graph):
        description = classes.get(class_type)
        if not isinstance(description, Mapping):
            raise GraphError(f"{node} has no {class_type} node (graph node {node_id})")
        required, optional = input_sections(description)
        for name in required:
            if name not in inputs:
                raise GraphError(f"{node}: {class_type} (node {node_id}) needs its input {name!r}")
        for name, value in inputs.items():
            if node_id in uploaded and class_type == "LoadImage" and name == "image":
                continue
            spec = required.get(name, optional.get(name))
            if isinstance(spec, list) and spec:
                _check_input(graph, classes, node, node_id, class_type, name, spec, value)


def _check_input(
    graph: Mapping[str, Any],
    classes: Mapping[str, Any],
    node: str,
    node_id: str,
    class_type: str,
    name: str,
    spec: list[Any],
    value: Any,
) -> None:
    where = f"{node}: {class_type} (node {node_id}) input {name!r}"
    if is_link(value):
        source = graph.get(value[0])
        if not isinstance(source, Mapping):
            raise GraphError(f"{where} is wired to node {value[0]}, which the graph lacks")
        outputs = (classes.get(str(source.get("class_type"))) or {}).get("output") or []
        if value[1] >= len(outputs):
            raise GraphError(
                f"{where} is wired to output {value[1]} of node {value[0]}, which has none"
            )
        wanted = spec[0]
        if isinstance(wanted, str) and wanted not in ("*", "COMBO") and outputs[value[1]] != wanted:
            raise GraphError(
                f"{where} wants {wanted} but node {value[0]} gives {outputs[value[1]]}"
            )
        return
    choices = combo_options(spec)
    if choices is not None:
        if value not in choices:
            shown = ", ".join(map(str, choices[:8])) or "nothing"
            raise GraphError(f"{where} is {value!r}, not one of the node's choices ({shown})")
        return
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
    kind = spec[0]
    if kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise GraphError(f"{where} is {value!r}, not a number")
        if kind == "INT" and not float(value).is_integer():
            raise GraphError(f"{where} is {value!r}, not a whole number")
        low, high = options.get("min"), options.get("max")
        if isinstance(low, int | float) and value < low:
            raise GraphError(f"{where} is {value}, under its minimum {low}")
        if isinstance(high, int | float) and value > high:
            raise GraphError(f"{where} is {value}, over its maximum {high}")
    elif kind == "BOOLEAN" and not isinstance(value, bool):
        raise GraphError(f"{where} is {value!r}, not true or false")
    elif kind == "STRING" and not isinstance(value, str):
        raise GraphError(f"{where} is {value!r}, not text")
