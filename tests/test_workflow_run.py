"""The browser's cards and a run's plan, without a terminal: pure functions over the demo farm's
own `/object_info` answers (built by the simulator, as its nodes serve them)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from PIL import Image

from imgen_tui.flows.farm_info import FarmObjectInfo
from imgen_tui.flows.variations import model_switches
from imgen_tui.flows.workflow_catalog import WorkflowCard, collect_cards
from imgen_tui.flows.workflow_memory import remember, remembered
from imgen_tui.flows.workflow_run import (
    RunSettings,
    WorkflowRunError,
    form_parameters,
    parse_sweeps,
    parse_value,
    plan_run,
    saved_seed_mode,
)
from imgen_tui.graphs.typed_params import TypedParameter
from imgen_tui.locations import bundled_dir
from imgen_tui.sim.object_info import build_object_info
from imgen_tui.sim.spec import load_demo_farm

SPEC = load_demo_farm()
FARM_INFO = FarmObjectInfo(
    {node.id: build_object_info(node, []) for node in SPEC.nodes},
    {},
    tuple(node.id for node in SPEC.nodes),
)
MERGED = FARM_INFO.merged()


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory) -> dict[str, WorkflowCard]:
    user = tmp_path_factory.mktemp("user")
    shutil.copy(bundled_dir("workflows") / "sd15_lora_editor.json", user / "fox_ui.json")
    (user / "broken.json").write_text("{not json", encoding="utf-8")
    folders = [("shipped", bundled_dir("workflows")), ("user", user)]
    return {card.name: card for card in collect_cards(folders, FARM_INFO, dict(SPEC.models))}


def parameters(card: WorkflowCard) -> list[TypedParameter]:
    return form_parameters(card, MERGED)


def values_of(card: WorkflowCard, **changes: object) -> dict[tuple[str, str], object]:
    found: dict[tuple[str, str], object] = {}
    for parameter in parameters(card):
        found[(parameter.node, parameter.input)] = changes.get(
            parameter.role or parameter.input, parameter.value
        )
    return found


def test_a_broken_file_is_a_card_with_its_sentence(cards: dict[str, WorkflowCard]) -> None:
    broken = cards["broken"]
    assert broken.error is not None and "is not valid JSON" in broken.error
    assert broken.runnable_problem() == broken.error
    assert cards["fox_ui"].format == "ui" and cards["fox_ui"].category == "user"


def test_flux_runs_only_where_its_checkpoint_is(cards: dict[str, WorkflowCard]) -> None:
    flux = cards["flux_txt2img"]
    assert flux.ready_nodes == ["gpu-premium"]
    quality = next(s for s in flux.statuses if s.node_id == "gpu-quality")
    assert quality.label() == "Missing 1"
    assert quality.detail() == "checkpoints/flux1-dev-fp8.safetensors"
    # the demo's laptop runs an older ComfyUI without the Flux nodes: classes missing too
    draft = next(s for s in flux.statuses if s.node_id == "gpu-draft")
    assert draft.label() == "Missing 3"
    assert draft.detail() == (
        "class EmptySD3LatentImage, class FluxGuidance, checkpoints/flux1-dev-fp8.safetensors"
    )


def test_values_are_typed_and_bounded_with_a_sentence(cards: dict[str, WorkflowCard]) -> None:
    steps = next(p for p in parameters(cards["sd15_txt2img"]) if p.role == "steps")
    assert parse_value(steps, " 25 ") == 25
    with pytest.raises(WorkflowRunError, match=r"steps of node \d+ takes a whole number, not 'x'"):
        parse_value(steps, "x")
    with pytest.raises(WorkflowRunError, match=r"at most 10000.*keeps the last good value"):
        parse_value(steps, "10001")
    sampler = next(p for p in parameters(cards["sd15_txt2img"]) if p.role == "sampler")
    with pytest.raises(WorkflowRunError, match=r"sampler_name of node .* is one of"):
        parse_value(sampler, "no_such_sampler")


def test_count_seed_mode_and_prompts_make_the_jobs(cards: dict[str, WorkflowCard]) -> None:
    card = cards["sd15_txt2img"]
    settings = RunSettings(count=4, seed_mode="increment", prompts="a cat\n\na dog\n")
    plan = plan_run(card, parameters(card), values_of(card, seed=7), settings)
    assert plan.seeds == [7, 8, 9, 10]
    prompt = next(p for p in parameters(card) if p.role == "prompt")
    texts = [spec.graph[prompt.node]["inputs"][prompt.input] for spec in plan.specs]
    assert texts == ["a cat", "a dog", "a cat", "a dog"]
    assert plan.prompt == "a cat"
    assert all(spec.family == "sd15" for spec in plan.specs)


def test_refusals_name_what_to_change(cards: dict[str, WorkflowCard], tmp_path: Path) -> None:
    card = cards["sd15_txt2img"]
    with pytest.raises(WorkflowRunError, match="fixed seed with a count of 3"):
        plan_run(card, parameters(card), values_of(card), RunSettings(count=3, seed_mode="fixed"))
    with pytest.raises(WorkflowRunError, match="no parameter 'flavour' to sweep"):
        plan_run(card, parameters(card), values_of(card), RunSettings(sweeps="flavour = 1, 2"))
    with pytest.raises(WorkflowRunError, match="needs NAME = VALUES"):
        plan_run(card, parameters(card), values_of(card), RunSettings(sweeps="steps 1..3"))
    with pytest.raises(WorkflowRunError, match=r"1000 at most|500 at most"):
        plan_run(
            card,
            parameters(card),
            values_of(card),
            RunSettings(sweeps="seed = 0..900\nsteps = 1..3"),
        )
    assert cards["flux_txt2img"].runnable_problem() is None  # one node can: enough
    img2img = cards["sd15_img2img"]
    with pytest.raises(WorkflowRunError, match="starts from a picture: type its path in 'image'"):
        plan_run(img2img, parameters(img2img), values_of(img2img), RunSettings())
    with pytest.raises(WorkflowRunError, match="no such picture"):
        plan_run(
            img2img,
            parameters(img2img),
            values_of(img2img, image=str(tmp_path / "x.png")),
            RunSettings(),
        )
    picture = tmp_path / "start.png"
    Image.new("RGB", (64, 64), "red").save(picture)
    plan = plan_run(
        img2img, parameters(img2img), values_of(img2img, image=str(picture)), RunSettings()
    )
    assert plan.specs[0].source_image == str(picture)


def test_a_checkpoint_sweep_is_ordered_for_fewest_model_switches(
    cards: dict[str, WorkflowCard],
) -> None:
    card = cards["fox_ui"]
    typed = parameters(card)
    settings = RunSettings(
        count=2,
        sweeps="checkpoint = v1-5-pruned-emaonly.safetensors, sd_xl_base_1.0.safetensors\nsteps = 4, 8",
    )
    plan = plan_run(card, typed, values_of(card), settings, rng=random.Random(1))
    assert len(plan.specs) == 8
    checkpoints = [spec.checkpoint for spec in plan.specs]
    assert (
        checkpoints == ["v1-5-pruned-emaonly.safetensors"] * 4 + ["sd_xl_base_1.0.safetensors"] * 4
    )
    zipped = parse_sweeps("steps = 4, 8\ncfg = 5, 6", typed)
    assert [sweep.values for sweep in zipped] == [(4, 8), (5.0, 6.0)]
    plan = plan_run(
        card,
        typed,
        values_of(card),
        RunSettings(sweeps="steps = 4, 8\ncfg = 5, 6", sweep_mode="zip"),
    )
    assert len(plan.specs) == 2
    assert model_switches([]) == 0


def test_the_saved_control_after_generate_is_the_starting_seed_mode(
    cards: dict[str, WorkflowCard],
) -> None:
    # the UI file's seed comes from a primitive saved as "fixed"
    assert saved_seed_mode(parameters(cards["fox_ui"])) == "fixed"
    assert saved_seed_mode(parameters(cards["upscale_esrgan"])) == "random"  # no seed at all


def test_remembered_values_survive_a_broken_file_and_keep_other_workflows(tmp_path: Path) -> None:
    path = tmp_path / "values.json"
    assert remembered(path, "shipped:a") == {}
    remember(path, "shipped:a", {"3.steps": 12}, {"count": 2})
    remember(path, "user:b", {"3.steps": 30}, {})
    assert remembered(path, "shipped:a") == {"3.steps": 12, "_variations": {"count": 2}}
    assert json.loads(path.read_text())["user:b"]["3.steps"] == 30
    path.write_text("{broken", encoding="utf-8")
    assert remembered(path, "shipped:a") == {}
    assert RunSettings.from_json({"count": -3, "seed_mode": "sideways"}) == RunSettings()
