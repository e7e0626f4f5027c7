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
_REFERENCE_USERS = frozenset(
    {*CONTROLNET_APPLIES, *STYLE_APPLIES, *FACE_APPLIES, *PREPROCESSORS, "CLIPVisionEncode"}
)


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
        elif class_type == "StyleModelApply":  # core's: the CLIP-vision look of its image
            style = image_at(graph, inputs.get("clip_vision_output"), input_dir)
            if style is not None:
                blurred = _fit(style, picture.size).filter(ImageFilter.GaussianBlur(8))
                picture = Image.blend(picture, blurred, _amount(inputs.get("strength"), 0.5))
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
    if class_type == "CLIPVisionEncode":  # its output stands for its image's look
        return image_at(graph, inputs.get("image"), input_dir)
    return None


def preprocess(kind: str, image: Image.Image) -> Image.Image:
    """A stand-in for the preprocessor's map: edges, an OpenPose skeleton, or blurred depth."""
    gray = ImageOps.grayscale(image)
    if kind == "edges":
        return ImageOps.autocontrast(gray.filter(ImageFilter.FIND_EDGES)).convert("RGB")
    if kind == "pose":
        return pose_map(image)
    return ImageOps.autocontrast(gray.filter(ImageFilter.GaussianBlur(4))).convert("RGB")


#: OpenPose's 18 keypoints (COCO order) of a standing figure in a unit box, its limbs, and the
#: colours DWPose / OpenposePreprocessor draw them in (limbs at 60% brightness, joints full)
POSE_POINTS = (
    (0.50, 0.10), (0.50, 0.22), (0.36, 0.22), (0.30, 0.40), (0.26, 0.56),
    (0.64, 0.22), (0.70, 0.40), (0.74, 0.56), (0.42, 0.55), (0.40, 0.76),
    (0.39, 0.96), (0.58, 0.55), (0.60, 0.76), (0.61, 0.96), (0.47, 0.08),
    (0.53, 0.08), (0.44, 0.10), (0.56, 0.10),
)  # fmt: skip
POSE_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
POSE_COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip


def pose_map(image: Image.Image) -> Image.Image:
    """A skeleton in OpenPose's colours on black, fitted to where the picture has detail.

    A test (and the operator) can tell it apart from any photo at a glance:
    mostly black, with OpenPose's pure red, blue and green joints.
    """
    width, height = image.size
    edges = ImageOps.grayscale(image).filter(ImageFilter.FIND_EDGES)
    box = edges.point(lambda value: 255 if value > 40 else 0).getbbox() or (0, 0, width, height)
    left, top, right, bottom = box
    side = max(8, bottom - top)
    fig_width = max(8, min(right - left, side * 2 // 3))
    centre = (left + right) // 2
    x0 = max(0, centre - fig_width // 2)
    points = [(x0 + x * fig_width, top + y * side) for x, y in POSE_POINTS]
    canvas = Image.new("RGB", image.size, "black")
    draw = ImageDraw.Draw(canvas)
    stroke = max(1, min(width, height) // 64)
    for index, (a, b) in enumerate(POSE_LIMBS):
        colour = tuple(int(c * 0.6) for c in POSE_COLOURS[index])
        draw.line((points[a], points[b]), fill=colour, width=stroke * 2)
    for index, (x, y) in enumerate(points):
        r = stroke + 1
        draw.ellipse((x - r, y - r, x + r, y + r), fill=POSE_COLOURS[index])
    return canvas


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
