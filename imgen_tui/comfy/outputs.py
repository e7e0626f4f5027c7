"""Which nodes of a graph keep a picture, so a graph that keeps none is refused up front.

ComfyUI runs a graph whose only output is `PreviewImage` happily and lists
its pictures in the history as `temp` files, which the node deletes on its
next start; the app would report a finished image it never kept. So a graph
must have a node that saves into the output folder before it is submitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imgen_tui.graphs.graph import GraphError

#: node classes known to show a picture without saving it, though their names say "save"
_NOT_SAVING = frozenset({"SaveImageWebsocket", "PreviewImage"})
#: node classes that save though their names do not say so (VHS writes to `temp` when
#: its `save_output` is off)
_SAVING = frozenset({"VHS_VideoCombine"})


def saving_nodes(graph: Mapping[str, Any]) -> list[str]:
    """Ids of the nodes that save into the output folder (`SaveImage` and its look-alikes).

    Custom savers (`Image Save`, `SaveImageExtended`, `SaveAnimatedWEBP`...)
    all have "save" in their class name; that is the only thing they share.
    """
    found = []
    for node_id, node in graph.items():
        class_type = node.get("class_type") if isinstance(node, Mapping) else None
        if not isinstance(class_type, str) or class_type in _NOT_SAVING:
            continue
        if class_type in _SAVING:
            inputs = node.get("inputs")
            if isinstance(inputs, Mapping) and inputs.get("save_output", True) is False:
                continue
            found.append(str(node_id))
        elif "save" in class_type.lower():
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


# -- animated outputs ----------------------------------------------------------------------------

#: the keys of one node's history output that list files: core savers use `images`
#: (animated ones too, with `"animated": [true]`); VideoHelperSuite uses `gifs` for every format
FILE_KEYS = ("images", "gifs")

#: what a core saver's file extension says its content is (the history has no format field)
_CORE_FORMATS = {
    ".webp": "image/webp",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webm": "video/webm",
    ".mp4": "video/mp4",
}


def output_files(node_output: Mapping[str, Any]) -> list[Any]:
    """The file entries of one node's output, whichever key its saver used."""
    found: list[Any] = []
    for key in FILE_KEYS:
        items = node_output.get(key)
        if isinstance(items, list):
            found.extend(items)
    return found


@dataclass(frozen=True, slots=True)
class AnimatedOutput:
    """A video or animated picture a node saved, with what its history says about it.

    `frame_rate` is only known from VHS (`frame_rate` on its item); core
    savers keep the rate inside the file, which the store reads.
    """

    node: str
    filename: str
    subfolder: str
    type: str
    format: str
    frame_rate: float | None = None


def animated_outputs(outputs: Mapping[str, Any]) -> tuple[AnimatedOutput, ...]:
    """Every animated output in a `/history` entry's (or `executed` message's) outputs.

    Two shapes exist (both recorded): core `SaveAnimatedWEBP`/`SaveAnimatedPNG`/
    `SaveWEBM`/`SaveVideo` list the file under `images` next to
    `"animated": [true]`, one flag per file; `VHS_VideoCombine` lists it under
    `gifs` with a `format` such as `video/h264-mp4` and no `animated` key.
    """
    found: list[AnimatedOutput] = []
    for node, node_output in outputs.items():
        if not isinstance(node_output, Mapping):
            continue
        flags = node_output.get("animated")
        flags = flags if isinstance(flags, list) else []
        images = node_output.get("images")
        for index, item in enumerate(images if isinstance(images, list) else []):
            flagged = flags[index] if index < len(flags) else (flags[-1] if flags else False)
            if (
                isinstance(item, Mapping)
                and flagged is True
                and isinstance(item.get("filename"), str)
            ):
                name = str(item["filename"])
                found.append(
                    AnimatedOutput(
                        node=str(node),
                        filename=name,
                        subfolder=str(item.get("subfolder") or ""),
                        type=str(item.get("type") or "output"),
                        format=_CORE_FORMATS.get(_extension(name), "application/octet-stream"),
                    )
                )
        gifs = node_output.get("gifs")
        for item in gifs if isinstance(gifs, list) else []:
            if not (isinstance(item, Mapping) and isinstance(item.get("filename"), str)):
                continue
            rate = item.get("frame_rate")
            name = str(item["filename"])
            found.append(
                AnimatedOutput(
                    node=str(node),
                    filename=name,
                    subfolder=str(item.get("subfolder") or ""),
                    type=str(item.get("type") or "output"),
                    format=str(item.get("format") or _CORE_FORMATS.get(_extension(name), "")),
                    frame_rate=float(rate)
                    if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0
                    else None,
                )
            )
    return tuple(found)


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""
