"""Structural edits: a LoRA chain, an img2img source image."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imgen_tui.graphs.graph import Graph, GraphError, is_link, iter_nodes, next_node_id
from imgen_tui.graphs.params import SAMPLERS, prompt_roles


@dataclass(frozen=True, slots=True)
class LoraSpec:
    name: str
    strength_model: float = 1.0
    strength_clip: float | None = None  # None: the same as strength_model

    @property
    def clip_strength(self) -> float:
        return self.strength_model if self.strength_clip is None else self.strength_clip


def inject_loras(graph: Graph, loras: Sequence[LoraSpec]) -> Graph:
    """A copy with `LoraLoader` nodes chained between the model source and its users.

    The chain starts from whatever feeds the first sampler's `model` input and
    the positive text encoder's `clip` input (a checkpoint loader, or the end of
    an existing LoRA chain), and every node that used those outputs is rewired
    to the chain's end, so second samplers and negative prompts get it too.
    """
    if not loras:
        return copy.deepcopy(graph)
    result = copy.deepcopy(graph)
    model_source, clip_source = _model_and_clip_sources(result)
    next_id = next_node_id(result)
    new_ids: set[str] = set()
    model_link, clip_link = list(model_source), list(clip_source)
    for lora in loras:
        node_id = str(next_id)
        next_id += 1
        result[node_id] = {
            "class_type": "LoraLoader",
            "inputs": {
                "model": model_link,
                "clip": clip_link,
                "lora_name": lora.name,
                "strength_model": lora.strength_model,
                "strength_clip": lora.clip_strength,
            },
        }
        new_ids.add(node_id)
        model_link, clip_link = [node_id, 0], [node_id, 1]
    for node_id, _, inputs in iter_nodes(result):
        if node_id in new_ids:
            continue
        for name, value in inputs.items():
            if value == model_source:
                inputs[name] = list(model_link)
            elif value == clip_source:
                inputs[name] = list(clip_link)
    return result


def _model_and_clip_sources(graph: Graph) -> tuple[list[Any], list[Any]]:
    samplers = [
        (node_id, inputs)
        for node_id, class_type, inputs in iter_nodes(graph)
        if class_type in SAMPLERS
    ]
    if not samplers:
        raise GraphError("the workflow has no KSampler, so there is no model to attach a LoRA to")
    sampler_id, sampler_inputs = min(samplers, key=lambda item: _numeric(item[0]))
    model_source = sampler_inputs.get("model")
    if not is_link(model_source):
        raise GraphError(f"node {sampler_id} (sampler) has no model link to attach a LoRA to")
    roles = prompt_roles(graph)
    positive = sorted(node for node, role in roles.items() if role == "positive_prompt")
    clip_source = graph[positive[0]]["inputs"].get("clip") if positive else None
    if not is_link(clip_source):
        raise GraphError("the workflow's positive prompt has no clip link to attach a LoRA to")
    return model_source, clip_source


def set_source_image(graph: Graph, image_name: str) -> Graph:
    """A copy whose LoadImage nodes read `image_name` (an uploaded file's name)."""
    result = copy.deepcopy(graph)
    loaders = [inputs for _, class_type, inputs in iter_nodes(result) if class_type == "LoadImage"]
    if not loaders:
        raise GraphError("the workflow has no LoadImage node to take a source image")
    for inputs in loaders:
        inputs["image"] = image_name
    return result


def _numeric(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 62, node_id)
