"""Variations from typed parameters: counts, seeds, prompt cycling, sweeps, order, farm time."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgen_tui.config import FarmConfig
from imgen_tui.flows.variations import (
    Sweep,
    VariationError,
    VariationPlan,
    apply_variation,
    estimate_farm_seconds,
    model_switches,
    plan_variations,
    prompt_lines,
    sweep_values,
)
from imgen_tui.graphs.typed_params import TypedParameter, typed_parameters
from imgen_tui.graphs.ui_format import ui_to_api
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.yamlfile import ConfigError
from tests.ui_workflows import FIXTURES, full_object_info

SD15 = ui_to_api(
    json.loads((FIXTURES / "sd15_editor_ui.json").read_text(encoding="utf-8")), full_object_info()
)
PARAMS = typed_parameters(SD15.graph, full_object_info(), SD15.controls)
CHECKPOINTS = ("v1-5-pruned-emaonly.safetensors", "dreamshaper_8.safetensors")


def param(
    role: str | None = None, node: str | None = None, name: str | None = None
) -> TypedParameter:
    return next(
        p
        for p in PARAMS
        if (role is None or p.role == role)
        and (node is None or p.node == node)
        and (name is None or p.input == name)
    )


def checkpoint_sweep() -> Sweep:
    parameter = param("checkpoint")
    parameter = TypedParameter(**{**parameter.__dict__, "options": CHECKPOINTS})
    return Sweep(parameter, CHECKPOINTS)


def test_count_times_the_cartesian_product() -> None:
    plan = VariationPlan(
        count=3,
        seed="increment",
        base_seed=10,
        sweeps=(Sweep(param("cfg"), (5.0, 7.0)), Sweep(param("steps"), (10, 20, 30))),
    )
    jobs = plan_variations(plan)
    assert len(jobs) == 3 * 2 * 3
    points = {tuple(sorted(job.values.items())) for job in jobs}
    assert len(points) == 6
    for point in points:  # every point gets the same seeds, so points differ only in the sweep
        assert sorted(
            job.seed or 0 for job in jobs if tuple(sorted(job.values.items())) == point
        ) == [
            10,
            11,
            12,
        ]


def test_zip_pairs_values_and_refuses_unequal_axes() -> None:
    plan = VariationPlan(
        count=1,
        seed="fixed",
        sweeps=(Sweep(param("cfg"), (5.0, 7.0)), Sweep(param("steps"), (10, 20))),
        mode="zip",
    )
    assert [dict(job.values) for job in plan_variations(plan)] == [
        {("3", "cfg"): 5.0, ("3", "steps"): 10},
        {("3", "cfg"): 7.0, ("3", "steps"): 20},
    ]
    bad = VariationPlan(
        sweeps=(Sweep(param("cfg"), (5.0,)), Sweep(param("steps"), (10, 20))), mode="zip"
    )
    with pytest.raises(VariationError, match=r"equal length \(cfg has 1, steps has 2\)"):
        plan_variations(bad)


def test_model_axis_is_grouped_whatever_order_the_sweeps_are_given_in() -> None:
    sweeps = (Sweep(param("cfg"), (4.0, 6.0, 8.0)), checkpoint_sweep())
    jobs = plan_variations(VariationPlan(count=2, seed="increment", sweeps=sweeps))
    assert len(jobs) == 12
    assert model_switches(jobs) == 1
    naive = list(itertools.product((4.0, 6.0, 8.0), CHECKPOINTS))  # cfg outermost, as given
    naive_switches = sum(1 for a, b in itertools.pairwise(naive) if a[1] != b[1])
    assert naive_switches == 5


def test_the_loaded_model_goes_first() -> None:
    jobs = plan_variations(
        VariationPlan(sweeps=(checkpoint_sweep(),)), loaded_models=(CHECKPOINTS[1],)
    )
    assert [job.values[("4", "ckpt_name")] for job in jobs] == [CHECKPOINTS[1], CHECKPOINTS[0]]


@settings(max_examples=50, deadline=None)
@given(
    models=st.lists(st.sampled_from((*CHECKPOINTS, "a.safetensors")), min_size=1, max_size=6),
    cfgs=st.lists(st.floats(1, 20), min_size=1, max_size=4),
    count=st.integers(1, 3),
    mode=st.sampled_from(["cartesian", "zip"]),
)
def test_switches_are_the_fewest_possible(
    models: list[str], cfgs: list[float], count: int, mode: Any
) -> None:
    """Distinct model sets minus one: each set's jobs are contiguous."""
    if mode == "zip":
        cfgs = (cfgs * len(models))[: len(models)]
    ckpt = TypedParameter(**{**param("checkpoint").__dict__, "options": tuple(set(models))})
    plan = VariationPlan(
        count=count,
        seed="fixed",
        sweeps=(Sweep(param("cfg"), tuple(cfgs)), Sweep(ckpt, tuple(models))),
        mode=mode,
    )
    jobs = plan_variations(plan)
    expected_jobs = count * (len(models) if mode == "zip" else len(models) * len(cfgs))
    assert len(jobs) == expected_jobs
    assert model_switches(jobs) == len(set(models)) - 1


def test_seed_strategies() -> None:
    increment = plan_variations(VariationPlan(count=4, seed="increment", base_seed=7))
    assert [job.seed for job in increment] == [7, 8, 9, 10]
    fixed = plan_variations(VariationPlan(count=2, seed="fixed", base_seed=3))
    assert [job.seed for job in fixed] == [3, 3]
    first = plan_variations(VariationPlan(count=3, seed="random"), rng=random.Random(1))
    again = plan_variations(VariationPlan(count=3, seed="random"), rng=random.Random(1))
    assert [job.seed for job in first] == [job.seed for job in again]
    assert len({job.seed for job in first}) == 3
    with pytest.raises(VariationError, match="at least one image"):
        plan_variations(VariationPlan(count=0))


def test_prompts_cycle_one_per_line() -> None:
    prompts = prompt_lines("a red fox\n\n  a grey wolf  \na brown bear\n")
    assert prompts == ("a red fox", "a grey wolf", "a brown bear")
    jobs = plan_variations(VariationPlan(count=5, seed="increment", prompts=prompts))
    assert [job.prompt for job in jobs] == [
        "a red fox",
        "a grey wolf",
        "a brown bear",
        "a red fox",
        "a grey wolf",
    ]
    graph = apply_variation(SD15.graph, PARAMS, jobs[1])
    assert graph["6"]["inputs"]["text"] == "a grey wolf"
    assert graph["7"]["inputs"]["text"] == "blurry"
    assert graph["3"]["inputs"]["seed"] == 1
    assert SD15.graph["6"]["inputs"]["text"] == "a red fox in snow"  # the original is untouched


@pytest.mark.parametrize(
    ("role", "text", "values"),
    [
        ("steps", "10..30 step 10", (10, 20, 30)),
        ("steps", "4, 8,12", (4, 8, 12)),
        ("cfg", "6..7 step 0.5", (6.0, 6.5, 7.0)),
        (
            "denoise",
            "0.5..0.7",
            (
                0.5,
                0.51,
                0.52,
                0.53,
                0.54,
                0.55,
                0.56,
                0.57,
                0.58,
                0.59,
                0.6,
                0.61,
                0.62,
                0.63,
                0.64,
                0.65,
                0.66,
                0.67,
                0.68,
                0.69,
                0.7,
            ),
        ),
        ("scheduler", "karras, normal", ("karras", "normal")),
    ],
)
def test_sweep_values_from_text(role: str, text: str, values: tuple[Any, ...]) -> None:
    assert sweep_values(param(role), text) == values


def test_every_choice_of_a_combo() -> None:
    scheduler = param("scheduler")
    assert sweep_values(scheduler, "*") == scheduler.options
    with pytest.raises(
        VariationError, match="'\\*' sweeps every choice of a combo; steps of node 3 is a int"
    ):
        sweep_values(param("steps"), "*")


@pytest.mark.parametrize(
    ("role", "text", "message"),
    [
        ("steps", "0..3", "steps of node 3 is at least 1, not 0"),
        ("steps", "ten", "steps of node 3 takes whole numbers, not 'ten'"),
        ("scheduler", "karras, fancy", "scheduler of node 3 is one of"),
        ("cfg", "5..1", "needs LOW <= HIGH"),
        ("cfg", "1..x", "is not 'LOW..HIGH'"),
        ("steps", "1..5000 step 1", "would make 5000 values"),
        ("cfg", " ", "has no values"),
    ],
)
def test_bad_sweeps_are_refused_with_a_sentence(role: str, text: str, message: str) -> None:
    with pytest.raises(VariationError, match=message):
        sweep_values(param(role), text)


def two_node_farm() -> FarmConfig:
    return FarmConfig.model_validate(
        {
            "nodes": [
                {
                    "id": "fast",
                    "vram_gb": 16,
                    "tier": "premium",
                    "host": "127.0.0.1",
                    "port": 1,
                    "capabilities": ["sd15"],
                    "seconds_per_step": {"sd15": 0.1},
                    "load_seconds": 0,
                },
                {
                    "id": "slow",
                    "vram_gb": 4,
                    "tier": "draft",
                    "host": "127.0.0.1",
                    "port": 2,
                    "capabilities": ["sd15"],
                    "seconds_per_step": {"sd15": 0.3},
                    "load_seconds": 0,
                },
            ]
        }
    )


def test_farm_time_is_estimated_by_earliest_finish() -> None:
    jobs = plan_variations(VariationPlan(count=4, seed="increment"))
    graph = {**SD15.graph}
    specs = [
        JobSpec.from_graph(
            {
                **apply_variation(graph, PARAMS, job),
                "3": {**graph["3"], "inputs": {**graph["3"]["inputs"], "steps": 10}},
            },
            "sd15",
        )
        for job in jobs
    ]
    estimate = estimate_farm_seconds(specs, two_node_farm())
    # 1 s a job on fast, 3 s on slow: fast takes three (1, 2, 3 s), slow the fourth (3 s).
    assert estimate.seconds == pytest.approx(3.0)
    assert estimate.jobs_per_node == {"fast": 3, "slow": 1}
    sdxl = JobSpec.from_graph(SD15.graph, "sdxl")
    late = estimate_farm_seconds([*specs, sdxl], two_node_farm())
    assert late.unrunnable == 1 and "fast: no sdxl" in late.reason


def test_file_batch_orders_checkpoint_sweeps_for_fewest_switches() -> None:
    from imgen_tui.flows.batch import BatchRequest, plan_loaded_jobs
    from imgen_tui.graphs.workflow_file import load_workflow, read_workflow_file

    info = json.loads(json.dumps(full_object_info()))
    info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] = list(CHECKPOINTS)
    loaded = load_workflow(read_workflow_file(FIXTURES / "sd15_editor_ui.json"), info)
    request = BatchRequest(
        workflow="sd15_editor_ui.json",
        prompts=["a fox", "a wolf"],
        count=2,
        seed_strategy="increment",
        sweeps={"cfg": "5, 7", "checkpoint": "*"},
    )
    specs = plan_loaded_jobs(request, loaded, info)
    assert len(specs) == 2 * 2 * 2 * 2
    order = [spec.checkpoint for spec in specs]
    assert sum(1 for a, b in itertools.pairwise(order) if a != b) == 1
    assert sorted({spec.graph["3"]["inputs"]["seed"] for spec in specs}) == [0, 1, 2, 3]


def test_a_sweep_name_matching_several_inputs_asks_for_node_input(tmp_path: Path) -> None:
    from imgen_tui.flows.batch import BatchRequest, plan_loaded_jobs
    from imgen_tui.graphs.workflow_file import load_workflow, read_workflow_file

    written = json.loads((FIXTURES / "written_graphs.json").read_text(encoding="utf-8"))
    path = tmp_path / "flux.json"
    path.write_text(json.dumps(written["written/flux_schnell_custom_sampler"]))
    loaded = load_workflow(read_workflow_file(path), full_object_info())
    request = BatchRequest(workflow=str(path), prompts=[""], sweeps={"prompt": "a, b"})
    with pytest.raises(
        ConfigError, match=r"--sweep prompt matches 2 parameters \(4.clip_l, 4.t5xxl\)"
    ):
        plan_loaded_jobs(request, loaded, full_object_info())
    one = BatchRequest(
        workflow=str(path), prompts=[""], seed_strategy="increment", sweeps={"4.t5xxl": "a, b"}
    )
    specs = plan_loaded_jobs(one, loaded, full_object_info())
    assert [spec.graph["4"]["inputs"]["t5xxl"] for spec in specs] == ["a", "b"]
    assert specs[0].family == "flux" and specs[0].checkpoint == "flux1-schnell.safetensors"
