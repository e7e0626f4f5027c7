"""Find and change the parameters a person cares about in ANY API-format graph.

The table follows seed 003 (prompt text, sampler settings, latent size,
checkpoint, LoRAs) plus the loaders our templates use and the modern sampler
path (SamplerCustomAdvanced with RandomNoise, KSamplerSelect, BasicScheduler
and a guider; UNETLoader and the CLIP loaders). A value held by a primitive
node (`PrimitiveInt`, `PrimitiveStringMultiline`...) takes the kind of the
input it feeds, so a seed or a prompt moved into a primitive is still found.
The table is the list of what is shown first; every other literal is still a
typed parameter (graphs/typed_params.py). Whether a text encoder
is the positive or the negative prompt is decided by following the sampler's
`positive`/`negative` links upstream, never by node titles, so a graph exported
from anyone's ComfyUI is read correctly.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from imgen_tui.graphs.graph import Graph, is_link, iter_nodes, node_inputs

# class_type -> {input name: parameter kind}
PARAMETER_TABLE: dict[str, dict[str, str]] = {
    "CLIPTextEncode": {"text": "prompt"},
    "KSampler": {
        "seed": "seed",
        "steps": "steps",
        "cfg": "cfg",
        "sampler_name": "sampler_name",
        "scheduler": "scheduler",
        "denoise": "denoise",
    },
    "KSamplerAdvanced": {
        "noise_seed": "seed",
        "steps": "steps",
        "cfg": "cfg",
        "sampler_name": "sampler_name",
        "scheduler": "scheduler",
        "start_at_step": "start_at_step",
        "end_at_step": "end_at_step",
    },
    "SamplerCustom": {
        "noise_seed": "seed",
        "cfg": "cfg",
    },
    "RandomNoise": {"noise_seed": "seed"},
    "KSamplerSelect": {"sampler_name": "sampler_name"},
    "BasicScheduler": {"scheduler": "scheduler", "steps": "steps", "denoise": "denoise"},
    "CFGGuider": {"cfg": "cfg"},
    "EmptyLatentImage": {"width": "width", "height": "height", "batch_size": "batch_size"},
    "EmptySD3LatentImage": {"width": "width", "height": "height", "batch_size": "batch_size"},
    "EmptyHunyuanLatentVideo": {
        "width": "width",
        "height": "height",
        "length": "length",
        "batch_size": "batch_size",
    },
    "TripleCLIPLoader": {
        "clip_name1": "clip_name",
        "clip_name2": "clip_name",
        "clip_name3": "clip_name",
    },
    "CheckpointLoaderSimple": {"ckpt_name": "checkpoint"},
    "UNETLoader": {"unet_name": "checkpoint"},
    "DualCLIPLoader": {"clip_name1": "clip_name", "clip_name2": "clip_name"},
    "CLIPLoader": {"clip_name": "clip_name"},
    "ModelSamplingSD3": {"shift": "shift"},
    "ModelSamplingFlux": {"max_shift": "shift"},
    "CLIPTextEncodeFlux": {"clip_l": "prompt", "t5xxl": "prompt", "guidance": "guidance"},
    "LoraLoader": {
        "lora_name": "lora_name",
        "strength_model": "strength_model",
        "strength_clip": "strength_clip",
    },
    "LoraLoaderModelOnly": {"lora_name": "lora_name", "strength_model": "strength_model"},
    "LoadImage": {"image": "image"},
    "UpscaleModelLoader": {"model_name": "upscale_model"},
    "FluxGuidance": {"guidance": "guidance"},
    # prompt travel (AnimateDiff-Evolved, FizzNodes): the whole schedule text is the prompt
    "ADE_PromptScheduling": {"prompts": "prompt"},
    "BatchPromptSchedule": {"text": "prompt"},
}

#: value nodes whose one literal takes the kind of the input it is wired to
PRIMITIVES = frozenset(
    {
        "PrimitiveInt",
        "PrimitiveFloat",
        "PrimitiveString",
        "PrimitiveStringMultiline",
        "PrimitiveBoolean",
    }
)
SAMPLERS = frozenset({"KSampler", "KSamplerAdvanced", "SamplerCustom"})
#: nodes that hold the positive/negative conditioning on the modern sampler path
GUIDERS: dict[str, dict[str, str]] = {
    "CFGGuider": {"positive": "positive", "negative": "negative"},
    "BasicGuider": {"conditioning": "positive"},
    "DualCFGGuider": {"cond1": "positive", "cond2": "positive", "negative": "negative"},
}
TEXT_ENCODERS = frozenset(
    {
        "CLIPTextEncode",
        "CLIPTextEncodeFlux",
        "CLIPTextEncodeSDXL",
        "ADE_PromptScheduling",
        "BatchPromptSchedule",
    }
)
_MAX_TRACE_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Parameter:
    """One editable literal input: where it is, what it means and its value."""

    node_id: str
    class_type: str
    input: str
    kind: str
    value: Any


def extract_parameters(graph: object) -> list[Parameter]:
    """Every editable literal in the graph, in node order; never raises on odd JSON.

    Prompts come out as kind `positive_prompt` or `negative_prompt` when a
    sampler reaches them, plain `prompt` otherwise.
    """
    roles = prompt_roles(graph)
    fed = _primitive_kinds(graph, roles)
    found: list[Parameter] = []
    for node_id, class_type, inputs in iter_nodes(graph):
        if class_type in PRIMITIVES:
            if "value" in inputs and not is_link(inputs["value"]):
                found.extend(
                    Parameter(node_id, class_type, "value", kind, inputs["value"])
                    for kind in fed.get(node_id, ())
                )
            continue
        for input_name, kind in PARAMETER_TABLE.get(class_type, {}).items():
            if input_name not in inputs or is_link(inputs[input_name]):
                continue
            found.append(
                Parameter(
                    node_id, class_type, input_name, _kind(kind, node_id, roles), inputs[input_name]
                )
            )
    return found


def _kind(kind: str, node_id: str, roles: Mapping[str, str]) -> str:
    return roles.get(node_id, "prompt") if kind == "prompt" else kind


def _primitive_kinds(graph: object, roles: Mapping[str, str]) -> dict[str, list[str]]:
    """Primitive node id -> the kinds of the table inputs it feeds (one size for both sides)."""
    kinds: dict[str, list[str]] = {}
    primitives = {
        node_id for node_id, class_type, _ in iter_nodes(graph) if class_type in PRIMITIVES
    }
    for node_id, class_type, inputs in iter_nodes(graph):
        table = PARAMETER_TABLE.get(class_type, {})
        for input_name, value in inputs.items():
            if is_link(value) and value[0] in primitives and input_name in table:
                kind = _kind(table[input_name], node_id, roles)
                if kind not in kinds.setdefault(value[0], []):
                    kinds[value[0]].append(kind)
    return kinds


def apply_parameters(graph: Graph, parameters: Iterable[Parameter]) -> Graph:
    """A copy of `graph` with each parameter's value written back to its node."""
    result = copy.deepcopy(graph)
    for parameter in parameters:
        inputs = node_inputs(result, parameter.node_id) if isinstance(result, dict) else None
        if inputs is not None:
            inputs[parameter.input] = parameter.value
    return result


def with_values(graph: Graph, values: Mapping[str, Any]) -> Graph:
    """A copy with every parameter of each given kind set, e.g. `{"seed": 7}`."""
    changes = [
        Parameter(p.node_id, p.class_type, p.input, p.kind, values[p.kind])
        for p in extract_parameters(graph)
        if p.kind in values
    ]
    return apply_parameters(graph, changes)


def read_values(graph: object) -> dict[str, Any]:
    """The first value of each parameter kind: a summary for sidecars and lists."""
    summary: dict[str, Any] = {}
    for parameter in extract_parameters(graph):
        summary.setdefault(parameter.kind, parameter.value)
    return summary


def prompt_roles(graph: object) -> dict[str, str]:
    """Text encoder node id -> "positive_prompt" | "negative_prompt"."""
    if not isinstance(graph, dict):
        return {}
    roles: dict[str, str] = {}
    for _, class_type, inputs in iter_nodes(graph):
        if class_type in SAMPLERS:
            sides = {"positive": "positive", "negative": "negative"}
        elif class_type in GUIDERS:
            sides = GUIDERS[class_type]
        else:
            continue
        for name, side in sides.items():
            link = inputs.get(name)
            if is_link(link):
                for encoder in _trace_conditioning(graph, link, set(), 0):
                    roles.setdefault(encoder, f"{side}_prompt")
    return roles


def _trace_conditioning(graph: Graph, link: list[Any], seen: set[str], depth: int) -> list[str]:
    """Text encoders that feed a conditioning link, through guidance/ControlNet/combine nodes.

    A node with both `positive` and `negative` inputs (ControlNet apply) passes
    output 0 through from `positive` and output 1 from `negative`; any other
    node passes on every linked input whose name mentions conditioning.
    """
    node_id, output_index = link
    node = graph.get(node_id)
    if depth > _MAX_TRACE_DEPTH or node_id in seen or not isinstance(node, dict):
        return []
    seen = seen | {node_id}
    class_type, inputs = node.get("class_type"), node.get("inputs")
    if not isinstance(inputs, dict):
        return []
    if class_type in TEXT_ENCODERS:
        return [node_id]
    if "positive" in inputs and "negative" in inputs:
        upstream = [inputs["positive"] if output_index == 0 else inputs["negative"]]
    else:
        upstream = [value for name, value in inputs.items() if "conditioning" in name]
    encoders: list[str] = []
    for value in upstream:
        if is_link(value):
            encoders.extend(_trace_conditioning(graph, value, seen, depth + 1))
    return encoders
