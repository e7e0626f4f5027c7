"""How ComfyUI_IPAdapter_plus resolves a unified-loader preset to model files.

The pack's `IPAdapterUnifiedLoader(FaceID)` takes a preset name, not a file,
and finds its files by regular expression at run time (utils.py,
`get_clipvision_file` / `get_ipadapter_file` / `get_lora_file`). A node
without them validates the graph and then fails with "ClipVision model not
found.", so routing (capabilities) and the simulator both use these rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

#: the presets imgen injects: style through the plain loader, face through FaceID
STYLE_PRESET = "PLUS (high strength)"
FACE_PRESET = "FACEID PLUS V2"


class PresetError(Exception):
    """The pack's own run-time exception text (e.g. "ClipVision model not found.")."""


@dataclass(frozen=True, slots=True)
class PresetFiles:
    clip_vision: str
    ipadapter: str
    lora: str | None  # FaceID presets also load a companion LoRA


def clipvision_pattern(preset: str) -> str:
    if preset.lower().startswith("vit-g"):
        return r"(ViT.bigG.14.*39B.b160k|ipadapter.*sdxl|sdxl.*model\.(bin|safetensors))"
    return r"(ViT.H.14.*s32B.b79K|ipadapter.*sd15|sd1.?5.*model\.(bin|safetensors))"


def ipadapter_patterns(preset: str, is_sdxl: bool) -> tuple[str, str | None]:
    """(IP-Adapter file pattern, FaceID LoRA pattern or None), as the pack's table has them."""
    p = preset.lower()
    sdxl_only = {"light": "light", "full": "full face", "faceid portrait": "portrait"}
    for prefix, what in sdxl_only.items():
        if p.startswith(prefix) and is_sdxl:
            raise PresetError(f"{what} model is not supported for SDXL")
    if p.startswith("light"):
        return r"sd15.light.v11\.(safetensors|bin)$", None
    if p.startswith("standard"):
        return (r"ip.adapter.sdxl.vit.h" if is_sdxl else r"ip.adapter.sd15") + _EXT, None
    if p.startswith("vit-g"):
        return (r"ip.adapter.sdxl" if is_sdxl else r"sd15.vit.g") + _EXT, None
    if p.startswith("plus ("):
        return (r"plus.sdxl.vit.h" if is_sdxl else r"ip.adapter.plus.sd15") + _EXT, None
    if p.startswith("plus face"):
        return (r"plus.face.sdxl.vit.h" if is_sdxl else r"plus.face.sd15") + _EXT, None
    if p.startswith("full"):
        return r"full.face.sd15" + _EXT, None
    if p.startswith("faceid portrait"):
        return r"portrait.sd15" + _EXT, None
    family = "sdxl" if is_sdxl else "sd15"
    if p.startswith("faceid plus -") and is_sdxl:
        raise PresetError("faceid plus model is not supported for SDXL")
    for stem, matches in (
        ("faceid.plusv2", p.startswith("faceid plus v2")),
        ("faceid.plus", p.startswith("faceid plus -")),
        ("faceid", p == "faceid"),
    ):
        if matches:
            return rf"{stem}.{family}{_EXT}", rf"{stem}.{family}.lora\.safetensors$"
    raise PresetError(f"invalid type '{p}'")


_EXT = r"\.(safetensors|bin)$"


def resolve_preset(
    preset: str,
    is_sdxl: bool,
    *,
    clip_vision: Iterable[str],
    ipadapter: Iterable[str],
    loras: Iterable[str],
) -> PresetFiles:
    """The files the pack would load, or PresetError with its own message."""
    clip = _first(clipvision_pattern(preset), clip_vision)
    if clip is None:
        raise PresetError("ClipVision model not found.")
    pattern, lora_pattern = ipadapter_patterns(preset, is_sdxl)
    adapter = _first(pattern, ipadapter)
    if adapter is None:
        raise PresetError("IPAdapter model not found.")
    lora = None
    if lora_pattern is not None:
        lora = _first(lora_pattern, loras)
        if lora is None:
            raise PresetError("LoRA model not found.")
    return PresetFiles(clip, adapter, lora)


def _first(pattern: str, names: Iterable[str]) -> str | None:
    return next((name for name in names if re.search(pattern, name, re.IGNORECASE)), None)
