"""A graph's LoRA stack: which LoRAs at which strengths patch its model.

ComfyUI keeps the last prompt's model loaded; a prompt whose LoRA stack
differs re-patches the weights, which costs real time on a GPU. The stack is
what routing compares (LoRA-stack affinity) and what the simulator charges
for. A LoRA at strength 0 for both model and clip is skipped by ComfyUI's
loader (it returns its inputs untouched), so it is not part of the stack.
"""

from __future__ import annotations

from typing import Any

from imgen_tui.graphs.graph import is_link, iter_nodes

LORA_LOADERS = frozenset({"LoraLoader", "LoraLoaderModelOnly"})

#: (file name, model strength, clip strength), sorted: the stack's identity
LoraStack = tuple[tuple[str, float, float], ...]


def lora_stack(graph: Any) -> LoraStack:
    """The stack every LoRA loader in `graph` applies; linked (not literal) values are skipped."""
    entries: list[tuple[str, float, float]] = []
    for _node_id, class_type, inputs in iter_nodes(graph):
        if class_type not in LORA_LOADERS:
            continue
        name = inputs.get("lora_name")
        model = _strength(inputs.get("strength_model", 1.0))
        clip = (
            0.0
            if class_type == "LoraLoaderModelOnly"
            else _strength(inputs.get("strength_clip", 1.0))
        )
        if not isinstance(name, str) or model is None or clip is None:
            continue
        if model == 0.0 and clip == 0.0:
            continue
        entries.append((name, model, clip))
    return tuple(sorted(entries))


def _strength(value: object) -> float | None:
    if is_link(value) or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return round(float(value), 4)


def describe_stack(stack: LoraStack) -> str:
    """'detail-tweaker 0.7, film-grain 0.4/0.2' or 'no LoRA'."""
    if not stack:
        return "no LoRA"
    parts = []
    for name, model, clip in stack:
        short = name.rsplit("/", 1)[-1].removesuffix(".safetensors")
        parts.append(f"{short} {model:g}" if model == clip else f"{short} {model:g}/{clip:g}")
    return ", ".join(parts)
