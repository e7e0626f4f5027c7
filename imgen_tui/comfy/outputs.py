"""Which nodes of a graph keep a picture, so a graph that keeps none is refused up front.

ComfyUI runs a graph whose only output is `PreviewImage` happily and lists
its pictures in the history as `temp` files, which the node deletes on its
next start; the app would report a finished image it never kept. So a graph
must have a node that saves into the output folder before it is submitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imgen_tui.graphs.graph import GraphError

#: node classes known to show a picture without saving it, though their names say "save"
_NOT_SAVING = frozenset({"SaveImageWebsocket", "PreviewImage"})


def saving_nodes(graph: Mapping[str, Any]) -> list[str]:
    """Ids of the nodes that save into the output folder (`SaveImage` and its look-alikes).

    Custom savers (`Image Save`, `SaveImageExtended`, `SaveAnimatedWEBP`...)
    all have "save" in their class name; that is the only thing they share.
    """
    found = []
    for node_id, node in graph.items():
        class_type = node.get("class_type") if isinstance(node, Mapping) else None
        if (
            isinstance(class_type, str)
            and "save" in class_type.lower()
            and class_type not in _NOT_SAVING
        ):
            found.append(str(node_id))
    return found


def require_saved_output(graph: Mapping[str, Any]) -> None:
    """Refuse a graph that would finish without keeping any picture."""
    if saving_nodes(graph):
        return
    classes = sorted(
        {
            str(node.get("class_type"))
            for node in graph.values()
            if isinstance(node, Mapping)
            and any(word in str(node.get("class_type", "")).lower() for word in ("save", "preview"))
        }
    )
    shown = f" (it has {', '.join(classes)})" if classes else ""
    raise GraphError(
        f"the graph saves no image: it has no SaveImage node{shown}; replace PreviewImage "
        "with SaveImage in the workflow, or nothing would be kept"
    )
