"""The routing policy and batch variations, as pure functions."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.graphs import load_library, with_values
from imgen_tui.graphs.params import read_values
from imgen_tui.locations import bundled_dir
from imgen_tui.scheduler.jobs import JobSpec, Priority
from imgen_tui.scheduler.routing import NodeView, plan_tail, route
from imgen_tui.scheduler.variations import seeds, sweep, variations

LIBRARY = load_library([bundled_dir("workflows")])
SD15, SDXL = DEFAULT_MODELS["sd15"], DEFAULT_MODELS["sdxl"]


def job(name: str = "sd15_txt2img", **options: object) -> JobSpec:
    template = LIBRARY[name]
    graph = template.render({"prompt": "a red fox"}, DEFAULT_MODELS)
    return JobSpec.from_graph(graph, template.family, **options)


def farm(**overrides: dict[str, Any]) -> list[NodeView]:
    nodes: dict[str, dict[str, Any]] = {
        "gpu-premium": dict(
            tier="premium",
            capabilities={"sd15", "sdxl", "flux", "upscale"},
            max_resolution=1536,
            seconds_per_step={"sd15": 0.083, "sdxl": 0.4},
        ),
        "gpu-quality": dict(
            tier="quality",
            capabilities={"sd15", "sdxl"},
            max_resolution=1024,
            seconds_per_step={"sd15": 0.11, "sdxl": 0.55},
        ),
        "gpu-standard": dict(
            tier="standard",
            capabilities={"sd15", "sdxl"},
            max_resolution=1024,
            seconds_per_step={"sd15": 0.14, "sdxl": 0.7},
        ),
        "gpu-draft": dict(
            tier="draft", capabilities={"sd15"}, max_resolution=512, seconds_per_step={"sd15": 0.3}
        ),
    }
    views = []
    for node_id, fields in nodes.items():
        merged = {"state": "up", **fields, **overrides.get(node_id.replace("-", "_"), {})}
        merged["capabilities"] = frozenset(merged["capabilities"])
        views.append(NodeView(id=node_id, **merged))
    return views


def test_job_spec_reads_its_needs_from_the_graph() -> None:
    spec = job("sdxl_txt2img")
    assert (spec.width, spec.height, spec.steps, spec.checkpoint) == (1024, 1024, 25, SDXL)
    assert spec.needs == {"sdxl"} and spec.priority is Priority.INTERACTIVE


def test_sdxl_never_goes_to_the_sd15_only_draft_node() -> None:
    routing = route(job("sdxl_txt2img"), farm())
    assert "gpu-draft" not in [choice.node_id for choice in routing.ranked]
    assert routing.refused["gpu-draft"] == "gpu-draft: no sdxl"


def test_resolution_down_nodes_and_missing_models_are_refused_with_reasons() -> None:
    big = job("sd15_txt2img", width=768, height=768)
    nodes = farm(gpu_quality={"state": "down"}, gpu_standard={"checkpoints": frozenset({SDXL})})
    routing = route(big, nodes)
    assert routing.refused == {
        "gpu-quality": "gpu-quality: down",
        "gpu-standard": f"gpu-standard: {SD15} is not installed",
        "gpu-draft": "gpu-draft: 768 px is over its 512 px limit",
    }
    assert [c.node_id for c in routing.ranked] == ["gpu-premium"]


def test_nothing_eligible_is_explained_in_one_sentence() -> None:
    flux = job("flux_txt2img")
    routing = route(flux, farm(gpu_premium={"state": "down"}))
    assert routing.best is None
    assert routing.explain() == (
        "no node can run this job: gpu-premium: down; gpu-quality: no flux; "
        "gpu-standard: no flux; gpu-draft: no flux"
    )


def test_draft_work_goes_to_the_fastest_idle_node_and_load_shifts_it() -> None:
    draft = job("sd15_txt2img")
    assert route(draft, farm()).best.node_id == "gpu-premium"  # type: ignore[union-attr]
    busy = farm(gpu_premium={"busy_seconds": 5.0}, gpu_quality={"busy_seconds": 5.0})
    assert route(draft, busy).best.node_id == "gpu-standard"  # type: ignore[union-attr]


def test_model_affinity_prefers_the_node_with_the_checkpoint_loaded() -> None:
    sdxl = job("sdxl_txt2img")
    nodes = farm(
        gpu_premium={"loaded_checkpoint": SD15, "load_seconds": 8.0},
        gpu_quality={"loaded_checkpoint": SDXL},
    )
    assert route(sdxl, nodes).best.node_id == "gpu-quality"  # type: ignore[union-attr]
    assert route(sdxl, nodes, affinity=False).best.node_id == "gpu-premium"  # type: ignore[union-attr]


def test_quality_work_prefers_its_tier_and_overflows_when_it_is_swamped() -> None:
    polished = job("sdxl_txt2img", min_tier="premium")
    routing = route(polished, farm(gpu_premium={"busy_seconds": 5.0}))
    assert routing.best.node_id == "gpu-premium"  # type: ignore[union-attr]
    assert "overflow below premium" in routing.ranked[1].note
    swamped = route(polished, farm(gpu_premium={"busy_seconds": 60.0}))
    assert swamped.best.node_id == "gpu-quality"  # type: ignore[union-attr]


def test_a_degraded_node_counts_as_slower() -> None:
    draft = job("sd15_txt2img")
    routing = route(draft, farm(gpu_premium={"state": "degraded", "busy_seconds": 1.0}))
    assert routing.best.node_id == "gpu-quality"  # type: ignore[union-attr]


def test_seed_strategies() -> None:
    assert seeds("fixed", 3, 42) == [42, 42, 42]
    assert seeds("increment", 3, 2**32 - 2) == [2**32 - 2, 2**32 - 1, 0]
    drawn = seeds("random", 20, rng=random.Random(1))
    assert len(set(drawn)) == 20 and drawn == seeds("random", 20, rng=random.Random(1))


def test_prompt_cycling_and_a_sweep_with_the_checkpoint_outermost() -> None:
    jobs = variations(
        2,
        seed_strategy="increment",
        base_seed=10,
        prompts=["cat", "dog", "owl"],
        axes={"cfg": [5.0, 7.0], "checkpoint": ["a.safetensors", "b.safetensors"]},
    )
    assert [j["checkpoint"] for j in jobs] == ["a.safetensors"] * 4 + ["b.safetensors"] * 4
    assert [j["cfg"] for j in jobs[:4]] == [5.0, 5.0, 7.0, 7.0]
    assert [j["seed"] for j in jobs[:2]] == [10, 11] and [j["seed"] for j in jobs[4:6]] == [10, 11]
    assert [j["positive_prompt"] for j in jobs[:3]] == ["cat", "dog", "cat"]


def test_zipped_sweeps_pair_values_and_refuse_ragged_axes() -> None:
    assert sweep({"steps": [10, 20], "cfg": [5, 7]}, "zip") == [
        {"cfg": 5, "steps": 10},
        {"cfg": 7, "steps": 20},
    ]
    with pytest.raises(ValueError, match="equal length"):
        sweep({"steps": [10, 20], "cfg": [5]}, "zip")


@given(
    st.integers(1, 8), st.lists(st.sampled_from([4, 8, 16]), min_size=1, max_size=3, unique=True)
)
def test_every_variation_applies_to_a_real_graph(count: int, steps: list[int]) -> None:
    graph = LIBRARY["sd15_txt2img"].render({"prompt": "x"}, DEFAULT_MODELS)
    for values in variations(count, seed_strategy="increment", axes={"steps": steps}):
        applied = read_values(with_values(graph, values))
        assert applied["seed"] == values["seed"] and applied["steps"] == values["steps"]


def test_the_end_of_round_plan_honours_the_preferred_tier() -> None:
    # Equal speeds: only the tier can tell the plan to keep premium work on premium.
    same = {"seconds_per_step": {"sd15": 0.1, "sdxl": 0.5}}
    nodes = farm(gpu_premium=same, gpu_quality=same, gpu_standard=same)
    final = job("sdxl_txt2img", min_tier="premium")
    assert plan_tail([final], nodes) == {"gpu-premium": 0}
    # Three of them: the premium node takes two, one overflows to the next node.
    plan = plan_tail([final, final, final], nodes)
    assert plan["gpu-premium"] == 0 and len(plan) == 2
    assert plan_tail([job("sdxl_txt2img")], nodes) == {"gpu-premium": 0}  # ties: list order
