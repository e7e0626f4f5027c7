"""The nodes that turn frames into a video file, and the frame rate a graph asks them for."""

from __future__ import annotations

from typing import Any

from imgen_tui.graphs.graph import iter_nodes

#: saver class -> the input that holds its frame rate (recorded object_info)
FPS_INPUTS = {
    "SaveAnimatedWEBP": "fps",
    "SaveAnimatedPNG": "fps",
    "SaveWEBM": "fps",
    "CreateVideo": "fps",
    "VHS_VideoCombine": "frame_rate",
}


def declared_fps(graph: Any) -> float | None:
    """The frame rate the graph's video saver is set to, or None for a graph of stills."""
    for _node_id, class_type, inputs in iter_nodes(graph):
        name = FPS_INPUTS.get(class_type)
        value = inputs.get(name) if name else None
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


def video_sidecar_fields(graph: Any) -> dict[str, Any]:
    """What a video's sidecar adds to a still's: the rate asked for (the store adds what it got)."""
    fps = declared_fps(graph)
    return {} if fps is None else {"fps": fps}
