"""The object_info a simulated node serves: recorded node classes, its own model lists."""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from imgen_tui.sim.references import reference_classes
from imgen_tui.sim.spec import SimNodeSpec
from imgen_tui.sim.video import add_video_classes

# (class, input) pairs that list the files of one model folder.
MODEL_INPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "checkpoints": (("CheckpointLoaderSimple", "ckpt_name"),),
    "loras": (("LoraLoader", "lora_name"), ("LoraLoaderModelOnly", "lora_name")),
    "upscale_models": (("UpscaleModelLoader", "model_name"),),
    "controlnet": (("ControlNetLoader", "control_net_name"),),
    "vae": (("VAELoader", "vae_name"),),
    "diffusion_models": (("UNETLoader", "unet_name"),),
    "text_encoders": (
        ("CLIPLoader", "clip_name"),
        ("DualCLIPLoader", "clip_name1"),
        ("DualCLIPLoader", "clip_name2"),
    ),
    "clip_vision": (("CLIPVisionLoader", "clip_name"),),
    "ipadapter": (("IPAdapterModelLoader", "ipadapter_file"),),
    "style_models": (("StyleModelLoader", "style_model_name"),),
}

# Custom-node classes the simulator can pretend to have, in object_info's shape.
EXTRA_CLASSES: dict[str, dict[str, Any]] = {
    "IPAdapterModelLoader": {
        "input": {"required": {"ipadapter_file": [[]]}},
        "output": ["IPADAPTER"],
        "output_node": False,
    },
    "IPAdapterAdvanced": {
        "input": {
            "required": {
                "model": ["MODEL"],
                "ipadapter": ["IPADAPTER"],
                "image": ["IMAGE"],
                "weight": ["FLOAT", {"default": 1.0, "min": -1, "max": 5}],
            }
        },
        "output": ["MODEL"],
        "output_node": False,
    },
    "ADE_AnimateDiffLoaderGen1": {
        "input": {"required": {"model": ["MODEL"], "model_name": [[]]}},
        "output": ["MODEL"],
        "output_node": False,
    },
}


@cache
def recorded_classes() -> dict[str, Any]:
    """Node classes as a real ComfyUI 0.3.64 described them (trimmed to what we use)."""
    text = resources.files("imgen_tui.sim").joinpath("data/object_info.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def build_object_info(spec: SimNodeSpec, input_files: list[str]) -> dict[str, Any]:
    classes = copy.deepcopy(recorded_classes())
    for name in spec.extra_classes:
        if name in EXTRA_CLASSES:
            classes[name] = {
                **copy.deepcopy(EXTRA_CLASSES[name]),
                "name": name,
                "display_name": name,
                "python_module": "custom_nodes",
                "category": "custom",
            }
    classes.update(reference_classes(spec.extra_classes))  # recorded ControlNet/IP-Adapter specs
    for name in spec.missing_classes:
        classes.pop(name, None)
    add_video_classes(classes, spec)  # core's animated savers; AnimateDiff, VHS, RIFE/FILM
    for folder, inputs in MODEL_INPUTS.items():
        for class_type, input_name in inputs:
            _set_options(classes, class_type, input_name, list(spec.models.get(folder, [])))
    _set_options(classes, "LoadImage", "image", sorted(input_files))
    return classes


def _set_options(
    classes: dict[str, Any], class_type: str, input_name: str, options: list[str]
) -> None:
    """Replace a combo's choices, keeping whichever of the two shapes the class uses."""
    required = ((classes.get(class_type) or {}).get("input") or {}).get("required") or {}
    spec = required.get(input_name)
    if not isinstance(spec, list) or not spec:
        return
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        spec[1]["options"] = options
    else:
        spec[0] = options
