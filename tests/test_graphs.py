"""Templates, parameter extraction/application and injection on API-format graphs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.graphs import (
    GraphError,
    LoraSpec,
    apply_parameters,
    extract_parameters,
    inject_loras,
    load_library,
    set_source_image,
    with_values,
)
from imgen_tui.graphs.params import read_values
from imgen_tui.locations import bundled_dir
from imgen_tui.sim.object_info import build_object_info
from imgen_tui.sim.validation import validate_prompt
from tests.conftest import FAST_NODE, recorded_json

LIBRARY = load_library([bundled_dir("workflows")])
SEED_SET = [
    "sd15_txt2img",
    "sd15_img2img",
    "sdxl_txt2img",
    "sdxl_img2img",
    "flux_txt2img",
    "flux_img2img",
    "upscale_esrgan",
]
# The recorded ComfyUI's node classes, with our farm's model files installed.
OBJECT_INFO = build_object_info(FAST_NODE, ["source.png"])


def render(name: str, **params: Any) -> dict[str, Any]:
    base = {"prompt": "a lighthouse at dusk", "image": "source.png", "seed": 123}
    return LIBRARY[name].render({**base, **params}, DEFAULT_MODELS)


def test_the_seed_set_of_templates_ships() -> None:
    assert set(SEED_SET) <= set(LIBRARY.names())
    assert {LIBRARY[name].family for name in SEED_SET} == {"sd15", "sdxl", "flux", "any"}


@pytest.mark.parametrize("name", SEED_SET)
def test_every_template_passes_comfyui_validation(name: str) -> None:
    result = validate_prompt(render(name), OBJECT_INFO)
    assert result.error is None, result
    assert result.node_errors == {}


@pytest.mark.parametrize("name", [n for n in SEED_SET if n != "upscale_esrgan"])
def test_every_sampling_template_takes_a_lora_chain(name: str) -> None:
    graph = inject_loras(
        render(name),
        [LoraSpec("detail-tweaker.safetensors", 0.7), LoraSpec("film-grain.safetensors", 0.4, 0.2)],
    )
    result = validate_prompt(graph, OBJECT_INFO)
    assert result.error is None and result.node_errors == {}
    loras = [p for p in extract_parameters(graph) if p.kind == "lora_name"]
    assert [p.value for p in loras] == ["detail-tweaker.safetensors", "film-grain.safetensors"]


def test_placeholders_keep_their_type_and_config_picks_the_checkpoint() -> None:
    graph = render("sdxl_txt2img", seed=7, cfg=5.5)
    sampler = graph["5"]["inputs"]
    assert sampler["seed"] == 7 and isinstance(sampler["seed"], int)
    assert sampler["cfg"] == 5.5 and sampler["steps"] == 25
    assert graph["1"]["inputs"]["ckpt_name"] == "sd_xl_base_1.0.safetensors"
    other = LIBRARY["sdxl_txt2img"].render({"prompt": "x"}, {"sdxl": "juggernautXL.safetensors"})
    assert other["1"]["inputs"]["ckpt_name"] == "juggernautXL.safetensors"


def test_a_prompt_with_quotes_and_braces_cannot_break_the_graph() -> None:
    text = 'a "quoted" {{seed}} prompt, with \\ and }'
    graph = render("sd15_txt2img", prompt=text)
    assert graph["2"]["inputs"]["text"] == text
    json.loads(json.dumps(graph))


def test_a_missing_required_value_is_named() -> None:
    with pytest.raises(GraphError, match="workflow sd15_img2img needs a value for image"):
        LIBRARY["sd15_img2img"].render({"prompt": "x"}, DEFAULT_MODELS)
    assert LIBRARY["sd15_img2img"].required == {"prompt", "image"}


def test_prompts_are_told_apart_by_following_the_sampler_links() -> None:
    graph = render("sd15_txt2img", negative="ugly")
    # Swap the node ids around so position and order cannot give it away.
    graph["2"], graph["3"] = graph["3"], graph["2"]
    graph["5"]["inputs"]["positive"], graph["5"]["inputs"]["negative"] = ["3", 0], ["2", 0]
    values = read_values(graph)
    assert values["positive_prompt"] == "a lighthouse at dusk"
    assert values["negative_prompt"] == "ugly"


def test_flux_positive_prompt_is_found_through_flux_guidance() -> None:
    values = read_values(render("flux_txt2img"))
    assert values["positive_prompt"] == "a lighthouse at dusk"
    assert values["negative_prompt"] == ""
    assert values["guidance"] == 3.5


def test_controlnet_apply_routes_positive_and_negative_by_output() -> None:
    graph = render("sd15_txt2img", negative="ugly")
    graph["20"] = {
        "class_type": "ControlNetApplyAdvanced",
        "inputs": {
            "positive": ["2", 0],
            "negative": ["3", 0],
            "control_net": ["21", 0],
            "image": ["22", 0],
            "strength": 1.0,
            "start_percent": 0.0,
            "end_percent": 1.0,
        },
    }
    graph["5"]["inputs"]["positive"] = ["20", 0]
    graph["5"]["inputs"]["negative"] = ["20", 1]
    values = read_values(graph)
    assert (values["positive_prompt"], values["negative_prompt"]) == (
        "a lighthouse at dusk",
        "ugly",
    )


def test_recorded_real_graphs_are_read() -> None:
    body = recorded_json("txt2img_submit.json")["request"]["json"]["prompt"]
    values = read_values(body)
    assert values["positive_prompt"] == "a red fox" and values["negative_prompt"] == "blurry"
    assert (values["seed"], values["steps"], values["width"]) == (1001, 4, 128)
    assert values["checkpoint"] == "tiny-sd15.safetensors"


def test_ksampler_advanced_seed_is_the_noise_seed() -> None:
    graph = render("sd15_txt2img")
    inputs = graph["5"]["inputs"]
    graph["5"] = {
        "class_type": "KSamplerAdvanced",
        "inputs": {
            "model": inputs["model"],
            "positive": inputs["positive"],
            "negative": inputs["negative"],
            "latent_image": inputs["latent_image"],
            "add_noise": "enable",
            "noise_seed": 9,
            "steps": 20,
            "cfg": 7.0,
            "sampler_name": "euler",
            "scheduler": "normal",
            "start_at_step": 0,
            "end_at_step": 10000,
            "return_with_leftover_noise": "disable",
        },
    }
    changed = with_values(graph, {"seed": 10, "end_at_step": 15})
    assert (
        changed["5"]["inputs"]["noise_seed"] == 10 and changed["5"]["inputs"]["end_at_step"] == 15
    )
    assert graph["5"]["inputs"]["noise_seed"] == 9  # the original is untouched


def test_lora_injection_rewires_every_user_of_model_and_clip() -> None:
    graph = inject_loras(render("sd15_txt2img"), [LoraSpec("detail-tweaker.safetensors")])
    assert graph["8"]["inputs"]["model"] == ["1", 0] and graph["8"]["inputs"]["clip"] == ["1", 1]
    assert graph["5"]["inputs"]["model"] == ["8", 0]
    assert graph["2"]["inputs"]["clip"] == ["8", 1] and graph["3"]["inputs"]["clip"] == ["8", 1]
    assert graph["6"]["inputs"]["vae"] == ["1", 2]  # the VAE does not go through a LoRA
    again = inject_loras(graph, [LoraSpec("film-grain.safetensors")])  # appends to the chain
    assert again["9"]["inputs"]["model"] == ["8", 0] and again["5"]["inputs"]["model"] == ["9", 0]


def test_lora_injection_explains_a_graph_without_a_sampler() -> None:
    with pytest.raises(GraphError, match="no KSampler"):
        inject_loras(render("upscale_esrgan"), [LoraSpec("x.safetensors")])


def test_source_image_is_set_on_load_image_nodes() -> None:
    graph = set_source_image(render("sd15_img2img"), "uploaded (1).png")
    assert graph["10"]["inputs"]["image"] == "uploaded (1).png"
    with pytest.raises(GraphError, match="no LoadImage"):
        set_source_image(render("sd15_txt2img"), "x.png")


# -- property tests -------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
class_types = st.sampled_from(
    [
        "CLIPTextEncode",
        "KSampler",
        "KSamplerAdvanced",
        "EmptyLatentImage",
        "CheckpointLoaderSimple",
        "LoraLoader",
        "FluxGuidance",
        "LoadImage",
        "X",
    ]
)
input_names = st.sampled_from(
    [
        "text",
        "seed",
        "steps",
        "positive",
        "negative",
        "model",
        "clip",
        "conditioning",
        "width",
        "lora_name",
        "noise_seed",
        "image",
    ]
)
links = st.tuples(st.sampled_from(["1", "2", "3", "4", "99"]), st.integers(0, 2)).map(list)
graphs = st.dictionaries(
    st.sampled_from(["1", "2", "3", "4", "5", "x"]),
    st.fixed_dictionaries(
        {
            "class_type": class_types,
            "inputs": st.dictionaries(input_names, links | json_values, max_size=6),
        }
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, graphs))
def test_extraction_never_crashes_on_arbitrary_json(value: Any) -> None:
    parameters = extract_parameters(value)
    if isinstance(value, dict):
        assert apply_parameters(value, parameters) == value
        read_values(value)


@settings(max_examples=300, deadline=None)
@given(graphs)
def test_apply_of_extract_leaves_any_graph_unchanged(graph: dict[str, Any]) -> None:
    before = copy.deepcopy(graph)
    assert apply_parameters(graph, extract_parameters(graph)) == before
    assert graph == before


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(SEED_SET), st.integers(0, 2**32), st.text(max_size=40))
def test_with_values_changes_exactly_what_it_names(name: str, seed: int, prompt: str) -> None:
    graph = render(name)
    changed = with_values(graph, {"seed": seed, "positive_prompt": prompt})
    values = read_values(changed)
    if "seed" in read_values(graph):
        assert values["seed"] == seed
    if "positive_prompt" in read_values(graph):
        assert values["positive_prompt"] == prompt
    untouched = {
        k: v for k, v in read_values(graph).items() if k not in ("seed", "positive_prompt")
    }
    assert {k: values[k] for k in untouched} == untouched


# -- manifest errors -------------------------------------------------------------------------


def _manifest(
    tmp_path: Path,
    entry: str,
    graph: str | None = '{"1": {"class_type": "SaveImage", "inputs": {}}}',
) -> Path:
    (tmp_path / "manifest.yaml").write_text(f"workflows:\n  mine:\n{entry}")
    if graph is not None:
        (tmp_path / "mine.json").write_text(graph)
    return tmp_path


def test_user_folder_overrides_and_extends_the_bundled_one(tmp_path: Path) -> None:
    folder = _manifest(tmp_path, "    file: mine.json\n    family: sd15\n    task: txt2img\n")
    library = load_library([bundled_dir("workflows"), folder])
    assert "mine" in library and "sd15_txt2img" in library


@pytest.mark.parametrize(
    ("entry", "graph", "expected"),
    [
        (
            "    file: gone.json\n    family: sd15\n    task: txt2img\n",
            None,
            "line 3: workflow file gone.json does not exist",
        ),
        (
            "    file: mine.json\n    family: sd3\n    task: txt2img\n",
            "{}",
            "line 4: workflows.mine.family must be one of",
        ),
        (
            "    file: mine.json\n    family: sd15\n    task: txt2img\n    requires: [warp]\n",
            "{}",
            "workflows.mine.requires names unknown capability 'warp'",
        ),
        (
            "    file: mine.json\n    family: sd15\n    task: txt2img\n",
            '{"1": {\n  "class_type": }',
            "mine.json, line 2: is not valid JSON",
        ),
        (
            "    file: mine.json\n    family: sd15\n    task: txt2img\n",
            '{"nodes": [], "links": []}',
            "is not an API-format graph",
        ),
    ],
)
def test_bad_workflow_folders_are_explained_and_skipped(
    tmp_path: Path, entry: str, graph: str | None, expected: str
) -> None:
    folder = _manifest(tmp_path, entry, graph)
    library = load_library([bundled_dir("workflows"), folder])
    (problem,) = library.problems
    assert expected in problem and "skipped" in problem
    assert "\n" not in problem
    assert "mine" not in library and "sd15_txt2img" in library  # the rest goes on


def test_one_bad_graph_skips_only_its_template(tmp_path: Path) -> None:
    (tmp_path / "manifest.yaml").write_text(
        "workflows:\n"
        "  good:\n    file: good.json\n    family: sd15\n    task: txt2img\n"
        "  bad:\n    file: bad.json\n    family: sd15\n    task: txt2img\n"
    )
    (tmp_path / "good.json").write_text('{"1": {"class_type": "SaveImage", "inputs": {}}}')
    (tmp_path / "bad.json").write_text("{not json")
    library = load_library([bundled_dir("workflows"), tmp_path])
    assert "good" in library and "bad" not in library
    (problem,) = library.problems
    assert "bad.json" in problem and "Workflow bad is skipped" in problem
