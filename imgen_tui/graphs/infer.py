"""What an API-format graph is, read from its nodes: family, task, inputs/outputs and needs.

A workflow dropped into the folder (or shared as a file) has no manifest
entry, so everything the app needs to route and show it is inferred here:

- family from the loaders: a checkpoint or diffusion-model name matched
  against the farm's `models:` table first, then by name ("flux", "xl",
  "pony", "illustrious"), or a text-encoder loader whose `type` says flux;
- task from the node classes: video savers or AnimateDiff make it video, a
  sampler fed by an encoded image is img2img, a sampler on an empty latent
  txt2img, an upscale model without a sampler upscale, anything else other;
- needs per node: the model files its loader inputs name (with the folder
  they live in) and the capability the farm config uses for routing.

A manifest entry, where one exists, overrides family, task and capabilities
(`with_manifest`). Readiness against one node's `/object_info` is
`readiness`: which classes it lacks and which model files are not in the
lists its loaders offer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from imgen_tui.graphs.graph import Graph, is_link, iter_nodes
from imgen_tui.graphs.widgets import combo_choices, input_specs

InferredTask = Literal["txt2img", "img2img", "upscale", "video", "other"]
MediaKind = Literal["text", "image", "video", "audio"]

#: (class, input) -> model folder, for the loaders whose files a node must have
MODEL_INPUTS: dict[tuple[str, str], str] = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("CheckpointLoader", "ckpt_name"): "checkpoints",
    ("ImageOnlyCheckpointLoader", "ckpt_name"): "checkpoints",
    ("unCLIPCheckpointLoader", "ckpt_name"): "checkpoints",
    ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
    ("ControlNetLoader", "control_net_name"): "controlnet",
    ("DiffControlNetLoader", "control_net_name"): "controlnet",
    ("VAELoader", "vae_name"): "vae",
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("DualCLIPLoader", "clip_name1"): "text_encoders",
    ("DualCLIPLoader", "clip_name2"): "text_encoders",
    ("TripleCLIPLoader", "clip_name1"): "text_encoders",
    ("TripleCLIPLoader", "clip_name2"): "text_encoders",
    ("TripleCLIPLoader", "clip_name3"): "text_encoders",
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("StyleModelLoader", "style_model_name"): "style_models",
    ("IPAdapterModelLoader", "ipadapter_file"): "ipadapter",
    ("ADE_LoadAnimateDiffModel", "model_name"): "animatediff_models",
    ("ADE_AnimateDiffLoaderGen1", "model_name"): "animatediff_models",
}
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")

SAMPLER_CLASSES = frozenset(
    {"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"}
)
EMPTY_LATENTS = frozenset(
    {"EmptyLatentImage", "EmptySD3LatentImage", "EmptyHunyuanLatentVideo", "EmptyLTXVLatentVideo"}
)
IMAGE_ENCODERS = frozenset({"VAEEncode", "VAEEncodeForInpaint", "VAEEncodeTiled"})
UPSCALERS = frozenset({"ImageUpscaleWithModel", "UpscaleModelLoader"})
VIDEO_OUTPUTS = frozenset(
    {
        "SaveAnimatedWEBP",
        "SaveAnimatedPNG",
        "SaveWEBM",
        "SaveVideo",
        "CreateVideo",
        "VHS_VideoCombine",
    }
)
IMAGE_OUTPUTS = frozenset({"SaveImage", "PreviewImage", "Image Save"})
AUDIO_OUTPUTS = frozenset({"SaveAudio", "SaveAudioMP3", "SaveAudioOpus", "PreviewAudio"})
IMAGE_INPUTS = frozenset({"LoadImage", "LoadImageMask", "LoadImageOutput"})
VIDEO_INPUTS = frozenset({"LoadVideo", "VHS_LoadVideo", "VHS_LoadVideoPath"})
AUDIO_INPUTS = frozenset({"LoadAudio", "VHS_LoadAudio"})
TEXT_INPUTS = frozenset(
    {"CLIPTextEncode", "CLIPTextEncodeFlux", "CLIPTextEncodeSDXL", "TextEncodeQwenImageEdit"}
)
FAMILY_NAMES = ("sd15", "sdxl", "pony", "illustrious", "flux")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """One model file a node names: where it is asked for and which folder holds it."""

    node_id: str
    class_type: str
    input: str
    name: str
    folder: str


@dataclass(frozen=True, slots=True)
class NodeNeed:
    node_id: str
    class_type: str
    models: tuple[ModelRef, ...] = ()
    capability: str | None = None


@dataclass(frozen=True)
class WorkflowInfo:
    family: str
    task: InferredTask
    classes: tuple[str, ...]
    models: tuple[ModelRef, ...]
    needs: frozenset[str]
    nodes: tuple[NodeNeed, ...]
    inputs: tuple[MediaKind, ...]
    outputs: tuple[MediaKind, ...]
    from_manifest: bool = False


@dataclass(frozen=True)
class Readiness:
    """What one node lacks to run a workflow: nothing means Ready."""

    missing_classes: tuple[str, ...] = ()
    missing_models: tuple[ModelRef, ...] = ()

    @property
    def ready(self) -> bool:
        return not self.missing_classes and not self.missing_models

    @property
    def missing_count(self) -> int:
        return len(self.missing_classes) + len(self.missing_models)

    def summary(self) -> str:
        if self.ready:
            return "Ready"
        parts = [f"class {name}" for name in self.missing_classes]
        parts += [f"{ref.folder}/{ref.name}" for ref in self.missing_models]
        return f"Missing {self.missing_count} ({', '.join(parts)})"


def infer(graph: Graph, farm_models: Mapping[str, str] | None = None) -> WorkflowInfo:
    """Family, task, media and needs of any API graph, without a manifest."""
    nodes = list(iter_nodes(graph))
    classes = tuple(sorted({class_type for _, class_type, _ in nodes}))
    models = tuple(_model_refs(graph))
    family = _family(graph, models, farm_models or {})
    node_needs = tuple(
        NodeNeed(
            node_id,
            class_type,
            tuple(ref for ref in models if ref.node_id == node_id),
            _capability(class_type, family),
        )
        for node_id, class_type, _ in nodes
    )
    needs = frozenset(need.capability for need in node_needs if need.capability)
    return WorkflowInfo(
        family=family,
        task=_task(graph),
        classes=classes,
        models=models,
        needs=needs,
        nodes=node_needs,
        inputs=_media(classes, inputs=True),
        outputs=_media(classes, inputs=False),
    )


def with_manifest(
    info: WorkflowInfo, family: str, task: str, requires: Iterable[str]
) -> WorkflowInfo:
    """A manifest entry wins over what was inferred (it was written by someone who knows)."""
    needs = frozenset(requires)
    if family in FAMILY_NAMES:
        needs |= {family}
    known_task: InferredTask = task if task in _TASKS else "other"  # type: ignore[assignment]
    return replace(info, family=family, task=known_task, needs=needs, from_manifest=True)


_TASKS = ("txt2img", "img2img", "upscale", "video", "other")


def readiness(info: WorkflowInfo, object_info: Mapping[str, Any]) -> Readiness:
    """Which classes and model files of the workflow one node's `/object_info` lacks.

    A model file counts as present when the loader input that names it lists
    it among its choices on that node (the node's own model lists).
    """
    missing_classes = tuple(name for name in info.classes if name not in object_info)
    missing_models = []
    for ref in info.models:
        class_info = object_info.get(ref.class_type)
        if not isinstance(class_info, Mapping):
            continue  # already counted as a missing class
        spec = dict((name, spec) for name, spec, _ in input_specs(class_info)).get(ref.input)
        if spec is None or ref.name not in [str(choice) for choice in combo_choices(spec)]:
            missing_models.append(ref)
    return Readiness(missing_classes, tuple(missing_models))


# -- the pieces ----------------------------------------------------------------------------


def _model_refs(graph: Graph) -> list[ModelRef]:
    refs: list[ModelRef] = []
    for node_id, class_type, inputs in iter_nodes(graph):
        for name, value in inputs.items():
            if not isinstance(value, str) or not value or is_link(value):
                continue
            folder = MODEL_INPUTS.get((class_type, name))
            if folder is None and value.lower().endswith(MODEL_SUFFIXES):
                folder = _folder_by_name(name)
            if folder is not None:
                refs.append(ModelRef(node_id, class_type, name, value, folder))
    return refs


def _folder_by_name(input_name: str) -> str:
    """A pack's loader we do not know: name the folder after the input, as packs tend to."""
    lowered = input_name.lower()
    for hint, folder in (
        ("lora", "loras"),
        ("ckpt", "checkpoints"),
        ("vae", "vae"),
        ("control", "controlnet"),
        ("clip", "text_encoders"),
        ("unet", "diffusion_models"),
        ("upscale", "upscale_models"),
    ):
        if hint in lowered:
            return folder
    return "models"


def _family(graph: Graph, models: tuple[ModelRef, ...], farm_models: Mapping[str, str]) -> str:
    names = [ref.name for ref in models if ref.folder in ("checkpoints", "diffusion_models")]
    for name in names:
        for family, configured in farm_models.items():
            if configured == name and family in FAMILY_NAMES:
                return family
    for name in names:
        guessed = family_from_name(name)
        if guessed is not None:
            return guessed
    for _, class_type, inputs in iter_nodes(graph):
        if class_type in ("DualCLIPLoader", "CLIPLoader") and inputs.get("type") == "flux":
            return "flux"
        if class_type in ("CLIPTextEncodeFlux", "FluxGuidance", "ModelSamplingFlux"):
            return "flux"
        if class_type == "CLIPTextEncodeSDXL":
            return "sdxl"
    return "sd15" if names else "any"


def family_from_name(name: str) -> str | None:
    """A family from a checkpoint's file name, or None when the name says nothing."""
    lowered = name.lower()
    for hint, family in (
        ("flux", "flux"),
        ("pony", "pony"),
        ("illustrious", "illustrious"),
        ("noobai", "illustrious"),
        ("sdxl", "sdxl"),
        ("_xl", "sdxl"),
        ("xl_", "sdxl"),
        ("-xl", "sdxl"),
        ("sd15", "sd15"),
        ("v1-5", "sd15"),
        ("sd_1.5", "sd15"),
        ("sd-1.5", "sd15"),
    ):
        if hint in lowered:
            return family
    return None


def _task(graph: Graph) -> InferredTask:
    nodes = list(iter_nodes(graph))
    classes = {class_type for _, class_type, _ in nodes}
    if classes & VIDEO_OUTPUTS or any(name.startswith("ADE_") for name in classes):
        return "video"
    samplers = [inputs for _, class_type, inputs in nodes if class_type in SAMPLER_CLASSES]
    if samplers:
        latent_sources = {
            _upstream_class(graph, inputs.get("latent_image"), set()) for inputs in samplers
        }
        if latent_sources & IMAGE_ENCODERS:
            return "img2img"
        if latent_sources & EMPTY_LATENTS:
            return "txt2img"
        return "other"
    if classes & UPSCALERS:
        return "upscale"
    return "other"


def _upstream_class(graph: Graph, link: Any, seen: set[str]) -> str | None:
    """The first latent maker up a latent wire (through upscales and batch nodes)."""
    if not is_link(link) or link[0] in seen:
        return None
    node = graph.get(link[0])
    if not isinstance(node, dict):
        return None
    class_type = node.get("class_type")
    if class_type in EMPTY_LATENTS or class_type in IMAGE_ENCODERS:
        return str(class_type)
    inputs = node.get("inputs") or {}
    for name in ("samples", "latent", "latent_image", "samples1", "source"):
        found = _upstream_class(graph, inputs.get(name), seen | {link[0]})
        if found is not None:
            return found
    return None


def _capability(class_type: str, family: str) -> str | None:
    if class_type in ("CheckpointLoaderSimple", "CheckpointLoader", "UNETLoader"):
        return family if family in FAMILY_NAMES else None
    if class_type in UPSCALERS:
        return "upscale"
    if class_type in ("ControlNetLoader", "DiffControlNetLoader"):
        return "controlnet"
    if class_type.startswith("IPAdapter"):
        return "faceid" if "FaceID" in class_type else "ipadapter"
    if class_type.startswith("ADE_"):
        return "animatediff"
    return None


def _media(classes: tuple[str, ...], *, inputs: bool) -> tuple[MediaKind, ...]:
    present = set(classes)
    kinds: list[MediaKind] = []
    if inputs:
        table: tuple[tuple[MediaKind, frozenset[str]], ...] = (
            ("text", TEXT_INPUTS),
            ("image", IMAGE_INPUTS),
            ("video", VIDEO_INPUTS),
            ("audio", AUDIO_INPUTS),
        )
    else:
        table = (("image", IMAGE_OUTPUTS), ("video", VIDEO_OUTPUTS), ("audio", AUDIO_OUTPUTS))
    for kind, names in table:
        if present & names:
            kinds.append(kind)
    return tuple(kinds)
