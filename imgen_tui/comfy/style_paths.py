"""Which way a node can carry a style reference: IP-Adapter, else core nodes only.

ComfyUI_IPAdapter_plus is a custom pack many servers lack. Core ComfyUI has
two honest substitutes, checked in the recorded object_info (v2,
object_info_core_control_video.json): a style model (`CLIPVisionLoader` +
`CLIPVisionEncode` + `StyleModelLoader` + `StyleModelApply`, e.g. Flux Redux
or the SD1.5 style coadapter) when the node has such a file and a CLIP-vision
file, and otherwise img2img from the reference (`ImageScale` + `VAEEncode`
into the sampler at a denoise derived from the strength) — the reference's
colours and layout carried, which is what it is and what the sidecar says.
A node with none of them is refused by routing ("no style").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from imgen_tui.comfy.ipadapter_presets import STYLE_PRESET, PresetError, resolve_preset
from imgen_tui.comfy.responses import ObjectInfo

StyleVia = Literal["ipadapter", "style model", "img2img"]
IPADAPTER_STYLE_CLASSES = ("IPAdapterUnifiedLoader", "IPAdapterAdvanced")
STYLE_MODEL_CLASSES = (
    "CLIPVisionLoader",
    "CLIPVisionEncode",
    "StyleModelLoader",
    "StyleModelApply",
)
IMG2IMG_CLASSES = ("ImageScale", "VAEEncode")
#: words a style model's file name carries for a family
STYLE_FAMILY_WORDS: dict[str, tuple[str, ...]] = {
    "sd15": ("sd15", "sd1.5", "sd_15", "coadapter", "t2iadapter"),
    "sdxl": ("sdxl", "xl"),
    "flux": ("flux", "redux"),
}


@dataclass(frozen=True, slots=True)
class StylePath:
    via: StyleVia
    style_model: str | None = None  # for "style model"
    clip_vision: str | None = None  # for "style model"


def style_path(info: ObjectInfo, family: str) -> StylePath | None:
    """The best way this node carries a style reference for `family`, or None."""
    if all(info.has_class(name) for name in IPADAPTER_STYLE_CLASSES):
        try:
            resolve_preset(
                STYLE_PRESET,
                family != "sd15",
                clip_vision=info.options("CLIPVisionLoader", "clip_name"),
                ipadapter=info.options("IPAdapterModelLoader", "ipadapter_file"),
                loras=info.loras,
            )
        except PresetError:
            pass
        else:
            return StylePath("ipadapter")
    if all(info.has_class(name) for name in STYLE_MODEL_CLASSES):
        style_model = _for_family(info.options("StyleModelLoader", "style_model_name"), family)
        clip_vision = sorted(info.options("CLIPVisionLoader", "clip_name"))
        if style_model is not None and clip_vision:
            return StylePath("style model", style_model, clip_vision[0])
    if all(info.has_class(name) for name in IMG2IMG_CLASSES):
        return StylePath("img2img")
    return None


def can_carry_style(info: ObjectInfo) -> bool:
    """Whether any family's style reference can run here (the `style` capability)."""
    return any(style_path(info, family) is not None for family in ("sd15", "sdxl"))


def _for_family(options: tuple[str, ...], family: str) -> str | None:
    """The style model for the family; a file that names no family serves any."""
    words = STYLE_FAMILY_WORDS.get(family, (family,))
    other = [w for f, ws in STYLE_FAMILY_WORDS.items() if f != family for w in ws]
    named = [name for name in sorted(options) if any(w in name.lower() for w in words)]
    if named:
        return named[0]
    neutral = [name for name in sorted(options) if not any(w in name.lower() for w in other)]
    return neutral[0] if neutral else None
