"""Reference-control classes on a simulated node: ControlNet, the aux preprocessors, IP-Adapter.

Input specs are the recorded ones (data/reference_classes.json, from ComfyUI
0.3.64 with comfyui_controlnet_aux and ComfyUI_IPAdapter_plus). Core `Canny`
and `ControlNetApply` are always there, as on a real server; a pack's classes
only on a node whose `extra_classes` names them (or the pack). What a
reference does is visible in the picture, so a test can tell it was applied:
a ControlNet blends its (preprocessed) map in at its strength, a style
reference the blurred colours of its image, a face reference its centre.
Missing IP-Adapter files fail at run time with the pack's own message, as
recorded; a missing ControlNet file is the ordinary 400 of validation.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

from imgen_tui.comfy.ipadapter_presets import resolve_preset
from imgen_tui.graphs.graph import is_link

CORE_CLASSES = ("Canny", "ControlNetApply")
PACKS: dict[str, tuple[str, ...]] = {
    "comfyui_controlnet_aux": (
        "DWPreprocessor",
        "OpenposePreprocessor",
        "DepthAnythingV2Preprocessor",
        "CannyEdgePreprocessor",
    ),
    "ComfyUI_IPAdapter_plus": (
        "IPAdapterUnifiedLoader",
        "IPAdapterUnifiedLoaderFaceID",
        "IPAdapter",
        "IPAdapterAdvanced",
        "IPAdapterFaceID",
        "IPAdapterModelLoader",
    ),
}
UNIFIED_LOADERS = ("IPAdapterUnifiedLoader", "IPAdapterUnifiedLoaderFaceID")
CONTROLNET_APPLIES = ("ControlNetApplyAdvanced", "ControlNetApply")
STYLE_APPLIES = ("IPAdapter", "IPAdapterAdvanced")
FACE_APPLIES = ("IPAdapterFaceID",)
PREPROCESSORS = {
    "Canny": "edges",
    "CannyEdgePreprocessor": "edges",
    "DWPreprocessor": "pose",
    "OpenposePreprocessor": "pose",
    "DepthAnythingV2Preprocessor": "depth",
}
#: every class whose image input is a reference, not the picture being made
_REFERENCE_USERS = frozenset({*CONTROLNET_APPLIES, *STYLE_APPLIES, *FACE_APPLIES, *PREPROCESSORS})


@cache
def _recorded() -> dict[str, Any]:
    text = (
        resources.files("imgen_tui.sim").joinpath("data/reference_classes.json").read_text("utf-8")
    )
    data: dict[str, Any] = json.loads(text)
    return data


def reference_classes(extra_classes: Iterable[str]) -> dict[str, Any]:
    """Core reference classes plus the pack classes a node names (by class or by pack)."""
    wanted = set(CORE_CLASSES)
    for name in extra_classes:
        wanted.update(PACKS.get(name, (name,)))
    return {name: copy.deepcopy(spec) for name, spec in _recorded().items() if name in wanted}


def check_unified_loader(
    inputs: Mapping[str, Any], models: Mapping[str, list[str]], is_sdxl: bool
) -> None:
    """Raise PresetError ("ClipVision model not found.") as the pack does at run time."""
    resolve_preset(
        str(inputs.get("preset", "")),
        is_sdxl,
        clip_vision=models.get("clip_vision", []),
        ipadapter=models.get("ipadapter", []),
        loras=models.get("loras", []),
    )


def reference_load_ids(graph: Mapping[str, Any]) -> set[str]:
    """LoadImage nodes that only feed references: not the img2img source."""
    users: dict[str, set[str]] = {}
    for node in graph.values():
        for value in (node.get("inputs") or {}).values():
            if is_link(value):
                users.setdefault(str(value[0]), set()).add(str(node.get("class_type")))
    return {
        node_id
        for node_id, node in graph.items()
        if node.get("class_type") == "LoadImage"
        and users.get(node_id)
        and users[node_id] <= _REFERENCE_USERS
    }


def apply_references(
    picture: Image.Image, graph: Mapping[str, Any], input_dir: Path
) -> Image.Image:
    """The sampled picture as the graph's ControlNets and IP-Adapters shape it."""
    for node_id in sorted(graph, key=_order):
        node = graph[node_id]
        class_type, inputs = node.get("class_type"), node.get("inputs") or {}
        if class_type in CONTROLNET_APPLIES:
            control = image_at(graph, inputs.get("image"), input_dir)
            if control is not None:
                amount = _amount(inputs.get("strength"), 0.5)
                picture = Image.blend(picture, _fit(control, picture.size), amount)
        elif class_type in STYLE_APPLIES:
            style = image_at(graph, inputs.get("image"), input_dir)
            if style is not None:
                blurred = _fit(style, picture.size).filter(ImageFilter.GaussianBlur(8))
                picture = Image.blend(picture, blurred, _amount(inputs.get("weight"), 0.5))
        elif class_type in FACE_APPLIES:
            face = image_at(graph, inputs.get("image"), input_dir)
            if face is not None:
                picture = _paste_face(picture, face, _amount(inputs.get("weight"), 0.8))
    return picture


def image_at(graph: Mapping[str, Any], link: Any, input_dir: Path) -> Image.Image | None:
    """The image a link carries: a loaded file, or a preprocessor's map of one."""
    if not is_link(link) or str(link[0]) not in graph:
        return None
    node = graph[str(link[0])]
    class_type, inputs = node.get("class_type"), node.get("inputs") or {}
    if class_type == "LoadImage":
        path = input_dir / str(inputs.get("image"))
        if not path.is_file():
            return None
        with Image.open(path) as image:
            return image.convert("RGB")
    if class_type in PREPROCESSORS:
        source = image_at(graph, inputs.get("image"), input_dir)
        return None if source is None else preprocess(PREPROCESSORS[class_type], source)
    return None


def preprocess(kind: str, image: Image.Image) -> Image.Image:
    """A stand-in for the preprocessor's map: edges, a thick coloured outline, or blurred depth."""
    gray = ImageOps.grayscale(image)
    if kind == "edges":
        return ImageOps.autocontrast(gray.filter(ImageFilter.FIND_EDGES)).convert("RGB")
    if kind == "pose":
        outline = gray.filter(ImageFilter.FIND_EDGES).filter(ImageFilter.MaxFilter(5))
        black = Image.new("RGB", image.size, "black")
        return Image.composite(ImageOps.colorize(outline, "black", "#00ff80"), black, outline)
    return ImageOps.autocontrast(gray.filter(ImageFilter.GaussianBlur(4))).convert("RGB")


def _paste_face(picture: Image.Image, face: Image.Image, amount: float) -> Image.Image:
    width, height = picture.size
    box = (width // 4, height // 8, 3 * width // 4, 5 * height // 8)
    side = min(face.size)
    left, top = (face.width - side) // 2, (face.height - side) // 2
    crop = face.crop((left, top, left + side, top + side)).resize(
        (box[2] - box[0], box[3] - box[1])
    )
    mask = Image.new("L", crop.size, 0)
    ImageDraw.Draw(mask).ellipse((0, 0, *crop.size), fill=int(255 * amount))
    region = picture.crop(box)
    picture = picture.copy()
    picture.paste(Image.composite(crop, region, mask), box[:2])
    return picture


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image.convert("RGB").resize(size, Image.Resampling.BILINEAR)


def _amount(value: Any, scale: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 1.0
    return max(0.0, min(1.0, number)) * scale


def _order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 30, node_id)


def difference(first: Image.Image, second: Image.Image) -> float:
    """Mean absolute difference per channel (0-255): how much a reference changed a picture."""
    diff = ImageChops.difference(first.convert("RGB"), second.convert("RGB"))
    histogram = diff.histogram()
    total = sum(index % 256 * count for index, count in enumerate(histogram))
    return total / (first.width * first.height * 3)
