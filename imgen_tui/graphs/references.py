"""Reference controls (pose, depth, edges, style, face) injected into ANY API-format graph.

The model path and the conditioning pair are found by following the samplers'
links, never by titles, so a graph exported from anyone's ComfyUI takes them.
Every inserted node carries `_meta.title` starting with `imgen ref`, so the
sidecar shows what ran and `strip_references` can undo the change exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from imgen_tui.comfy.errors import ComfyError
from imgen_tui.comfy.events import ImageRef
from imgen_tui.comfy.ipadapter_presets import FACE_PRESET, STYLE_PRESET, PresetError, resolve_preset
from imgen_tui.comfy.responses import ObjectInfo
from imgen_tui.comfy.style_paths import style_path
from imgen_tui.graphs.graph import Graph, GraphError, is_link, iter_nodes, next_node_id
from imgen_tui.graphs.params import SAMPLERS
from imgen_tui.graphs.reference_pin import PinnedReference

if TYPE_CHECKING:
    from imgen_tui.graphs.templates import WorkflowTemplate

Kind = Literal["pose", "depth", "edges", "style", "face", "subject"]
# subject: IP-Adapter with a linear weight (what it looks like, not only its style) — the
# keyframe flow keeps its first locked still this way across the other keyframes.
KINDS: tuple[Kind, ...] = ("pose", "depth", "edges", "style", "face", "subject")
CONTROLNET_KINDS = frozenset({"pose", "depth", "edges"})
REF_TITLE = "imgen ref"

#: words a ControlNet file name carries for each kind, first the most specific
KIND_WORDS: dict[str, tuple[str, ...]] = {
    "pose": ("openpose", "pose"),
    "depth": ("depth",),
    "edges": ("canny", "edge", "lineart"),
}
FAMILY_WORDS: dict[str, tuple[str, ...]] = {
    "sd15": ("sd15", "sd1.5", "v11", "sd_15", "sd-15"),
    "sdxl": ("sdxl", "_xl", "xl_", "-xl"),
    "flux": ("flux",),
}


class ReferenceUnavailable(GraphError):
    """This node lacks a file a reference needs: another node may have it."""


@dataclass(frozen=True, slots=True)
class Reference:
    kind: Kind
    image: str  # the name LoadImage reads on the node (an uploaded file)
    strength: float = 0.8
    start: float = 0.0
    end: float = 1.0


def capability_for(kind: str) -> str:
    """The node capability a reference kind needs.

    A style needs `style`, which IP-Adapter or a core fallback gives
    (`comfy/style_paths.py`); a subject (what it looks like) needs IP-Adapter itself.
    """
    if kind in CONTROLNET_KINDS:
        return "controlnet"
    return {"face": "faceid", "style": "style"}.get(kind, "ipadapter")


def reference_needs(references: Iterable[Reference]) -> frozenset[str]:
    """What a job with these references needs of a node: routing refuses the others."""
    return frozenset(capability_for(ref.kind) for ref in references)


def choose_controlnet(kind: str, family: str, options: Iterable[str]) -> str | None:
    """The ControlNet file for `kind` and `family` among a node's files, or None."""
    family_words = FAMILY_WORDS.get(family, (family,))
    for word in KIND_WORDS[kind]:
        for name in sorted(options):
            low = name.lower()
            if word in low and any(f in low for f in family_words):
                return name
    return None


def inject_references(
    graph: Graph,
    references: Sequence[Reference],
    controlnets: dict[str, str],
    *,
    preprocessors: frozenset[str] = frozenset(),
) -> Graph:
    """A copy with each reference's nodes inserted on the model or conditioning path.

    `controlnets` maps a kind to the ControlNet file chosen for the node
    (`choose_controlnet`); `preprocessors` names the aux classes the node has:
    pose uses DWPreprocessor or OpenposePreprocessor, depth
    DepthAnythingV2Preprocessor, and without them the image is taken as a
    ready pose or depth map. Edges always use core `Canny`.
    """
    result = copy.deepcopy(graph)
    samplers = [(nid, inputs) for nid, ct, inputs in iter_nodes(result) if ct in SAMPLERS]
    if not samplers and references:
        raise GraphError("the workflow has no KSampler, so there is nowhere to apply a reference")
    next_id = next_node_id(result)

    def add(class_type: str, inputs: dict[str, Any], what: str) -> str:
        nonlocal next_id
        node_id = str(next_id)
        next_id += 1
        result[node_id] = {
            "class_type": class_type,
            "inputs": inputs,
            "_meta": {"title": f"{REF_TITLE} {what}"},
        }
        return node_id

    for ref in references:
        load = add("LoadImage", {"image": ref.image}, ref.kind)
        image: list[Any] = [load, 0]
        if ref.kind in CONTROLNET_KINDS:
            if ref.kind not in controlnets:
                raise GraphError(f"no ControlNet model was chosen for {ref.kind}")
            image = _preprocess(add, ref.kind, image, preprocessors)
            loader = add("ControlNetLoader", {"control_net_name": controlnets[ref.kind]}, ref.kind)
            pairs = {
                (tuple(_link(inputs, "positive")), tuple(_link(inputs, "negative")))
                for _, inputs in samplers
            }
            vae = _find_vae(result)
            for positive, negative in sorted(pairs, key=repr):
                apply_inputs: dict[str, Any] = {
                    "positive": list(positive),
                    "negative": list(negative),
                    "control_net": [loader, 0],
                    "image": image,
                    "strength": ref.strength,
                    "start_percent": ref.start,
                    "end_percent": ref.end,
                }
                if vae is not None:
                    apply_inputs["vae"] = vae
                apply = add("ControlNetApplyAdvanced", apply_inputs, ref.kind)
                for _, inputs in samplers:
                    if inputs.get("positive") == list(positive) and inputs.get("negative") == list(
                        negative
                    ):
                        inputs["positive"], inputs["negative"] = [apply, 0], [apply, 1]
        else:
            models = {tuple(_link(inputs, "model")) for _, inputs in samplers}
            for model in sorted(models):
                if ref.kind in ("style", "subject"):
                    unified = add(
                        "IPAdapterUnifiedLoader",
                        {"model": list(model), "preset": STYLE_PRESET},
                        ref.kind,
                    )
                    apply = add(
                        "IPAdapterAdvanced",
                        {
                            "model": [unified, 0],
                            "ipadapter": [unified, 1],
                            "image": image,
                            "weight": ref.strength,
                            "weight_type": "style transfer" if ref.kind == "style" else "linear",
                            "combine_embeds": "concat",
                            "start_at": ref.start,
                            "end_at": ref.end,
                            "embeds_scaling": "V only",
                        },
                        ref.kind,
                    )
                else:
                    unified = add(
                        "IPAdapterUnifiedLoaderFaceID",
                        {
                            "model": list(model),
                            "preset": FACE_PRESET,
                            "lora_strength": 0.6,
                            "provider": "CPU",
                        },
                        ref.kind,
                    )
                    apply = add(
                        "IPAdapterFaceID",
                        {
                            "model": [unified, 0],
                            "ipadapter": [unified, 1],
                            "image": image,
                            "weight": ref.strength,
                            "weight_faceidv2": ref.strength,
                            "weight_type": "linear",
                            "combine_embeds": "concat",
                            "start_at": ref.start,
                            "end_at": ref.end,
                            "embeds_scaling": "V only",
                        },
                        ref.kind,
                    )
                for _, inputs in samplers:
                    if inputs.get("model") == list(model):
                        inputs["model"] = [apply, 0]
    return result


def _preprocess(add: Any, kind: str, image: list[Any], preprocessors: frozenset[str]) -> list[Any]:
    if kind == "edges":
        node = add("Canny", {"image": image, "low_threshold": 0.4, "high_threshold": 0.8}, kind)
        return [node, 0]
    wanted = (
        ("DWPreprocessor", "OpenposePreprocessor")
        if kind == "pose"
        else ("DepthAnythingV2Preprocessor",)
    )
    for class_type in wanted:
        if class_type in preprocessors:
            node = add(class_type, {"image": image, "resolution": 512}, kind)
            keep_map(add, node, kind)
            return [node, 0]
    return image


def keep_map(add: Any, preprocessor: str, kind: str) -> None:
    """A PreviewImage on the preprocessor's map, so the map comes back as an image of its own.

    It lands in the node's temp folder, so it is never taken for the job's
    picture (`saved_images` are the output folder's); the scheduler picks it
    out of the history by this inserted PreviewImage (`map_outputs`).
    """
    add("PreviewImage", {"images": [preprocessor, 0]}, kind)


def map_outputs(graph: Graph, outputs: dict[str, Any]) -> tuple[tuple[str, str, ImageRef], ...]:
    """(kind, reference LoadImage id, image) of each preprocessor map a finished prompt kept."""
    found = []
    for node_id, class_type, inputs in iter_nodes(graph):
        if class_type != "PreviewImage" or node_id not in reference_nodes(graph):
            continue
        source = inputs.get("images")
        if not is_link(source) or source[0] not in graph:
            continue
        load = graph[source[0]]["inputs"].get("image")
        output = outputs.get(node_id)
        images = output.get("images") if isinstance(output, dict) else None
        if not is_link(load) or not isinstance(images, list) or not images:
            continue
        try:
            image = ImageRef.from_json(images[0])
        except ComfyError:
            continue
        found.append((_kind_of(graph[node_id]), str(load[0]), image))
    return tuple(found)


def _link(inputs: dict[str, Any], name: str) -> list[Any]:
    value = inputs.get(name)
    if not is_link(value):
        raise GraphError(f"a sampler's {name} input is not linked, so a reference cannot join it")
    return value


def _find_vae(graph: Graph) -> list[Any] | None:
    """The VAE the graph decodes with: ControlNetApplyAdvanced's optional `vae`."""
    for _, class_type, inputs in iter_nodes(graph):
        if class_type == "VAEDecode" and is_link(inputs.get("vae")):
            return list(inputs["vae"])
    return None


def reference_nodes(graph: Graph) -> list[str]:
    """Ids of the nodes `inject_references` inserted."""
    return [
        node_id
        for node_id, node in graph.items()
        if isinstance(node, dict)
        and str((node.get("_meta") or {}).get("title", "")).startswith(REF_TITLE)
    ]


def strip_references(graph: Graph) -> Graph:
    """A copy with the inserted nodes removed and their users wired back past them."""
    result = copy.deepcopy(graph)
    inserted = set(reference_nodes(result))

    def resolve(link: list[Any]) -> list[Any]:
        while link[0] in inserted:
            node = result[link[0]]
            inputs = node["inputs"]
            if node["class_type"] == "ControlNetApplyAdvanced":
                link = inputs["positive"] if link[1] == 0 else inputs["negative"]
            else:
                link = inputs["model"]
        return list(link)

    for node_id, _, inputs in iter_nodes(result):
        if node_id in inserted:
            continue
        for name, value in inputs.items():
            if is_link(value) and value[0] in inserted:
                inputs[name] = resolve(value)
    for node_id in inserted:
        del result[node_id]
    return result


def set_reference_image(graph: Graph, load_id: str, image_name: str) -> Graph:
    """A copy whose reference LoadImage `load_id` reads `image_name` (its upload on the node)."""
    node = graph.get(load_id)
    if not isinstance(node, dict) or node.get("class_type") != "LoadImage":
        raise GraphError(f"node {load_id} is not the LoadImage of a reference")
    result = copy.deepcopy(graph)
    result[load_id]["inputs"]["image"] = image_name
    return result


AUTO_PREFIX = "auto:"


def auto_controlnets(family: str) -> dict[str, str]:
    """Placeholder file names, bound per node by `bind_controlnets` once it is chosen."""
    return {kind: f"{AUTO_PREFIX}{kind}:{family}" for kind in sorted(CONTROLNET_KINDS)}


def bind_controlnets(graph: Graph, files: Iterable[str]) -> Graph:
    """A copy whose placeholder ControlNet names are this node's matching files.

    Raises GraphError naming the kind and family when the node has no such file.
    """
    options = list(files)
    result = copy.deepcopy(graph)
    for node_id, class_type, inputs in iter_nodes(result):
        name = inputs.get("control_net_name")
        if class_type != "ControlNetLoader" or not str(name).startswith(AUTO_PREFIX):
            continue
        kind, _, family = str(name)[len(AUTO_PREFIX) :].partition(":")
        chosen = choose_controlnet(kind, family, options)
        if chosen is None:
            raise ReferenceUnavailable(
                f"node {node_id}: no {family} ControlNet model for {kind} is installed "
                f"(have: {', '.join(options) or 'none'})"
            )
        inputs["control_net_name"] = chosen
    return result


#: aux-pack classes that turn a photo into a pose or depth map, best first
PREPROCESSOR_CLASSES: dict[str, tuple[str, ...]] = {
    "pose": ("DWPreprocessor", "OpenposePreprocessor"),
    "depth": ("DepthAnythingV2Preprocessor",),
}


def bind_references(graph: Graph, info: ObjectInfo | None, family: str) -> Graph:
    """The graph as this node can run it: its ControlNet files, its preprocessors, its presets.

    Called at post time, once the node is chosen: placeholder ControlNet names
    become the node's files; a pose or depth reference fed straight from its
    LoadImage gets the node's aux preprocessor (a node without the pack takes
    the image as a ready map); an IP-Adapter loader's `_meta` records the
    files its preset resolves to there, so the sidecar can name them.
    """
    if info is None:
        return graph
    result = bind_controlnets(graph, info.controlnets)
    result = _add_preprocessors(result, info)
    result = bind_style(result, info, family)
    clip_vision = info.options("CLIPVisionLoader", "clip_name")
    adapters = info.options("IPAdapterModelLoader", "ipadapter_file")
    for node_id in reference_nodes(result):
        node = result[node_id]
        if node["class_type"] not in ("IPAdapterUnifiedLoader", "IPAdapterUnifiedLoaderFaceID"):
            continue
        try:
            files = resolve_preset(
                str(node["inputs"].get("preset")),
                family != "sd15",
                clip_vision=clip_vision,
                ipadapter=adapters,
                loras=info.loras,
            )
        except PresetError as error:
            raise ReferenceUnavailable(f"node {node_id}: {error}") from None
        node["_meta"]["models"] = [
            name for name in (files.ipadapter, files.clip_vision, files.lora) if name
        ]
    return result


#: how far the img2img fallback lets the sampler move from the reference: strength 0.8 keeps
#: a third of it (denoise 0.68), 2 keeps most of it (0.2)
IMG2IMG_PER_STRENGTH, MIN_IMG2IMG_DENOISE = 0.4, 0.2
EMPTY_LATENTS = ("EmptyLatentImage", "EmptySD3LatentImage")


def img2img_denoise(strength: float) -> float:
    return round(max(MIN_IMG2IMG_DENOISE, min(1.0, 1.0 - IMG2IMG_PER_STRENGTH * strength)), 2)


def bind_style(graph: Graph, info: ObjectInfo, family: str) -> Graph:
    """Each style reference as this node can carry it, and which way in its LoadImage's `_meta`.

    With the IP-Adapter pack and its files the graph stays as injected. Without,
    the IP-Adapter pair is taken out and a core path put in: a style model on
    the positive conditioning, or img2img from the reference (only where the
    sampler starts from an empty latent: an img2img graph already has a source,
    and replacing it would not be a style). ReferenceUnavailable otherwise, so
    the job moves to a node that can.
    """
    result = copy.deepcopy(graph)
    for load_id in reference_nodes(graph):
        load = result.get(load_id)
        if load is None or load["class_type"] != "LoadImage" or _kind_of(load) != "style":
            continue
        applies = [
            node_id
            for node_id, class_type, inputs in iter_nodes(result)
            if class_type == "IPAdapterAdvanced" and inputs.get("image") == [load_id, 0]
        ]
        if not applies:
            continue
        path = style_path(info, family)
        if path is None:
            raise ReferenceUnavailable(
                "no IP-Adapter, no style model and no VAEEncode for a style reference"
            )
        load["_meta"]["via"] = path.via
        if path.via == "ipadapter":
            continue
        first = result[applies[0]]["inputs"]
        strength = float(first.get("weight", 0.8))
        window = (float(first.get("start_at", 0.0)), float(first.get("end_at", 1.0)))
        # what the sidecar cannot read off the core nodes: img2img has no window at all
        load["_meta"]["strength"] = strength
        if path.via == "style model":
            load["_meta"]["start"], load["_meta"]["end"] = window
        samplers = [
            (node_id, inputs)
            for node_id, class_type, inputs in iter_nodes(result)
            if class_type in SAMPLERS and set(_model_chain(result, inputs)) & set(applies)
        ]
        for apply_id in applies:
            _take_out(result, apply_id)
        if path.via == "style model":
            _style_model_path(
                result, load_id, samplers, path.style_model, path.clip_vision, strength, window
            )
        else:
            _img2img_path(result, load_id, samplers, strength)
    return result


def _model_chain(graph: Graph, inputs: dict[str, Any]) -> list[str]:
    """The nodes a sampler's model passes through, nearest first (LoRAs, adapters...)."""
    chain: list[str] = []
    link = inputs.get("model")
    while is_link(link) and str(link[0]) in graph and str(link[0]) not in chain:
        chain.append(str(link[0]))
        link = (graph[str(link[0])].get("inputs") or {}).get("model")
    return chain


def _take_out(graph: Graph, apply_id: str) -> None:
    """Remove an IP-Adapter apply and its loader, wiring their users to the model before them."""
    loader_id = str(graph[apply_id]["inputs"]["ipadapter"][0])
    model = list(graph[loader_id]["inputs"]["model"])
    for node_id, _, inputs in iter_nodes(graph):
        for name, value in inputs.items():
            if node_id not in (apply_id, loader_id) and value == [apply_id, 0]:
                inputs[name] = list(model)
    del graph[apply_id], graph[loader_id]


def _style_model_path(
    graph: Graph,
    load_id: str,
    samplers: list[tuple[str, dict[str, Any]]],
    style_model: str | None,
    clip_vision: str | None,
    strength: float,
    window: tuple[float, float] = (0.0, 1.0),
) -> None:
    """StyleModelApply on each positive conditioning the samplers use.

    StyleModelApply has no start or end of its own, so a narrower window is
    core's way: the styled conditioning over [start, end] combined with the
    plain one over the rest (`ConditioningSetTimestepRange`, `ConditioningCombine`).
    """
    add = _adder(graph)
    start, end = window
    vision = add("CLIPVisionLoader", {"clip_name": clip_vision}, "style")
    encoded = add(
        "CLIPVisionEncode",
        {"clip_vision": [vision, 0], "image": [load_id, 0], "crop": "center"},
        "style",
    )
    loader = add("StyleModelLoader", {"style_model_name": style_model}, "style")
    for positive in sorted({tuple(_link(inputs, "positive")) for _, inputs in samplers}, key=repr):
        styled = add(
            "StyleModelApply",
            {
                "conditioning": list(positive),
                "style_model": [loader, 0],
                "clip_vision_output": [encoded, 0],
                "strength": strength,
                "strength_type": "multiply",
            },
            "style",
        )
        conditioning: list[Any] = [styled, 0]
        if start > 0 or end < 1:
            ranges = [(conditioning, start, end)]
            ranges += [(list(positive), 0.0, start)] if start > 0 else []
            ranges += [(list(positive), end, 1.0)] if end < 1 else []
            parts = [
                [
                    add(
                        "ConditioningSetTimestepRange",
                        {"conditioning": part, "start": low, "end": high},
                        "style",
                    ),
                    0,
                ]
                for part, low, high in ranges
            ]
            conditioning = parts[0]
            for part in parts[1:]:
                combined = add(
                    "ConditioningCombine",
                    {"conditioning_1": conditioning, "conditioning_2": part},
                    "style",
                )
                conditioning = [combined, 0]
        for _, inputs in samplers:
            if inputs.get("positive") == list(positive):
                inputs["positive"] = list(conditioning)


def _img2img_path(
    graph: Graph, load_id: str, samplers: list[tuple[str, dict[str, Any]]], strength: float
) -> None:
    """The first pass starts from the reference instead of noise; later passes (a hires
    fix's, whose latent is the first pass's) refine that and are left as they are."""
    add = _adder(graph)
    vae = _find_vae(graph)
    starts = [
        (inputs, graph[str(inputs["latent_image"][0])]["inputs"])
        for _, inputs in samplers
        if is_link(inputs.get("latent_image"))
        and str(inputs["latent_image"][0]) in graph
        and graph[str(inputs["latent_image"][0])].get("class_type") in EMPTY_LATENTS
    ]
    if vae is None or not starts:
        names = ", ".join(sampler_id for sampler_id, _ in samplers) or "none"
        raise ReferenceUnavailable(
            f"no IP-Adapter or style model here, and no sampler ({names}) starts from an "
            "empty latent, so a style reference cannot be carried by img2img"
        )
    for inputs, size in starts:
        scaled = add(
            "ImageScale",
            {
                "image": [load_id, 0],
                "upscale_method": "lanczos",
                "width": size.get("width", 512),
                "height": size.get("height", 512),
                "crop": "center",
            },
            "style",
        )
        encoded: list[Any] = [add("VAEEncode", {"pixels": [scaled, 0], "vae": vae}, "style"), 0]
        batch = int(size.get("batch_size") or 1)
        if batch > 1:
            encoded = [
                add("RepeatLatentBatch", {"samples": encoded, "amount": batch}, "style"),
                0,
            ]
        inputs["latent_image"] = encoded
        inputs["denoise"] = img2img_denoise(strength)


def _adder(graph: Graph) -> Any:
    next_id = next_node_id(graph)

    def add(class_type: str, inputs: dict[str, Any], what: str) -> str:
        nonlocal next_id
        node_id = str(next_id)
        next_id += 1
        graph[node_id] = {
            "class_type": class_type,
            "inputs": inputs,
            "_meta": {"title": f"{REF_TITLE} {what}"},
        }
        return node_id

    return add


def _kind_of(node: dict[str, Any]) -> str:
    return str((node.get("_meta") or {}).get("title", "")).removeprefix(REF_TITLE).strip()


def _add_preprocessors(graph: Graph, info: ObjectInfo) -> Graph:
    result = copy.deepcopy(graph)
    next_id = next_node_id(result)
    for node_id in reference_nodes(graph):
        node = result[node_id]
        kind = str(node["_meta"]["title"]).removeprefix(REF_TITLE).strip()
        if node["class_type"] != "ControlNetApplyAdvanced" or kind not in PREPROCESSOR_CLASSES:
            continue
        source = node["inputs"].get("image")
        if not is_link(source) or result[source[0]]["class_type"] != "LoadImage":
            continue
        chosen = next((c for c in PREPROCESSOR_CLASSES[kind] if info.has_class(c)), None)
        if chosen is None:
            continue
        new_id = str(next_id)
        next_id += 1
        result[new_id] = {
            "class_type": chosen,
            "inputs": {"image": list(source), "resolution": 512},
            "_meta": {"title": f"{REF_TITLE} {kind}"},
        }
        preview_id = str(next_id)
        next_id += 1
        result[preview_id] = {
            "class_type": "PreviewImage",
            "inputs": {"images": [new_id, 0]},
            "_meta": {"title": f"{REF_TITLE} {kind}"},
        }
        for other in reference_nodes(result):
            inputs = result[other]["inputs"]
            if result[other]["class_type"] == "ControlNetApplyAdvanced" and inputs.get(
                "image"
            ) == list(source):
                inputs["image"] = [new_id, 0]
    return result


def describe_references(
    graph: Graph, local_files: Iterable[tuple[str, str]] = ()
) -> list[dict[str, Any]]:
    """What each reference was, for the sidecar: kind, file, strength, the nodes and models used."""
    files = dict(local_files)
    users: dict[str, list[str]] = {}
    for node_id, _, inputs in iter_nodes(graph):
        for value in inputs.values():
            if is_link(value):
                users.setdefault(str(value[0]), []).append(node_id)
    described = []
    for load_id in reference_nodes(graph):
        load = graph[load_id]
        if load["class_type"] != "LoadImage":
            continue
        kind = str(load["_meta"]["title"]).removeprefix(REF_TITLE).strip()
        chain, frontier = [], list(users.get(load_id, []))
        while frontier:
            current = frontier.pop(0)
            if current in chain or current not in graph:
                continue
            chain.append(current)
            if graph[current]["class_type"] in _PREPROCESS_STEPS:
                frontier += users.get(current, [])
        entry: dict[str, Any] = {
            "kind": kind,
            "file": files.get(load_id, load["inputs"].get("image")),
            "image": load["inputs"].get("image"),
            "nodes": [f"{load_id} LoadImage"],
            "models": [],
        }
        via = (load.get("_meta") or {}).get("via")
        if via:
            entry["via"] = via  # which way a style was carried on the node that ran it
        if any(graph[node_id]["class_type"] == "PreviewImage" for node_id in chain):
            entry["map_saved"] = True  # the preprocessor's map comes back as its own image
        for node_id in chain:
            node, inputs = graph[node_id], graph[node_id]["inputs"]
            entry["nodes"].append(f"{node_id} {node['class_type']}")
            for loader_input in ("control_net", "ipadapter", "clip_vision", "style_model"):
                loader_link = inputs.get(loader_input)
                if is_link(loader_link) and loader_link[0] in graph:
                    loader = graph[loader_link[0]]
                    entry["nodes"].append(f"{loader_link[0]} {loader['class_type']}")
                    named = next(
                        (
                            loader["inputs"][name]
                            for name in _MODEL_INPUTS
                            if loader["inputs"].get(name)
                        ),
                        None,
                    )
                    entry["models"] += [named, *(loader.get("_meta") or {}).get("models", [])]
            if node["class_type"] in SAMPLERS and "denoise" in inputs:
                entry["denoise"] = inputs["denoise"]  # the img2img fallback's
            for name, key in (("strength", "strength"), ("weight", "strength")):
                if name in inputs:
                    entry[key] = inputs[name]
            for name, key in (("start_percent", "start"), ("start_at", "start")):
                if name in inputs:
                    entry[key] = inputs[name]
            for name, key in (("end_percent", "end"), ("end_at", "end")):
                if name in inputs:
                    entry[key] = inputs[name]
        for key in ("strength", "start", "end"):
            if key not in entry and key in (load.get("_meta") or {}):
                entry[key] = load["_meta"][key]
        entry["nodes"] = sorted(set(entry["nodes"]), key=lambda text: int(text.split()[0]))
        entry["models"] = list(dict.fromkeys(entry["models"]))
        described.append(entry)
    return described


_PREPROCESS_STEPS = frozenset(
    {
        "Canny",
        *(c for group in PREPROCESSOR_CLASSES.values() for c in group),
        # the core style fallbacks' steps between the reference and what it steers
        "CLIPVisionEncode",
        "ImageScale",
        "VAEEncode",
        "RepeatLatentBatch",
    }
)
_MODEL_INPUTS = ("control_net_name", "preset", "style_model_name", "clip_name")


def with_pinned_references(
    graph: Graph, template: WorkflowTemplate, pins: Sequence[PinnedReference]
) -> tuple[Graph, tuple[tuple[str, str], ...], frozenset[str]]:
    """A round's graph with the session's pins: (graph, LoadImage id -> local file, needs).

    An upscale has no sampler to steer, so it is made as it is.
    """
    if template.task == "upscale":
        return graph, (), frozenset()
    return with_local_references(graph, template.family, pins)


def with_local_references(
    graph: Graph, family: str, pins: Sequence[PinnedReference]
) -> tuple[Graph, tuple[tuple[str, str], ...], frozenset[str]]:
    """Any graph with references to local files: (graph, LoadImage id -> file, needs).

    The LoadImage nodes read the file's name for now; the scheduler uploads
    each file to the node that runs the job and writes its name there.
    """
    if not pins:
        return graph, (), frozenset()
    refs = [
        Reference(pin.kind, Path(pin.path).name, pin.strength, pin.start, pin.end) for pin in pins
    ]
    before = set(graph)
    injected = inject_references(graph, refs, auto_controlnets(family))
    loads = [
        node_id
        for node_id in sorted(set(injected) - before, key=_node_order)
        if injected[node_id]["class_type"] == "LoadImage"
    ]
    files = tuple((load, pin.path) for load, pin in zip(loads, pins, strict=True))
    return injected, files, reference_needs(refs)


def _node_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 30, node_id)
