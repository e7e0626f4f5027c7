"""The nodes that turn frames into a video file, and the frame rate a graph asks them for."""

from __future__ import annotations

from typing import Any

from imgen_tui.graphs.graph import iter_nodes
from imgen_tui.graphs.video_schedule import parse_schedule

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


#: prompt travel nodes and the input holding their schedule text
SCHEDULE_INPUTS = {"ADE_PromptScheduling": "prompts", "BatchPromptSchedule": "text"}


def prompt_schedule_of(graph: Any) -> list[tuple[int, str]]:
    """The (frame, prompt) entries of the graph's prompt travel node, if it has one."""
    for _node_id, class_type, inputs in iter_nodes(graph):
        name = SCHEDULE_INPUTS.get(class_type)
        if name and isinstance(inputs.get(name), str):
            return parse_schedule(inputs[name])
    return []


def video_sidecar_fields(graph: Any) -> dict[str, Any]:
    """What a video's sidecar adds to a still's: the rate asked for (the store adds what it
    got) and, with prompt travel, the schedule, whose first prompt stands for the video's."""
    fields: dict[str, Any] = {}
    fps = declared_fps(graph)
    if fps is not None:
        fields["fps"] = fps
    schedule = prompt_schedule_of(graph)
    if schedule:
        fields["prompt"] = schedule[0][1]
        fields["prompt_schedule"] = [list(entry) for entry in schedule]
    return fields
