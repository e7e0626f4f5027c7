"""UI-format → API-format conversion, checked against hand-written files and by round trips."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgen_tui.graphs.ui_format import ConversionError, detect_format, ui_to_api
from imgen_tui.graphs.widgets import (
    assign_widget_values,
    combo_choices,
    input_specs,
    is_widget,
    spec_options,
    spec_type,
    widget_slots,
)
from tests.ui_workflows import (
    FIXTURES,
    UiBuilder,
    full_object_info,
    renamed,
    save_as_ui,
    with_defaults,
    without_meta,
    wrap_in_subgraph,
)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


SD15_EXPECTED = {
    "4": {
        "class_type": "CheckpointLoaderSimple",
        "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"},
    },
    "6": {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "a red fox in snow", "clip": ["4", 1]},
    },
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
    "5": {
        "class_type": "EmptyLatentImage",
        "inputs": {"width": 512, "height": 512, "batch_size": 1},
    },
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 42,
            "steps": 20,
            "cfg": 8,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
}


def test_editor_file_converts_as_the_frontend_queues_it() -> None:
    """Bypassed LoRA (CLIP passes by type), reroute, primitive seed, muted preview, note."""
    conversion = ui_to_api(load("sd15_editor_ui.json"), full_object_info())
    assert without_meta(conversion.graph) == SD15_EXPECTED
    assert conversion.missing_classes == ()
    # The seed comes from the primitive, so its control after generate ("fixed") governs, not
    # the hidden one the KSampler kept from before its widget was converted ("randomize").
    assert conversion.controls == {"3": {"seed": "fixed"}}
    assert conversion.graph["6"]["_meta"] == {"title": "Positive"}
    assert conversion.graph["8"]["_meta"] == {"title": "VAE Decode"}  # the class's display name


def test_subgraph_is_expanded_with_its_promoted_widget() -> None:
    conversion = ui_to_api(load("flux_modern_subgraph_ui.json"), full_object_info())
    graph = without_meta(conversion.graph)
    assert graph["4:1"] == {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "a lighthouse at dusk, volumetric fog", "clip": ["2", 0]},
    }
    assert graph["4:2"] == {
        "class_type": "FluxGuidance",
        "inputs": {"guidance": 3.5, "conditioning": ["4:1", 0]},
    }
    assert graph["8"]["inputs"] == {"model": ["1", 0], "conditioning": ["4:2", 0]}
    assert graph["10"]["inputs"] == {"width": ["9", 0], "height": ["9", 0], "batch_size": 1}
    assert graph["5"]["inputs"] == {"noise_seed": 123456}
    assert "4" not in graph and "14" not in graph  # the instance and the markdown note
    assert conversion.controls["5"] == {"noise_seed": "randomize"}


def test_subgraph_input_wired_outside_follows_the_outer_link() -> None:
    workflow = load("flux_modern_subgraph_ui.json")
    instance = next(node for node in workflow["nodes"] if node["id"] == 4)
    # Wire the promoted text input to a PrimitiveStringMultiline outside the subgraph.
    workflow["nodes"].append(
        {
            "id": 20,
            "type": "PrimitiveStringMultiline",
            "mode": 0,
            "inputs": [],
            "outputs": [{"name": "STRING", "type": "STRING", "links": [70]}],
            "widgets_values": ["from outside"],
        }
    )
    workflow["links"].append([70, 20, 0, 4, 1, "STRING"])
    instance["inputs"][1]["link"] = 70
    graph = ui_to_api(workflow, full_object_info()).graph
    assert graph["4:1"]["inputs"]["text"] == ["20", 0]
    assert graph["20"]["inputs"] == {"value": "from outside"}


def test_muted_subgraph_sends_none_of_its_nodes() -> None:
    workflow = load("flux_modern_subgraph_ui.json")
    next(node for node in workflow["nodes"] if node["id"] == 4)["mode"] = 2
    graph = ui_to_api(workflow, full_object_info()).graph
    assert not any(node_id.startswith("4:") for node_id in graph)
    assert graph["8"]["inputs"] == {"model": ["1", 0]}  # the wire to the muted prompt is dropped


def test_muting_a_node_drops_the_inputs_wired_to_it() -> None:
    workflow = load("sd15_editor_ui.json")
    next(node for node in workflow["nodes"] if node["id"] == 8)["mode"] = 2
    graph = ui_to_api(workflow, full_object_info()).graph
    assert "8" not in graph
    assert graph["9"]["inputs"] == {"filename_prefix": "ComfyUI"}


def test_bypassed_node_without_a_matching_input_passes_nothing() -> None:
    """A bypassed VAEDecode has no IMAGE input, so SaveImage's images input is dropped."""
    workflow = load("sd15_editor_ui.json")
    next(node for node in workflow["nodes"] if node["id"] == 8)["mode"] = 4
    graph = ui_to_api(workflow, full_object_info()).graph
    assert "8" not in graph
    assert graph["9"]["inputs"] == {"filename_prefix": "ComfyUI"}


def test_bypass_prefers_the_same_slot_then_the_first_of_the_type() -> None:
    """LoraLoader's CLIP output (slot 1) takes its clip input (slot 1), MODEL takes slot 0."""
    graph = ui_to_api(load("sd15_editor_ui.json"), full_object_info()).graph
    assert graph["3"]["inputs"]["model"] == ["4", 0]
    assert graph["6"]["inputs"]["clip"] == ["4", 1]


def test_unbypassed_lora_is_sent_with_its_widgets() -> None:
    workflow = load("sd15_editor_ui.json")
    next(node for node in workflow["nodes"] if node["id"] == 10)["mode"] = 0
    graph = without_meta(ui_to_api(workflow, full_object_info()).graph)
    assert graph["10"] == {
        "class_type": "LoraLoader",
        "inputs": {
            "lora_name": "detail-tweaker.safetensors",
            "strength_model": 1,
            "strength_clip": 1,
            "model": ["4", 0],
            "clip": ["4", 1],
        },
    }
    assert graph["3"]["inputs"]["model"] == ["10", 0]
    assert graph["7"]["inputs"]["clip"] == ["10", 1]


def test_unknown_class_is_reported_by_name_and_not_guessed() -> None:
    info = {name: spec for name, spec in full_object_info().items() if name != "LoraLoader"}
    workflow = load("sd15_editor_ui.json")
    next(node for node in workflow["nodes"] if node["id"] == 10)["mode"] = 0
    conversion = ui_to_api(workflow, info)
    assert conversion.missing_classes == ("LoraLoader",)
    # Only its wires are kept: no input name is invented for its widget values.
    assert conversion.graph["10"]["inputs"] == {"model": ["4", 0], "clip": ["4", 1]}


def test_unknown_class_on_a_muted_node_is_not_needed() -> None:
    info = {name: spec for name, spec in full_object_info().items() if name != "PreviewImage"}
    assert ui_to_api(load("sd15_editor_ui.json"), info).missing_classes == ()


def test_widget_values_saved_without_the_control_value_still_line_up() -> None:
    info = full_object_info()["KSampler"]
    sent, controls = assign_widget_values(info, [7, 30, 6.5, "dpmpp_2m", "karras", 0.5])
    assert sent == {
        "seed": 7,
        "steps": 30,
        "cfg": 6.5,
        "sampler_name": "dpmpp_2m",
        "scheduler": "karras",
        "denoise": 0.5,
    }
    assert controls == {}


def test_missing_trailing_widget_values_get_the_defaults() -> None:
    sent, _ = assign_widget_values(full_object_info()["KSampler"], [7, "fixed", 30])
    assert sent["cfg"] == 8.0 and sent["sampler_name"] == "euler" and sent["denoise"] == 1.0


def test_widget_values_as_an_object_are_read_by_name() -> None:
    info = full_object_info()["VHS_VideoCombine"]
    values = {
        "frame_rate": 8,
        "loop_count": 0,
        "filename_prefix": "vhs/h264",
        "format": "video/h264-mp4",
        "pix_fmt": "yuv420p",
        "crf": 19,
        "save_metadata": True,
        "pingpong": False,
        "save_output": True,
        "videopreview": {"hidden": False, "paused": False, "params": {}},
    }
    sent, _ = assign_widget_values(info, values)
    assert sent["format"] == "video/h264-mp4" and sent["crf"] == 19 and sent["pix_fmt"] == "yuv420p"
    assert "videopreview" not in sent


def test_load_image_upload_value_is_not_sent() -> None:
    sent, _ = assign_widget_values(full_object_info()["LoadImage"], ["fox.png", "image"])
    assert sent == {"image": "fox.png"}
    assert [slot.kind for slot in widget_slots(full_object_info()["LoadImage"])] == [
        "value",
        "upload",
    ]


def test_combo_with_control_has_a_filter_slot() -> None:
    info = {
        "input": {
            "required": {"pick": [["a", "b"], {"control_after_generate": True}], "n": ["INT", {}]}
        },
    }
    assert [slot.kind for slot in widget_slots(info)] == ["value", "control", "filter", "value"]
    sent, controls = assign_widget_values(info, ["b", "increment", "", 3])
    assert sent == {"pick": "b", "n": 3} and controls == {"pick": "increment"}


def test_seed_named_int_without_the_flag_gets_a_control_and_the_flag_can_refuse_it() -> None:
    named = {"input": {"required": {"seed": ["INT", {}], "steps": ["INT", {}]}}}
    refused = {"input": {"required": {"seed": ["INT", {"control_after_generate": False}]}}}
    before = {"input": {"required": {"value": ["INT", {"control_before_generate": True}]}}}
    assert [slot.kind for slot in widget_slots(named)] == ["value", "control", "value"]
    assert [slot.kind for slot in widget_slots(refused)] == ["value"]
    assert [slot.kind for slot in widget_slots(before)] == ["value", "control"]


def test_input_order_wins_over_the_mapping_order() -> None:
    info = {
        "input": {"required": {"b": ["INT", {}], "a": ["STRING", {}]}},
        "input_order": {"required": ["a", "b"]},
    }
    assert [name for name, _, _ in input_specs(info)] == ["a", "b"]


def test_list_literal_is_boxed() -> None:
    builder = UiBuilder(full_object_info())
    builder.add_node("EmptyLatentImage", 1, {"width": 512, "height": 512, "batch_size": 1})
    builder.nodes[0]["widgets_values"][0] = [1, 2]
    graph = ui_to_api(builder.workflow(), full_object_info()).graph
    assert graph["1"]["inputs"]["width"] == {"__value__": [1, 2]}


def test_set_and_get_nodes_relay_a_wire() -> None:
    workflow = load("sd15_editor_ui.json")
    reroute = next(node for node in workflow["nodes"] if node["id"] == 12)
    reroute["type"], reroute["widgets_values"] = "SetNode", ["VAE"]
    workflow["nodes"].append(
        {
            "id": 30,
            "type": "GetNode",
            "mode": 0,
            "inputs": [],
            "outputs": [{"name": "VAE", "type": "VAE", "links": [11]}],
            "widgets_values": ["VAE"],
        }
    )
    workflow["links"] = [link for link in workflow["links"] if link[0] != 11] + [
        [11, 30, 0, 8, 1, "VAE"]
    ]
    reroute["outputs"][0]["links"] = []
    graph = ui_to_api(workflow, full_object_info()).graph
    assert graph["8"]["inputs"]["vae"] == ["4", 2]


def test_legacy_group_node_is_refused_with_a_sentence() -> None:
    workflow = load("sd15_editor_ui.json")
    workflow["nodes"][0]["type"] = "workflow>loaders"
    workflow["extra"]["groupNodes"] = {"loaders": {"nodes": []}}
    with pytest.raises(
        ConversionError, match=r"node 4 is a legacy group node \('workflow>loaders'\)"
    ):
        ui_to_api(workflow, full_object_info())


def test_missing_subgraph_definition_is_refused() -> None:
    workflow = load("flux_modern_subgraph_ui.json")
    del workflow["definitions"]
    with pytest.raises(ConversionError, match="node 4 is a subgraph whose definition"):
        ui_to_api(workflow, full_object_info())


def test_a_reroute_loop_is_refused() -> None:
    builder = UiBuilder(full_object_info())
    save = builder.add_node("SaveImage", 1, {"filename_prefix": "x"})
    first = builder.add_frontend_node(
        "Reroute",
        2,
        [{"name": "", "type": "*", "link": None}],
        [{"name": "", "type": "IMAGE", "links": []}],
    )
    second = builder.add_frontend_node(
        "Reroute",
        3,
        [{"name": "", "type": "*", "link": None}],
        [{"name": "", "type": "IMAGE", "links": []}],
    )
    builder.link(first, 0, second, 0)
    builder.link(second, 0, first, 0)
    builder.link(second, 0, save, 0)
    with pytest.raises(ConversionError, match="wired in a loop"):
        ui_to_api(builder.workflow(), full_object_info())


def test_not_a_ui_workflow_is_refused() -> None:
    with pytest.raises(ConversionError, match="not a UI-format workflow"):
        ui_to_api(SD15_EXPECTED, full_object_info())
    assert detect_format(SD15_EXPECTED) == "api"
    assert detect_format(load("sd15_editor_ui.json")) == "ui"
    assert detect_format([1, 2]) is None and detect_format({"a": 1}) is None


# -- round trips -------------------------------------------------------------------------


def recorded_graphs() -> list[tuple[str, dict[str, Any]]]:
    """Every graph a recorded run submitted to a real ComfyUI 0.3.64 (v1 and v2 recordings)."""
    return sorted(load("recorded_graphs.json").items())


RECORDED = recorded_graphs()


@pytest.mark.parametrize(("name", "graph"), RECORDED, ids=[name for name, _ in RECORDED])
def test_recorded_graphs_survive_a_save_in_the_ui_format(name: str, graph: dict[str, Any]) -> None:
    workflow = save_as_ui(graph, full_object_info(), control="randomize").workflow()
    expected = with_defaults(graph, full_object_info())
    assert without_meta(ui_to_api(workflow, full_object_info()).graph) == expected


SIMPLE_CLASSES = sorted(
    name
    for name, info in full_object_info().items()
    if all(
        not is_widget(spec) or spec_type(spec) != "COMBO" or combo_choices(spec)
        for _, spec, _ in input_specs(info)
    )
    and not any(
        isinstance(spec_options(spec).get("formats"), dict) for _, spec, _ in input_specs(info)
    )
    and name not in ("PrimitiveNode", "Reroute", "Note", "MarkdownNote")
)


def literal(spec: list[Any]) -> st.SearchStrategy[Any]:
    kind, options = spec_type(spec), spec_options(spec)
    if kind == "INT":
        low = max(int(options.get("min", 0)), -(2**40))
        return st.integers(low, max(low, min(int(options.get("max", 2048)), 2**40)))
    if kind == "FLOAT":
        bottom = float(options.get("min", 0.0))
        return st.floats(bottom, max(bottom, float(options.get("max", 2048.0))), allow_nan=False)
    if kind == "BOOLEAN":
        return st.booleans()
    if kind == "COMBO":
        return st.sampled_from(combo_choices(spec))
    return st.text(max_size=20)


@st.composite
def api_graphs(draw: st.DrawFn) -> dict[str, Any]:
    """A random graph of real classes: every literal set, sockets wired to earlier outputs."""
    info = full_object_info()
    classes = draw(st.lists(st.sampled_from(SIMPLE_CLASSES), min_size=1, max_size=7))
    graph: dict[str, Any] = {}
    outputs: list[tuple[str, int, str]] = []
    for index, class_type in enumerate(classes):
        inputs: dict[str, Any] = {}
        for name, spec, _ in input_specs(info[class_type]):
            kind = "COMBO" if isinstance(spec[0], list) else str(spec[0])
            sources = [
                (node, slot) for node, slot, out in outputs if out == kind and kind != "COMBO"
            ]
            wire = bool(sources) and (not is_widget(spec) or draw(st.integers(0, 4)) == 0)
            if wire:
                node, slot = draw(st.sampled_from(sources))
                inputs[name] = [node, slot]
            elif is_widget(spec):
                value = draw(literal(spec))
                inputs[name] = value
        node_id = str(index + 1)
        graph[node_id] = {"class_type": class_type, "inputs": inputs}
        for slot, kind in enumerate(info[class_type].get("output") or []):
            outputs.append((node_id, slot, "COMBO" if isinstance(kind, list) else str(kind)))
    return graph


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=api_graphs(), control=st.sampled_from(["fixed", "randomize", "increment"]))
def test_any_graph_saved_in_the_ui_format_converts_back(
    graph: dict[str, Any], control: str
) -> None:
    workflow = save_as_ui(graph, full_object_info(), control=control).workflow()
    assert without_meta(ui_to_api(workflow, full_object_info()).graph) == graph


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=api_graphs(), data=st.data())
def test_editor_additions_do_not_change_the_prompt(
    graph: dict[str, Any], data: st.DataObject
) -> None:
    """Reroutes on wires, bypassed pass-through nodes, primitives, notes and muted side nodes."""
    info = full_object_info()
    builder = save_as_ui(graph, info)
    next_id = 1000
    for link_id in [link[0] for link in builder.links]:
        kind = next(link[5] for link in builder.links if link[0] == link_id)
        choice = data.draw(st.integers(0, 3))
        if choice == 1:
            builder.reroute(link_id, next_id)
        elif choice == 2 and kind in PASS_THROUGH:
            class_type, literals = PASS_THROUGH[kind]
            builder.bypassed(link_id, class_type, next_id, literals)
        next_id += 1
    expected = copy.deepcopy(graph)
    for node_id, node in graph.items():
        for name, value in node["inputs"].items():
            target = builder.by_id[int(node_id)]
            spec = dict((n, s) for n, s, _ in input_specs(info[node["class_type"]]))[name]
            if (
                spec_type(spec) in ("INT", "FLOAT", "STRING")
                and not isinstance(value, list)
                and data.draw(st.integers(0, 3)) == 0
            ):
                primitive_value = data.draw(literal(spec))
                builder.primitive(target, name, primitive_value, next_id)
                expected[node_id]["inputs"][name] = primitive_value
                next_id += 1
    builder.note(next_id, "a note")
    muted = builder.add_node("SaveImage", next_id + 1, {"filename_prefix": "muted"})
    muted["mode"] = 2
    assert without_meta(ui_to_api(builder.workflow(), info).graph) == expected


#: a class whose input 0 and output 0 have this type, to bypass on a wire of that type
PASS_THROUGH: dict[str, tuple[str, dict[str, Any]]] = {
    "MODEL": ("LoraLoaderModelOnly", {"lora_name": "x.safetensors", "strength_model": 1.0}),
    "IMAGE": ("ImageInvert", {}),
    "CONDITIONING": ("ConditioningZeroOut", {}),
    "LATENT": ("LatentUpscaleBy", {"upscale_method": "nearest-exact", "scale_by": 1.5}),
}


def test_pass_through_classes_have_the_shape_the_property_needs() -> None:
    info = full_object_info()
    for kind, (class_type, _) in PASS_THROUGH.items():
        specs = list(input_specs(info[class_type]))
        assert specs[0][1][0] == kind and info[class_type]["output"][0] == kind


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=api_graphs(), data=st.data())
def test_nodes_moved_into_subgraphs_run_under_their_execution_ids(
    graph: dict[str, Any], data: st.DataObject
) -> None:
    builder = save_as_ui(graph, full_object_info())
    wrapped = data.draw(st.sets(st.sampled_from(sorted(graph))))
    expected = graph
    for index, node_id in enumerate(sorted(wrapped)):
        instance = 5000 + index
        wrap_in_subgraph(builder, int(node_id), instance)
        expected = renamed(expected, node_id, f"{instance}:{node_id}")
    assert without_meta(ui_to_api(builder.workflow(), full_object_info()).graph) == expected
