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

from imgen_tui.comfy.ipadapter_presets import FACE_PRESET, STYLE_PRESET, PresetError, resolve_preset
from imgen_tui.comfy.responses import ObjectInfo
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
    """The node capability a reference kind needs."""
    return (
        "controlnet" if kind in CONTROLNET_KINDS else ("faceid" if kind == "face" else "ipadapter")
    )


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
            return [add(class_type, {"image": image, "resolution": 512}, kind), 0]
    return image


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
        for node_id in chain:
            node, inputs = graph[node_id], graph[node_id]["inputs"]
            entry["nodes"].append(f"{node_id} {node['class_type']}")
            for loader_input in ("control_net", "ipadapter"):
                loader_link = inputs.get(loader_input)
                if is_link(loader_link) and loader_link[0] in graph:
                    loader = graph[loader_link[0]]
                    entry["nodes"].append(f"{loader_link[0]} {loader['class_type']}")
                    named = loader["inputs"].get("control_net_name") or loader["inputs"].get(
                        "preset"
                    )
                    entry["models"] += [named, *(loader.get("_meta") or {}).get("models", [])]
            for name, key in (("strength", "strength"), ("weight", "strength")):
                if name in inputs:
                    entry[key] = inputs[name]
            for name, key in (("start_percent", "start"), ("start_at", "start")):
                if name in inputs:
                    entry[key] = inputs[name]
            for name, key in (("end_percent", "end"), ("end_at", "end")):
                if name in inputs:
                    entry[key] = inputs[name]
        entry["nodes"] = sorted(set(entry["nodes"]), key=lambda text: int(text.split()[0]))
        entry["models"] = list(dict.fromkeys(entry["models"]))
        described.append(entry)
    return described


_PREPROCESS_STEPS = frozenset(
    {"Canny", *(c for group in PREPROCESSOR_CLASSES.values() for c in group)}
)


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
