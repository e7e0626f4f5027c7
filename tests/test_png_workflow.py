"""A saved picture carries the graph that ran and a UI workflow ComfyUI opens (issue 12, items 4, 5).

The job runs on a simulated node over real sockets; the simulator writes
PNG text chunks as ComfyUI's SaveImage does (`prompt`, then each key of
`extra_pnginfo`). The layout is checked against the `/object_info` recorded
from a real ComfyUI 0.3.64.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imgen_tui.comfy.client import ComfyClient
from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.flows.recorder import SessionRecorder
from imgen_tui.graphs.graph import is_link
from imgen_tui.graphs.inject import LoraSpec, inject_loras
from imgen_tui.graphs.templates import load_library
from imgen_tui.graphs.ui_workflow import ui_workflow
from imgen_tui.locations import bundled_dir
from imgen_tui.scheduler.events import JobDone
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.sim.images import encode_png, render_picture
from imgen_tui.store import ImageRecord, SessionStore
from tests.conftest import FAST_NODE, RECORDED
from tests.test_scheduler_store import node_of, run_to_idle, scheduler_for, stored_jobs

LIBRARY = load_library([bundled_dir("workflows")])
REAL_OBJECT_INFO: dict[str, Any] = {
    # the video templates' classes (AnimateDiff-Evolved, Frame-Interpolation), recorded in v2
    **json.loads((RECORDED / "video" / "object_info_video.json").read_text()),
    **json.loads((RECORDED / "object_info_workflow_classes.json").read_text()),
}


def img2img_job(source: Path) -> JobSpec:
    graph = LIBRARY["sd15_img2img"].render(
        {"prompt": "a red fox", "seed": 5, "image": "source.png"}, DEFAULT_MODELS
    )
    return JobSpec.from_graph(graph, "sd15", source_image=str(source))


async def test_the_sidecar_and_the_png_carry_the_graph_that_ran_and_a_workflow(
    tmp_path: Path,
) -> None:
    source = tmp_path / "pick.png"
    source.write_bytes(encode_png(render_picture("a fox", 1, 512, 512), {}, None))
    store = await SessionStore.open(tmp_path / "data")
    farm = await node_of(FAST_NODE)
    try:
        spec = img2img_job(source)
        await stored_jobs(store, [spec])
        events: list[Any] = []
        async with scheduler_for(farm, SessionRecorder(store)) as scheduler:
            scheduler.submit(spec)
            await run_to_idle(scheduler, events)
    finally:
        await farm.stop()
        await store.close()
    (done,) = [event for event in events if isinstance(event, JobDone)]
    (record,) = done.kept
    assert isinstance(record, ImageRecord)
    sidecar = json.loads(record.sidecar_path.read_text())
    with Image.open(record.path) as picture:
        ran = json.loads(picture.info["prompt"])
        workflow = json.loads(picture.info["workflow"])
    (loader,) = [node for node in sidecar["graph"].values() if node["class_type"] == "LoadImage"]
    assert loader["inputs"]["image"].startswith("imgen-")  # the uploaded name, not source.png
    assert sidecar["graph"] == ran  # what the node says it ran is what the sidecar says
    assert len(workflow["nodes"]) == len(ran)
    (ui_loader,) = [node for node in workflow["nodes"] if node["type"] == "LoadImage"]
    assert ui_loader["widgets_values"][0] == loader["inputs"]["image"]


def links_of(graph: dict[str, Any]) -> set[tuple[int, int, int, str]]:
    """(origin, slot, target, input) of every link in an API graph."""
    return {
        (int(value[0]), value[1], int(node_id), name)
        for node_id, node in graph.items()
        for name, value in node["inputs"].items()
        if is_link(value)
    }


@pytest.mark.parametrize("name", sorted(LIBRARY.names()))
def test_every_bundled_workflow_lays_out_as_the_real_editor_expects(name: str) -> None:
    graph = LIBRARY[name].render({"prompt": "a fox", "seed": 7, "image": "in.png"}, DEFAULT_MODELS)
    if name == "sd15_txt2img":
        graph = inject_loras(graph, [LoraSpec("detail.safetensors", 0.6)])
    workflow = ui_workflow(graph, REAL_OBJECT_INFO)
    nodes = {node["id"]: node for node in workflow["nodes"]}
    assert set(nodes) == {int(node_id) for node_id in graph}
    # every link once, both ends agreeing with the API graph
    seen = set()
    for link_id, origin, slot, target, target_slot, kind in workflow["links"]:
        socket = nodes[target]["inputs"][target_slot]
        assert socket["link"] == link_id
        assert link_id in nodes[origin]["outputs"][slot]["links"]
        assert nodes[origin]["outputs"][slot]["type"] == kind == socket["type"]
        seen.add((origin, slot, target, socket["name"]))
    assert seen == links_of(graph)
    assert workflow["last_link_id"] == len(workflow["links"])
    # widgets in /object_info input order, the seed followed by its "control after generate"
    for node_id, node in graph.items():
        ui = nodes[int(node_id)]
        order = REAL_OBJECT_INFO[node["class_type"]]["input_order"]
        expected = []
        for input_name in order.get("required", []) + order.get("optional", []):
            value = node["inputs"].get(input_name)
            if input_name in node["inputs"] and not is_link(value):
                expected.append(value)
                if input_name in ("seed", "noise_seed"):
                    expected.append("fixed")
        assert ui["widgets_values"] == expected, node["class_type"]
    # left to right: a node stands right of every node that feeds it
    for origin, _, target, _ in links_of(graph):
        assert nodes[origin]["pos"][0] < nodes[target]["pos"][0]
    # and nodes in one column do not overlap
    by_column: dict[float, list[dict[str, Any]]] = {}
    for node in workflow["nodes"]:
        by_column.setdefault(node["pos"][0], []).append(node)
    for column in by_column.values():
        column.sort(key=lambda node: node["pos"][1])
        for upper, lower in itertools.pairwise(column):
            assert upper["pos"][1] + upper["size"][1] <= lower["pos"][1]


def test_the_sampler_widgets_are_in_comfyuis_order() -> None:
    graph = LIBRARY["sd15_txt2img"].render({"prompt": "a fox", "seed": 42}, DEFAULT_MODELS)
    workflow = ui_workflow(graph, REAL_OBJECT_INFO)
    (sampler,) = [node for node in workflow["nodes"] if node["type"] == "KSampler"]
    assert sampler["widgets_values"] == [42, "fixed", 10, 7.0, "euler_ancestral", "normal", 1.0]
    assert [socket["name"] for socket in sampler["inputs"]] == [
        "model", "positive", "negative", "latent_image",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "graph",
    [
        {},
        {"1": "not a node", "x": {"class_type": "Odd", "inputs": {"a": ["y", 0], "b": 3}}},
        {
            "1": {"class_type": "A", "inputs": {"in": ["2", 0]}},
            "2": {"class_type": "B", "inputs": {"in": ["1", 0]}},
        },
        {
            "01": {"class_type": "A", "inputs": {}},
            "1": {"class_type": "B", "inputs": {"x": ["01", 5]}},
        },
    ],
)
def test_odd_graphs_lay_out_without_raising(graph: dict[str, Any]) -> None:
    workflow = ui_workflow(graph, {"A": "not a spec", "B": {"input": {"required": []}}})
    ids = [node["id"] for node in workflow["nodes"]]
    assert len(ids) == len(set(ids))


async def test_the_simulator_writes_each_extra_pnginfo_key_as_comfyui_does(tmp_path: Path) -> None:
    farm = await node_of(FAST_NODE)
    try:
        node = farm.nodes[0]
        graph = LIBRARY["sd15_txt2img"].render({"prompt": "a fox", "seed": 3}, DEFAULT_MODELS)
        async with ComfyClient(node.url) as client:
            submitted = await client.submit(
                graph, extra_data={"extra_pnginfo": {"workflow": {"nodes": []}, "note": "hi"}}
            )
            for _ in range(500):
                if await client.prompt_state(submitted.prompt_id) == "done":
                    break
                await asyncio.sleep(0.01)
            (output,) = [p for p in (node.root / "output").iterdir()]
        with Image.open(output) as picture:
            assert json.loads(picture.info["workflow"]) == {"nodes": []}
            assert json.loads(picture.info["note"]) == "hi"
            assert json.loads(picture.info["prompt"]) == graph
    finally:
        await farm.stop()
