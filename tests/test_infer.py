"""Family, task and needs of API graphs without a manifest; readiness against an /object_info."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from imgen_tui.graphs.infer import ModelRef, family_from_name, infer, readiness, with_manifest
from imgen_tui.graphs.templates import load_library
from imgen_tui.graphs.ui_format import ui_to_api
from imgen_tui.locations import bundled_dir
from tests.ui_workflows import FIXTURES, full_object_info

RECORDED: dict[str, dict[str, Any]] = json.loads(
    (FIXTURES / "recorded_graphs.json").read_text(encoding="utf-8")
)


@pytest.mark.parametrize(
    ("name", "family", "task", "needs"),
    [
        ("v2/controlnet_txt2img", "sd15", "txt2img", {"sd15", "controlnet"}),
        ("v2/ad_gen1_vhs_gif", "sd15", "video", {"sd15", "animatediff"}),
        ("v2/anim_savevideo", "sd15", "video", {"sd15"}),
        ("v2/vhs_combine_h264", "sd15", "video", {"sd15"}),
        ("v2/canny_preview", "any", "other", set()),
        ("v2/ipadapter_missing_models_runtime_error", "sd15", "txt2img", {"sd15", "ipadapter"}),
    ],
)
def test_recorded_graphs_are_recognised(name: str, family: str, task: str, needs: set[str]) -> None:
    info = infer(RECORDED[name])
    assert (info.family, info.task, set(info.needs)) == (family, task, needs)


def test_models_are_listed_per_node_with_their_folder() -> None:
    info = infer(RECORDED["v2/controlnet_txt2img"])
    assert info.models == (
        ModelRef(
            "1", "CheckpointLoaderSimple", "ckpt_name", "tiny-sd15.safetensors", "checkpoints"
        ),
        ModelRef(
            "12",
            "ControlNetLoader",
            "control_net_name",
            "tiny-controlnet-sd15.safetensors",
            "controlnet",
        ),
    )
    by_node = {need.node_id: need for need in info.nodes}
    assert by_node["12"].capability == "controlnet" and by_node["1"].capability == "sd15"
    assert info.inputs == ("text", "image") and info.outputs == ("image",)


def test_upscale_and_img2img_from_the_shipped_graphs() -> None:
    library = load_library([bundled_dir("workflows")])
    tasks = {template.name: infer(template.graph).task for template in library}
    assert tasks["upscale_esrgan"] == "upscale"
    assert tasks["sd15_img2img"] == tasks["sdxl_img2img"] == tasks["flux_img2img"] == "img2img"
    assert tasks["sd15_txt2img"] == tasks["sdxl_txt2img"] == "txt2img"


def test_the_farm_models_table_names_the_family_first() -> None:
    graph = copy.deepcopy(RECORDED["v2/controlnet_txt2img"])
    graph["1"]["inputs"]["ckpt_name"] = "my-house-model.safetensors"
    assert infer(graph).family == "sd15"  # by default: a checkpoint that says nothing
    assert infer(graph, {"sdxl": "my-house-model.safetensors"}).family == "sdxl"


def test_modern_flux_path_is_flux_from_its_loaders() -> None:
    workflow = json.loads((FIXTURES / "flux_modern_subgraph_ui.json").read_text(encoding="utf-8"))
    graph = ui_to_api(workflow, full_object_info()).graph
    info = infer(graph)
    assert (info.family, info.task) == ("flux", "txt2img")
    assert {ref.folder for ref in info.models} == {"diffusion_models", "text_encoders", "vae"}
    graph["1"]["inputs"]["unet_name"] = "some-unet.safetensors"
    assert infer(graph).family == "flux"  # the DualCLIPLoader type says so


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("flux1-dev-fp8.safetensors", "flux"),
        ("sd_xl_base_1.0.safetensors", "sdxl"),
        ("ponyDiffusionV6XL.safetensors", "pony"),
        ("illustriousXL_v01.safetensors", "illustrious"),
        ("v1-5-pruned-emaonly.safetensors", "sd15"),
        ("dreamshaper_8.safetensors", None),
    ],
)
def test_family_from_checkpoint_names(name: str, family: str | None) -> None:
    assert family_from_name(name) == family


def test_a_manifest_entry_overrides_what_was_inferred() -> None:
    info = infer(RECORDED["v2/canny_preview"])
    forced = with_manifest(info, "sdxl", "img2img", ["controlnet"])
    assert (forced.family, forced.task) == ("sdxl", "img2img")
    assert forced.needs == {"sdxl", "controlnet"}
    assert forced.from_manifest and not info.from_manifest


def test_readiness_names_missing_classes_and_files() -> None:
    object_info = full_object_info()
    info = infer(RECORDED["v2/controlnet_txt2img"])
    assert readiness(info, object_info).ready
    lacking = {name: spec for name, spec in object_info.items() if name != "Canny"}
    lacking["ControlNetLoader"] = copy.deepcopy(lacking["ControlNetLoader"])
    lacking["ControlNetLoader"]["input"]["required"]["control_net_name"] = [["other.pth"]]
    result = readiness(info, lacking)
    assert result.missing_classes == ("Canny",)
    assert [ref.name for ref in result.missing_models] == ["tiny-controlnet-sd15.safetensors"]
    assert result.summary() == (
        "Missing 2 (class Canny, controlnet/tiny-controlnet-sd15.safetensors)"
    )


def test_graph_without_nodes_is_other_and_needs_nothing() -> None:
    info = infer({})
    assert (info.family, info.task, info.needs, info.classes) == ("any", "other", frozenset(), ())
