"""Reference injection over the shipped templates and a recorded graph (issue 17, step 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from imgen_tui.graphs.graph import is_link
from imgen_tui.graphs.references import (
    KINDS,
    Reference,
    choose_controlnet,
    inject_references,
    reference_nodes,
    strip_references,
)
from imgen_tui.sim.object_info import recorded_classes
from imgen_tui.sim.video import recorded_video_classes

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "comfyui_v2"
OBJECT_INFO: dict[str, Any] = {
    **recorded_classes(),
    **recorded_video_classes(),  # the AnimateDiff templates are injected into too
    **json.loads((FIXTURES / "object_info_references.json").read_text()),
}
GRAPHS: dict[str, dict[str, Any]] = {
    path.stem: json.loads(path.read_text())
    for path in sorted((ROOT / "workflows").glob("*.json"))
    if "upscale" not in path.stem and "class_type" in path.read_text()  # API format only
}
GRAPHS["recorded_controlnet_txt2img"] = json.loads(
    (FIXTURES / "controlnet_txt2img_graph.json").read_text()
)
CONTROLNETS = {
    "pose": "control_v11p_sd15_openpose.pth",
    "depth": "diffusers_xl_depth_full.safetensors",
    "edges": "control_v11p_sd15_canny.pth",
}
PREPROCESSORS = frozenset({"DWPreprocessor", "DepthAnythingV2Preprocessor"})


def problems(graph: dict[str, Any]) -> list[str]:
    """Every required input present, every link pointing at an output of the right type."""
    found = []
    for node_id, node in graph.items():
        spec = OBJECT_INFO[node["class_type"]]["input"]
        declared = {**spec.get("required", {}), **spec.get("optional", {})}
        for name in spec.get("required", {}):
            if name not in node["inputs"]:
                found.append(f"{node_id}.{name} missing")
        for name, value in node["inputs"].items():
            if name not in declared:
                found.append(f"{node_id}.{name} unknown")
            elif is_link(value):
                source = graph.get(value[0])
                if source is None:
                    found.append(f"{node_id}.{name} dangles")
                    continue
                outputs = OBJECT_INFO[source["class_type"]]["output"]
                wanted = declared[name][0]
                if value[1] >= len(outputs) or outputs[value[1]] != wanted:
                    found.append(f"{node_id}.{name} gets the wrong type")
            elif (
                (
                    isinstance(declared[name][0], list)
                    and declared[name][0]
                    and "ref" in str(node.get("_meta"))
                )
                and value not in declared[name][0]
                and name not in ("image", "control_net_name")
            ):
                found.append(f"{node_id}.{name}={value!r} not an option")
    return found


references = st.lists(
    st.builds(
        Reference,
        kind=st.sampled_from(KINDS),
        image=st.just("ref.png"),
        strength=st.floats(0, 2),
        start=st.floats(0, 0.5),
        end=st.floats(0.5, 1),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(GRAPHS)), refs=references, aux=st.booleans())
def test_injection_validates_and_strips_back_to_the_original(
    name: str, refs: list[Reference], aux: bool
) -> None:
    original = GRAPHS[name]
    assert problems(original) == []
    injected = inject_references(
        original, refs, CONTROLNETS, preprocessors=PREPROCESSORS if aux else frozenset()
    )
    assert problems(injected) == []
    assert strip_references(injected) == original
    classes = {injected[n]["class_type"] for n in reference_nodes(injected)}
    for ref in refs:
        assert {
            "pose": "ControlNetApplyAdvanced",
            "depth": "ControlNetApplyAdvanced",
            "edges": "Canny",
            "style": "IPAdapterAdvanced",
            "subject": "IPAdapterAdvanced",
            "face": "IPAdapterFaceID",
        }[ref.kind] in classes


def test_stacked_pose_and_face_reach_the_sampler() -> None:
    graph = GRAPHS["recorded_controlnet_txt2img"]
    injected = inject_references(
        graph, [Reference("pose", "a.png"), Reference("face", "b.png")], CONTROLNETS
    )
    sampler = next(n for n in injected.values() if n["class_type"] == "KSampler")
    assert injected[sampler["inputs"]["model"][0]]["class_type"] == "IPAdapterFaceID"
    assert injected[sampler["inputs"]["positive"][0]]["class_type"] == "ControlNetApplyAdvanced"
    # the recorded graph's own ControlNet stays upstream of ours, untouched
    assert strip_references(injected) == graph


def test_controlnet_files_match_kind_and_family() -> None:
    files = [
        "control_v11p_sd15_openpose.pth",
        "diffusers_xl_depth_full.safetensors",
        "control_v11p_sd15_canny.pth",
        "tiny-controlnet-sd15.safetensors",
    ]
    assert choose_controlnet("pose", "sd15", files) == "control_v11p_sd15_openpose.pth"
    assert choose_controlnet("depth", "sdxl", files) == "diffusers_xl_depth_full.safetensors"
    assert choose_controlnet("depth", "sd15", files) is None
    assert choose_controlnet("edges", "sd15", files) == "control_v11p_sd15_canny.pth"


def _info(ipadapter_files: list[str], clip_vision: list[str], loras: tuple[str, ...] = ()) -> Any:
    from imgen_tui.comfy.responses import ObjectInfo

    classes = json.loads(json.dumps(OBJECT_INFO))
    classes["IPAdapterModelLoader"] = {
        "input": {"required": {"ipadapter_file": [ipadapter_files]}},
        "output": ["IPADAPTER"],
    }
    classes["CLIPVisionLoader"]["input"]["required"]["clip_name"] = [clip_vision]
    classes["LoraLoader"]["input"]["required"]["lora_name"] = [list(loras)]
    return ObjectInfo.from_json(classes)


def test_ipadapter_capabilities_need_the_model_files_not_just_the_classes() -> None:
    from imgen_tui.comfy.capabilities import check_capabilities

    def verdicts(info: Any) -> dict[str, str]:
        checks = check_capabilities(info, ["ipadapter", "faceid"], {})
        return {c.capability: c.verdict for c in checks}

    # the recorded pack install: classes present, no files -> run-time "ClipVision model not found."
    assert verdicts(_info([], [])) == {"ipadapter": "missing", "faceid": "missing"}
    assert verdicts(_info(["ip-adapter-plus_sd15.safetensors"], [])) == {
        "ipadapter": "missing",
        "faceid": "missing",
    }
    # the pack finds CLIP-vision by regex: a renamed file is not found, so neither is the capability
    assert verdicts(_info(["ip-adapter-plus_sd15.safetensors"], ["vit-h.safetensors"])) == {
        "ipadapter": "missing",
        "faceid": "missing",
    }
    clip = ["CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"]
    assert verdicts(_info(["ip-adapter-plus_sd15.safetensors"], clip)) == {
        "ipadapter": "confirmed",
        "faceid": "missing",
    }
    both = ["ip-adapter-plus_sd15.safetensors", "ip-adapter-faceid-plusv2_sd15.bin"]
    # FaceID also loads its companion LoRA ("LoRA model not found." without it)
    assert verdicts(_info(both, clip)) == {"ipadapter": "confirmed", "faceid": "missing"}
    lora = ("ip-adapter-faceid-plusv2_sd15_lora.safetensors",)
    assert verdicts(_info(both, clip, lora)) == {"ipadapter": "confirmed", "faceid": "confirmed"}


def test_routing_refuses_a_node_without_the_reference_capability() -> None:
    from imgen_tui.graphs.references import reference_needs
    from imgen_tui.scheduler.jobs import JobSpec
    from imgen_tui.scheduler.routing import NodeView, route

    graph = GRAPHS["recorded_controlnet_txt2img"]
    needs = reference_needs([Reference("style", "a.png"), Reference("pose", "b.png")])
    job = JobSpec.from_graph(graph, "sd15", needs=needs)
    draft = NodeView("gpu-draft", "draft", "up", frozenset({"sd15", "controlnet"}), 2048)
    full = NodeView("gpu-full", "quality", "up", frozenset({"sd15", "controlnet", "style"}), 2048)
    routing = route(job, [draft, full])
    # a style needs `style` (IP-Adapter or a core path, found in /object_info), not the pack
    assert routing.refused == {"gpu-draft": "gpu-draft: no style"}
    assert routing.best is not None and routing.best.node_id == "gpu-full"


async def test_reference_image_is_uploaded_once_per_node_and_the_job_runs(tmp_path: Path) -> None:
    from imgen_tui.config import DEFAULT_MODELS
    from imgen_tui.scheduler.jobs import JobSpec, JobState
    from imgen_tui.sim.farm import SimFarm
    from imgen_tui.sim.spec import SimNodeSpec
    from tests.test_scheduler_farm import LIBRARY, make_scheduler

    picture = tmp_path / "pose.png"
    picture.write_bytes((FIXTURES.parent / "comfyui" / "sample_output.png").read_bytes())
    spec = SimNodeSpec(
        id="gpu-ref",
        tier="draft",
        capabilities=("sd15", "controlnet"),
        seconds_per_step={"sd15": 0.002},
        load_seconds=0.0,
        models={
            "checkpoints": [DEFAULT_MODELS["sd15"]],
            "controlnet": ["control_v11p_sd15_openpose.pth"],
        },
    )
    farm = SimFarm([spec], farm_models=dict(DEFAULT_MODELS), previews=False)
    await farm.start()
    try:
        scheduler = make_scheduler(farm)
        await scheduler.start()
        specs = []
        for seed in (1, 2):
            graph = LIBRARY["sd15_txt2img"].render(
                {"prompt": "a fox", "seed": seed, "steps": 2}, DEFAULT_MODELS
            )
            injected = inject_references(graph, [Reference("pose", "placeholder.png")], CONTROLNETS)
            load = next(
                n for n in reference_nodes(injected) if injected[n]["class_type"] == "LoadImage"
            )
            specs.append(
                JobSpec.from_graph(
                    injected,
                    "sd15",
                    needs=frozenset({"controlnet"}),
                    reference_images=((load, str(picture)),),
                )
            )
        jobs = scheduler.submit_many(specs)
        await scheduler.wait_idle()
        runtime = next(iter(scheduler.nodes.values()))
        assert [job.state for job in jobs] == [JobState.DONE, JobState.DONE], [
            job.last_error for job in jobs
        ]
        assert list(runtime.uploads) == [str(picture)]
        # the file chosen on the node for pose and sd15
        assert runtime.controlnets == ("control_v11p_sd15_openpose.pth",)
        await scheduler.stop()
    finally:
        await farm.stop()


def test_placeholder_controlnets_bind_to_the_nodes_files_or_say_what_is_missing() -> None:
    import pytest

    from imgen_tui.graphs.graph import GraphError
    from imgen_tui.graphs.references import auto_controlnets, bind_controlnets

    graph = inject_references(
        GRAPHS["sdxl_txt2img"], [Reference("depth", "a.png")], auto_controlnets("sdxl")
    )
    bound = bind_controlnets(
        graph, ["control_v11p_sd15_canny.pth", "diffusers_xl_depth_full.safetensors"]
    )
    names = [
        n["inputs"]["control_net_name"]
        for n in bound.values()
        if n["class_type"] == "ControlNetLoader"
    ]
    assert names == ["diffusers_xl_depth_full.safetensors"]
    with pytest.raises(GraphError, match="no sdxl ControlNet model for depth"):
        bind_controlnets(graph, ["control_v11p_sd15_canny.pth"])


def test_batch_plan_injects_refs_and_needs_their_capability(tmp_path: Path) -> None:
    from imgen_tui.config import DEFAULT_MODELS
    from imgen_tui.flows.batch import BatchRequest, plan_jobs
    from tests.test_scheduler_farm import LIBRARY

    request = BatchRequest(
        workflow="sd15_txt2img",
        prompts=["a fox"],
        count=2,
        references=[("pose", str(tmp_path / "p.png"), 0.7), ("face", str(tmp_path / "f.png"), 1.0)],
    )
    specs = plan_jobs(request, LIBRARY, DEFAULT_MODELS)
    assert {"controlnet", "faceid"} <= specs[0].needs
    assert [path for _, path in specs[0].reference_images] == [
        str(tmp_path / "p.png"),
        str(tmp_path / "f.png"),
    ]
    assert problems(specs[0].graph) == []


def test_cli_refuses_a_bad_ref_before_running(tmp_path: Path, capsys: Any) -> None:
    from imgen_tui.cli import main

    assert main(["batch", "--demo", "--prompt", "a", "--ref", "hat:x.png"]) != 0
    assert "--ref 'hat:x.png' is not KIND:IMAGE" in capsys.readouterr().err
    assert main(["batch", "--demo", "--prompt", "a", "--ref", f"pose:{tmp_path}/none.png"]) != 0
    assert "is not a file" in capsys.readouterr().err


# -- step 4: over the shipped templates and every recorded graph, against the recorded server --

WORKFLOW_FIXTURES = Path(__file__).parent / "fixtures" / "workflows"


def _recorded_server() -> dict[str, Any]:
    import gzip

    with gzip.open(WORKFLOW_FIXTURES / "object_info_full_with_packs.json.gz", "rb") as source:
        data: dict[str, Any] = json.loads(source.read())
    return data


SERVER = _recorded_server()  # ComfyUI 0.3.64 with comfyui_controlnet_aux and IPAdapter_plus
SERVER_CONTROLNET = SERVER["ControlNetLoader"]["input"]["required"]["control_net_name"][0][0]
SERVER_IMAGE = "control_input_64.png"  # in the recorded LoadImage list


def _rendered_templates() -> dict[str, dict[str, Any]]:
    from imgen_tui.config import DEFAULT_MODELS
    from imgen_tui.graphs import load_library
    from imgen_tui.locations import bundled_dir

    library = load_library([bundled_dir("workflows")])
    graphs = {}
    for name in library.names():
        template = library[name]
        values = {"prompt": "a red fox", "seed": 1, "image": SERVER_IMAGE}
        graphs[f"template/{name}"] = template.render(values, DEFAULT_MODELS)
    return graphs


def _recorded_graphs() -> dict[str, dict[str, Any]]:
    found = {}
    for fixture in ("recorded_graphs.json", "written_graphs.json"):
        for name, graph in json.loads((WORKFLOW_FIXTURES / fixture).read_text()).items():
            if isinstance(graph, dict) and all(
                isinstance(node, dict) and "class_type" in node for node in graph.values()
            ):
                found[name] = graph
    return found


def _steerable(graph: dict[str, Any]) -> bool:
    """A sampler whose model and conditioning are links: what injection needs to join."""
    from imgen_tui.graphs.params import SAMPLERS

    samplers = [n["inputs"] for n in graph.values() if n["class_type"] in SAMPLERS]
    return bool(samplers) and all(
        all(is_link(inputs.get(name)) for name in ("model", "positive", "negative"))
        for inputs in samplers
    )


ALL_GRAPHS = {
    name: graph
    for name, graph in {**_rendered_templates(), **_recorded_graphs()}.items()
    if _steerable(graph)
}


def _server_for(graph: dict[str, Any]) -> dict[str, Any]:
    """The recorded server, with the model files and classes the original graph names.

    The property is about the inserted path, so the graph's own checkpoints and
    files count as installed; the inserted nodes meet the recording untouched.
    """
    from imgen_tui.sim.validation import validate_prompt

    server: dict[str, Any] = json.loads(json.dumps(SERVER))
    for node in graph.values():
        spec = server.get(node["class_type"])
        if spec is None:
            continue
        for name, value in node["inputs"].items():
            declared = {**spec["input"].get("required", {}), **spec["input"].get("optional", {})}
            combo = declared.get(name, [None])
            choices = combo[0]
            if choices == "COMBO" and len(combo) > 1:  # the v3 shape: options in the dict
                choices = combo[1].setdefault("options", [])
            if isinstance(choices, list) and value not in choices:
                choices.append(value)
    assert validate_prompt(graph, server).error is None
    return server


def _inserted_path_only(original: dict[str, Any], injected: dict[str, Any]) -> list[str]:
    """What changed outside the inserted nodes: nothing but links rewired onto them."""
    inserted = set(injected) - set(original)
    assert inserted == set(reference_nodes(injected))
    changed = []
    for node_id, node in original.items():
        after = injected.get(node_id)
        if after is None:
            changed.append(f"{node_id} deleted")
            continue
        if {k: v for k, v in after.items() if k != "inputs"} != {
            k: v for k, v in node.items() if k != "inputs"
        }:
            changed.append(f"{node_id} class or meta changed")
        if set(after["inputs"]) != set(node["inputs"]):
            changed.append(f"{node_id} inputs added or removed")
        for name, value in node["inputs"].items():
            new = after["inputs"].get(name)
            if new != value and not (is_link(new) and new[0] in inserted and is_link(value)):
                changed.append(f"{node_id}.{name} changed")
    return changed


@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(sorted(ALL_GRAPHS)), refs=references, aux=st.booleans())
def test_injection_into_any_graph_validates_on_the_recorded_server_and_touches_nothing_else(
    name: str, refs: list[Reference], aux: bool
) -> None:
    from imgen_tui.sim.validation import validate_prompt

    original = ALL_GRAPHS[name]
    server = _server_for(original)
    refs = [Reference(r.kind, SERVER_IMAGE, r.strength, r.start, r.end) for r in refs]
    controlnets = dict.fromkeys(("pose", "depth", "edges"), SERVER_CONTROLNET)
    injected = inject_references(
        original, refs, controlnets, preprocessors=PREPROCESSORS if aux else frozenset()
    )
    result = validate_prompt(injected, server)
    # a recording's deliberately broken second output stays as broken, and no more
    before = validate_prompt(original, server).node_errors
    assert result.error is None and result.node_errors == before, (result.error, result.node_errors)
    assert _inserted_path_only(original, injected) == []
    assert strip_references(injected) == original


def test_the_property_covers_templates_and_recorded_graphs() -> None:
    names = set(ALL_GRAPHS)
    assert {"template/sd15_txt2img", "template/sdxl_img2img", "template/flux_txt2img"} <= names
    assert "v2/controlnet_txt2img" in names and "v2/ipadapter_missing_models_runtime_error" in names
    assert any(name.startswith("written/") for name in names)


async def test_a_node_without_the_familys_controlnet_hands_the_job_on(tmp_path: Path) -> None:
    """Routing knows "controlnet", not which families: the node that lacks the file says
    so at post time and the job moves on, or fails naming every node it tried."""
    from imgen_tui.config import DEFAULT_MODELS
    from imgen_tui.scheduler.jobs import JobSpec, JobState
    from imgen_tui.sim.farm import SimFarm
    from imgen_tui.sim.spec import SimNodeSpec
    from tests.test_scheduler_farm import LIBRARY, make_scheduler

    picture = tmp_path / "pose.png"
    picture.write_bytes((FIXTURES / "control_input_64.png").read_bytes())

    def node(node_id: str, tier: str, controlnets: list[str]) -> SimNodeSpec:
        return SimNodeSpec(
            id=node_id,
            tier=tier,  # type: ignore[arg-type]
            capabilities=("sdxl", "controlnet"),
            seconds_per_step={"sdxl": 0.001 if tier == "premium" else 0.01},
            models={"checkpoints": [DEFAULT_MODELS["sdxl"]], "controlnet": controlnets},
        )

    def pose_job() -> JobSpec:
        from imgen_tui.graphs.reference_pin import PinnedReference
        from imgen_tui.graphs.references import with_pinned_references

        template = LIBRARY["sdxl_txt2img"]
        graph = template.render({"prompt": "a fox", "seed": 3, "steps": 2}, DEFAULT_MODELS)
        pin = PinnedReference(kind="pose", path=str(picture))
        graph, images, needs = with_pinned_references(graph, template, [pin])
        return JobSpec.from_graph(graph, "sdxl", needs=needs, reference_images=images)

    farm = SimFarm(
        [
            node("fast-sd15-only", "premium", ["control_v11p_sd15_openpose.pth"]),
            node("slow-xl", "draft", ["thibaud_xl_openpose.safetensors"]),
        ],
        farm_models=dict(DEFAULT_MODELS),
        previews=False,
    )
    async with farm, make_scheduler(farm) as scheduler:
        [job] = scheduler.submit_many([pose_job()])
        await scheduler.wait_idle()
        assert job.state == JobState.DONE, job.last_error
        assert job.node_id == "slow-xl"
        assert "fast-sd15-only: node" in str(job.last_error)
        assert "no sdxl ControlNet model for pose" in str(job.last_error)
    farm = SimFarm(
        [node("a", "premium", ["control_v11p_sd15_openpose.pth"]), node("b", "draft", [])],
        farm_models=dict(DEFAULT_MODELS),
        previews=False,
    )
    async with farm, make_scheduler(farm) as scheduler:
        [job] = scheduler.submit_many([pose_job()])
        await scheduler.wait_idle()
        assert job.state == JobState.FAILED
        assert "no sdxl ControlNet model for pose" in str(job.last_error)
