"""Typed parameters of any node from /object_info, roles on the modern sampler path, the figure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imgen_tui.graphs.infer import infer
from imgen_tui.graphs.params import read_values, with_values
from imgen_tui.graphs.typed_params import TypedParameter, found_roles, typed_parameters
from imgen_tui.graphs.ui_format import ui_to_api
from tests.ui_workflows import FIXTURES, full_object_info
from tests.workflow_corpus import CORE_ROLES, all_core_found, corpus

WRITTEN: dict[str, dict[str, Any]] = json.loads(
    (FIXTURES / "written_graphs.json").read_text(encoding="utf-8")
)
RECORDED: dict[str, dict[str, Any]] = json.loads(
    (FIXTURES / "recorded_graphs.json").read_text(encoding="utf-8")
)


def by_input(params: list[TypedParameter], node: str, name: str) -> TypedParameter:
    return next(p for p in params if p.node == node and p.input == name)


def test_sampler_inputs_carry_their_bounds_choices_and_seed_mode() -> None:
    workflow = json.loads((FIXTURES / "sd15_editor_ui.json").read_text(encoding="utf-8"))
    workflow["nodes"] = [node for node in workflow["nodes"] if node["id"] != 14]  # no primitive
    for node in workflow["nodes"]:
        if node["id"] == 3:
            node["inputs"] = node["inputs"][:4]
    conversion = ui_to_api(workflow, full_object_info())
    params = typed_parameters(conversion.graph, full_object_info(), conversion.controls)
    seed = by_input(params, "3", "seed")
    assert (seed.kind, seed.role, seed.seed, seed.control) == ("int", "seed", True, "randomize")
    assert (seed.minimum, seed.maximum, seed.value) == (0, 2**64 - 1, 156680208700286)
    steps = by_input(params, "3", "steps")
    assert (steps.kind, steps.minimum, steps.maximum, steps.default) == ("int", 1, 10000, 20)
    cfg = by_input(params, "3", "cfg")
    assert (cfg.kind, cfg.step, cfg.role) == ("float", 0.1, "cfg")
    sampler = by_input(params, "3", "sampler_name")
    assert sampler.kind == "combo" and "dpmpp_2m" in sampler.options and sampler.role == "sampler"
    text = by_input(params, "6", "text")
    assert (text.kind, text.multiline, text.role) == ("string", True, "prompt")
    assert by_input(params, "7", "text").role == "negative"
    prefix = by_input(params, "9", "filename_prefix")
    assert (prefix.kind, prefix.multiline, prefix.role) == ("string", False, None)
    assert by_input(params, "4", "ckpt_name").role == "checkpoint"
    roles = [p.role for p in params]
    assert roles.index(None) > max(i for i, role in enumerate(roles) if role is not None)


def test_both_combo_shapes_and_booleans() -> None:
    graph = WRITTEN["written/wan21_t2v"]
    params = typed_parameters(graph, full_object_info())
    video_format = by_input(params, "11", "format")  # ["COMBO", {"options": [...]}]
    assert video_format.kind == "combo" and "mp4" in video_format.options
    clip_type = by_input(params, "2", "type")  # [[...], {...}]
    assert clip_type.kind == "combo" and "wan" in clip_type.options
    custom = typed_parameters(
        WRITTEN["written/flux_samplercustom_primitive_prompt"], full_object_info()
    )
    add_noise = by_input(custom, "9", "add_noise")
    assert (add_noise.kind, add_noise.value) == ("boolean", True)


def test_modern_flux_path_roles() -> None:
    params = typed_parameters(WRITTEN["written/flux_schnell_custom_sampler"], full_object_info())
    roles = {(p.node, p.input): p.role for p in params}
    assert roles[("4", "clip_l")] == roles[("4", "t5xxl")] == "prompt"
    assert roles[("5", "noise_seed")] == "seed"
    assert roles[("7", "steps")] == "steps" and roles[("7", "scheduler")] == "scheduler"
    assert roles[("7", "denoise")] == "denoise"
    assert roles[("6", "sampler_name")] == "sampler"
    assert roles[("9", "width")] == "width" and roles[("9", "height")] == "height"
    assert roles[("1", "unet_name")] == "checkpoint"
    assert roles[("2", "clip_name1")] is None


def test_primitives_take_the_role_of_what_they_feed() -> None:
    graph = WRITTEN["written/sdxl_cfgguider_primitives"]
    params = typed_parameters(graph, full_object_info())
    prompt = [p for p in params if p.node == "2"]
    assert [(p.role, p.multiline) for p in prompt] == [("prompt", True)]
    assert [p.role for p in params if p.node == "5"] == ["seed"]
    assert by_input(params, "5", "value").seed
    size = [p.role for p in params if p.node == "7"]
    assert size == ["width", "height"] and not by_input(params, "7", "value").seed
    assert by_input(params, "4", "text").role == "negative"  # through the CFGGuider
    assert by_input(params, "9", "cfg").role == "cfg"
    changed = with_values(graph, {"seed": 7, "positive_prompt": "a cat", "width": 768})
    assert changed["5"]["inputs"]["value"] == 7
    assert changed["2"]["inputs"]["value"] == "a cat"
    assert changed["7"]["inputs"]["value"] == 768
    assert read_values(changed)["steps"] == 25


def test_unknown_class_literals_are_typed_by_value() -> None:
    graph = {
        "1": {
            "class_type": "SomePackNode",
            "inputs": {"seed": 3, "strength": 0.5, "on": True, "x": [1, 2]},
        }
    }
    params = {p.input: p for p in typed_parameters(graph, full_object_info())}
    assert (params["seed"].kind, params["seed"].seed) == ("int", True)
    assert params["strength"].kind == "float" and params["on"].kind == "boolean"
    assert params["x"].kind == "unknown"


def test_values_are_checked_against_the_spec() -> None:
    params = typed_parameters(RECORDED["v2/controlnet_txt2img"], full_object_info())
    steps = by_input(params, "5", "steps")
    assert steps.check(30) is None
    assert steps.check(0) == "steps of node 5 is at least 1, not 0"
    assert steps.check(2.5) == "steps of node 5 takes a whole number, not 2.5"
    assert steps.check("many") == "steps of node 5 takes a number, not 'many'"
    sampler = by_input(params, "5", "sampler_name")
    assert sampler.check("euler") is None
    assert (sampler.check("nope") or "").startswith("sampler_name of node 5 is one of euler, ")


def test_json_shape_of_a_parameter() -> None:
    params = typed_parameters(RECORDED["v2/controlnet_txt2img"], full_object_info())
    data = by_input(params, "5", "seed").to_json()
    assert data["node"] == "5" and data["input"] == "seed" and data["kind"] == "int"
    assert data["role"] == "seed" and data["value"] == 520712636 and data["seed"] is True
    assert by_input(params, "13", "strength").to_json()["role"] is None


@pytest.mark.parametrize("name", sorted(corpus()))
def test_every_sampled_workflow_in_the_corpus_shows_prompt_seed_steps_and_size(name: str) -> None:
    """The figure's claim: what samples from an empty latent has all five found."""
    graph = corpus()[name]
    if infer(graph).task in ("txt2img", "video"):
        assert all_core_found(graph), sorted(
            CORE_ROLES - found_roles(typed_parameters(graph, full_object_info()))
        )
