"""The simulator's reference controls, checked against the v2 recordings (issue 17, sim)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from imgen_tui.comfy.capabilities import check_capabilities
from imgen_tui.comfy.responses import ObjectInfo
from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.graphs import load_library
from imgen_tui.graphs.references import Reference, inject_references
from imgen_tui.locations import bundled_dir
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.node import SimulatedNode
from imgen_tui.sim.references import difference
from imgen_tui.sim.spec import SimNodeSpec, load_demo_farm

LIBRARY = load_library([bundled_dir("workflows")])
FIXTURES = Path(__file__).parent / "fixtures" / "comfyui_v2"
CONTROL_IMAGE = FIXTURES / "control_input_64.png"


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


RECORDER = SimNodeSpec(
    id="recorder",
    capabilities=("sd15",),
    seconds_per_step={"sd15": 0.0},
    models={
        "checkpoints": ["tiny-sd15.safetensors"],
        "controlnet": ["tiny-controlnet-sd15.safetensors"],
    },
    extra_classes=("ComfyUI_IPAdapter_plus", "comfyui_controlnet_aux"),
)
WITH_MODELS = RECORDER.model_copy(
    update={
        "id": "full",
        "models": {
            "checkpoints": [DEFAULT_MODELS["sd15"]],
            "controlnet": ["control_v11p_sd15_openpose.pth", "control_v11p_sd15_canny.pth"],
            "clip_vision": ["CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"],
            "ipadapter": ["ip-adapter-plus_sd15.safetensors", "ip-adapter-faceid-plusv2_sd15.bin"],
            "loras": ["ip-adapter-faceid-plusv2_sd15_lora.safetensors"],
        },
    }
)


@pytest.fixture
async def node(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[SimulatedNode]:
    spec = getattr(request, "param", RECORDER)
    started = SimulatedNode(spec, farm_models=dict(DEFAULT_MODELS), root=tmp_path / spec.id)
    await started.start()
    async with httpx.AsyncClient(base_url=started.url) as client:
        files = {"image": (CONTROL_IMAGE.name, CONTROL_IMAGE.read_bytes(), "image/png")}
        assert (await client.post("/upload/image", files=files)).status_code == 200
    yield started
    await started.stop()


async def run(node: SimulatedNode, graph: dict[str, Any]) -> dict[str, Any]:
    """POST the graph and wait for its history entry."""
    async with httpx.AsyncClient(base_url=node.url) as client:
        answer = await client.post("/prompt", json={"prompt": graph})
        if answer.status_code != 200:
            return {"rejected": answer.status_code, "json": answer.json()}
        prompt_id = answer.json()["prompt_id"]
        for _ in range(400):
            history = (await client.get(f"/history/{prompt_id}")).json()
            if prompt_id in history:
                return dict(history[prompt_id])
            await asyncio.sleep(0.02)
    raise AssertionError("the prompt never finished")


async def first_picture(node: SimulatedNode, entry: dict[str, Any]) -> Image.Image:
    image = next(iter(entry["outputs"].values()))["images"][0]
    async with httpx.AsyncClient(base_url=node.url) as client:
        answer = await client.get("/view", params=image)
    return Image.open(io.BytesIO(answer.content)).convert("RGB")


async def test_a_missing_controlnet_model_is_the_recorded_400(node: SimulatedNode) -> None:
    case = recorded("controlnet_missing_model_400.json")
    answer = await run(node, case["prompt"])
    assert answer["rejected"] == case["status"] == 400
    assert answer["json"] == case["json"]


async def test_ipadapter_without_its_models_fails_at_run_time_as_recorded(
    node: SimulatedNode,
) -> None:
    case = recorded("ipadapter_missing_models_runtime_error.json")
    entry = await run(node, case["prompt"])  # validation passes: presets are not file lists
    assert entry["status"]["status_str"] == case["status_str"] == "error"
    assert entry["outputs"] == case["outputs"] == {}
    error = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
    assert {key: error[key] for key in case["execution_error"]} == case["execution_error"]


async def test_core_canny_into_a_preview_shows_the_edge_map(node: SimulatedNode) -> None:
    entry = await run(node, recorded("canny_preview_graph.json")["prompt"])
    picture = await first_picture(node, entry)
    with Image.open(CONTROL_IMAGE) as source:
        assert picture.size == source.size
        assert difference(picture, source) > 10  # the map, not the input passed through
    assert entry["outputs"]["3"]["images"][0]["type"] == "temp"


def sd15_graph(seed: int = 7) -> dict[str, Any]:
    return LIBRARY["sd15_txt2img"].render(
        {"prompt": "a red fox", "seed": seed, "steps": 2, "width": 64, "height": 64},
        DEFAULT_MODELS,
    )


@pytest.mark.parametrize("node", [WITH_MODELS], indirect=True)
async def test_each_reference_visibly_shapes_the_picture_by_its_strength(
    node: SimulatedNode,
) -> None:
    plain = await first_picture(node, await run(node, sd15_graph()))
    controlnets = {"pose": "control_v11p_sd15_openpose.pth", "edges": "control_v11p_sd15_canny.pth"}
    for kind in ("pose", "edges", "style", "face"):
        changes = []
        for strength in (0.2, 1.0):
            graph = inject_references(
                sd15_graph(),
                [Reference(kind, CONTROL_IMAGE.name, strength)],
                controlnets,
                preprocessors=frozenset({"DWPreprocessor"}),
            )
            entry = await run(node, graph)
            assert entry["status"]["status_str"] == "success", (kind, entry["status"])
            changes.append(difference(await first_picture(node, entry), plain))
        assert 0 < changes[0] < changes[1], (kind, changes)


@pytest.mark.parametrize("node", [WITH_MODELS], indirect=True)
async def test_a_weightless_reference_leaves_the_picture_as_it_was(
    node: SimulatedNode,
) -> None:
    graph = inject_references(sd15_graph(), [Reference("style", CONTROL_IMAGE.name, 0.0)], {})
    plain = await first_picture(node, await run(node, sd15_graph()))
    weightless = await first_picture(node, await run(node, graph))
    assert difference(plain, weightless) == 0


async def test_the_demo_farm_is_uneven_on_purpose() -> None:
    farm = SimFarm.from_spec(load_demo_farm())
    try:
        uneven_on_purpose(farm)
    finally:
        await farm.stop()  # its nodes' folders, made with the nodes, go with them


def uneven_on_purpose(farm: SimFarm) -> None:
    verdicts = {}
    for sim in farm.nodes:
        info = ObjectInfo.from_json(sim.object_info())
        checks = check_capabilities(info, ("controlnet", "ipadapter", "faceid"), farm.models)
        verdicts[sim.spec.id] = {c.capability for c in checks if c.verdict == "confirmed"}
        assert info.has_class("Canny")  # core: on every node
    assert verdicts == {
        "gpu-premium": {"controlnet", "ipadapter", "faceid"},
        "gpu-quality": {"controlnet"},
        "gpu-standard": {"controlnet"},
        "gpu-draft": set(),
    }
    quality = ObjectInfo.from_json(farm.node("gpu-quality").object_info())
    standard = ObjectInfo.from_json(farm.node("gpu-standard").object_info())
    assert quality.has_class("DWPreprocessor") and not standard.has_class("DWPreprocessor")
