"""Which declared capabilities a node's `/object_info` actually backs up.

A capability declared in the farm config is only a promise; the routing layer
trusts it once the node lists the model file or node class behind it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from imgen_tui.comfy.ipadapter_presets import (
    FACE_PRESET,
    STYLE_PRESET,
    PresetError,
    resolve_preset,
)
from imgen_tui.comfy.responses import ObjectInfo
from imgen_tui.comfy.style_paths import can_carry_style
from imgen_tui.comfy.video_capabilities import VIDEO_CAPABILITIES, check_video_capability

Verdict = Literal["confirmed", "missing", "unchecked"]

FAMILY_CAPABILITIES = {
    "sd15": "sd15",
    "sdxl": "sdxl",
    "pony": "pony",
    "illustrious": "illustrious",
    "flux": "flux",
    "flux_fp8": "flux",
}
IPADAPTER_CLASSES = {
    "ipadapter": ("IPAdapterUnifiedLoader", "IPAdapterAdvanced"),
    "faceid": ("IPAdapterUnifiedLoaderFaceID", "IPAdapterFaceID"),
}
CLASS_CAPABILITIES = {
    "animatediff": ("ADE_AnimateDiffLoaderGen1", "ADE_AnimateDiffLoaderWithContext"),
}


def declared_capabilities(declared: Iterable[str]) -> frozenset[str]:
    """What a node is trusted with before its /object_info answers.

    `style` is never declared in the sample configs: a node promising
    IP-Adapter promises it, and /object_info then finds it on others too.
    """
    found = set(declared)
    if "ipadapter" in found:
        found.add("style")
    return frozenset(found)


def confirmed_capabilities(
    info: ObjectInfo, declared: Iterable[str], models: Mapping[str, str]
) -> frozenset[str]:
    """What routing trusts once /object_info answered: the declared ones it backs up, plus
    `style` wherever a style reference can run (IP-Adapter or core), declared or not."""
    checks = check_capabilities(info, declared, models)
    found = {c.capability for c in checks if c.verdict != "missing"} - {"style"}
    if can_carry_style(info):
        found.add("style")
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class CapabilityCheck:
    capability: str
    verdict: Verdict
    reason: str


def check_capabilities(
    info: ObjectInfo, declared: Iterable[str], models: Mapping[str, str]
) -> list[CapabilityCheck]:
    return [_check(info, capability, models) for capability in declared]


def _check(info: ObjectInfo, capability: str, models: Mapping[str, str]) -> CapabilityCheck:
    if capability in FAMILY_CAPABILITIES:
        family = FAMILY_CAPABILITIES[capability]
        model = models.get(family)
        if model is None:
            return CapabilityCheck(capability, "unchecked", f"no model is configured for {family}")
        installed = set(info.checkpoints) | set(info.models("unet"))
        if model in installed:
            return CapabilityCheck(capability, "confirmed", f"{model} is installed")
        return CapabilityCheck(capability, "missing", f"{model} is not installed")
    if capability == "upscale":
        model = models.get("upscale")
        if model and model in info.upscale_models:
            return CapabilityCheck(capability, "confirmed", f"{model} is installed")
        found = ", ".join(info.upscale_models) or "none"
        return CapabilityCheck(
            capability, "missing", f"{model} is not installed (upscale models: {found})"
        )
    if capability == "controlnet":
        if info.controlnets:
            return CapabilityCheck(
                capability, "confirmed", f"{len(info.controlnets)} ControlNet models"
            )
        return CapabilityCheck(capability, "missing", "no ControlNet models are installed")
    if capability in ("ipadapter", "faceid"):
        return _check_ipadapter(info, capability)
    if capability == "style":
        if can_carry_style(info):
            return CapabilityCheck(capability, "confirmed", "IP-Adapter or a core style path")
        return CapabilityCheck(
            capability, "missing", "no IP-Adapter, no style model and no VAEEncode"
        )
    if capability in VIDEO_CAPABILITIES:  # classes and a motion model: video_capabilities.py
        return CapabilityCheck(capability, *check_video_capability(info, capability))
    if capability in CLASS_CAPABILITIES:
        classes = CLASS_CAPABILITIES[capability]
        if any(info.has_class(name) for name in classes):
            return CapabilityCheck(capability, "confirmed", "its custom nodes are installed")
        return CapabilityCheck(capability, "missing", f"custom node {classes[0]} is not installed")
    return CapabilityCheck(capability, "unchecked", "nothing to check it against")


def _check_ipadapter(info: ObjectInfo, capability: str) -> CapabilityCheck:
    """The pack's classes and the files its preset resolves to: without them it fails at run time.

    IPAdapterUnifiedLoader's presets are not a file list, so a node without
    IP-Adapter or CLIP-vision files still validates the graph and then fails
    with "ClipVision model not found."; routing must know before it sends, so
    the files are matched with the pack's own rules (`ipadapter_presets`).
    """
    absent = [name for name in IPADAPTER_CLASSES[capability] if not info.has_class(name)]
    if absent:
        return CapabilityCheck(capability, "missing", f"custom node {absent[0]} is not installed")
    preset = FACE_PRESET if capability == "faceid" else STYLE_PRESET
    problems = []
    for family, is_sdxl in (("sd15", False), ("sdxl", True)):
        try:
            files = resolve_preset(
                preset,
                is_sdxl,
                clip_vision=info.options("CLIPVisionLoader", "clip_name"),
                ipadapter=info.options("IPAdapterModelLoader", "ipadapter_file"),
                loras=info.loras,
            )
        except PresetError as error:
            problems.append(str(error).rstrip("."))
            continue
        return CapabilityCheck(capability, "confirmed", f"{preset} for {family}: {files.ipadapter}")
    return CapabilityCheck(capability, "missing", f"{preset}: {problems[0]}")
