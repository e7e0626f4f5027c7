"""The LoRA explorer's state machine without a terminal: sweeps, A/B grids, refine, resume."""

from __future__ import annotations

import random

import pytest

from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.flows.explorer import BASELINE, ExplorerError, LoraExplorer
from imgen_tui.flows.explorer_config import ExplorerConfig
from imgen_tui.flows.lora_catalog import LoraEntry
from imgen_tui.flows.stacks import StackLora
from imgen_tui.graphs import load_library
from imgen_tui.graphs.graph import iter_nodes
from imgen_tui.locations import bundled_dir

LIBRARY = load_library([bundled_dir("workflows")])
DETAIL, GRAIN, WATER = (
    "detail-tweaker.safetensors",
    "film-grain.safetensors",
    "watercolor-style.safetensors",
)
CATALOG = [
    LoraEntry(DETAIL, "sd15", ("detailed", "sharp focus"), 10, ("premium", "draft"), ()),
    LoraEntry(GRAIN, None, (), 10, ("premium",), ("draft",)),
    LoraEntry(WATER, "sdxl", ("wcstyle",), 10, ("draft",), ("premium",)),
]


def explorer(**config: object) -> LoraExplorer:
    settings = ExplorerConfig.model_validate({"prompt": "a heron", **config})
    return LoraExplorer(settings, LIBRARY, DEFAULT_MODELS, catalog=CATALOG, rng=random.Random(3))


def loras_in(spec_graph: object) -> list[tuple[str, float, float]]:
    return [
        (i["lora_name"], i["strength_model"], i["strength_clip"])
        for _, kind, i in iter_nodes(spec_graph)
        if kind == "LoraLoader"
    ]


def test_a_showcase_sweeps_strengths_on_fixed_seeds_beside_the_baseline() -> None:
    flow = explorer(strengths=[0.4, 0.7, 1.0], seeds=[11, 22])  # 0 not listed: baseline anyway
    specs = flow.showcase(DETAIL)
    made = flow.current
    assert made is not None and len(made.cells) == len(specs) == 8
    plans = [flow.plan_of(made, cell) for cell in made.cells]
    assert [p.label for p in plans] == [BASELINE] * 2 + ["detail-tweaker 0.4"] * 2 + [
        "detail-tweaker 0.7"
    ] * 2 + ["detail-tweaker 1"] * 2
    assert [p.seed for p in plans] == [11, 22] * 4  # every strength on the same seeds
    assert loras_in(specs[0].graph) == [] and specs[0].lora_stack == ()
    assert loras_in(specs[2].graph) == [(DETAIL, 0.4, 0.4)]
    assert specs[7].loras == frozenset({DETAIL})
    # stack by stack, seeds together: what LoRA-stack affinity keeps on one GPU
    stacks = [s.lora_stack for s in specs]
    assert stacks[2] == stacks[3] != stacks[4]


def test_bad_input_says_what_to_do() -> None:
    flow = explorer()
    with pytest.raises(ExplorerError, match=r"no node has a LoRA named 'nope\.safetensors'"):
        flow.showcase("nope.safetensors")
    with pytest.raises(ExplorerError, match="mark two LoRAs first"):
        flow.ab()
    flow.prompt = "  "
    with pytest.raises(ExplorerError, match="The prompt is empty"):
        flow.showcase(DETAIL)
    assert flow.current is None  # nothing half-made


def test_ab_makes_a_b_both_and_neither_on_the_same_seeds() -> None:
    flow = explorer(seeds=[5, 6])
    assert flow.mark(DETAIL) == "A"
    flow.nudge("model", -1)
    assert flow.mark(DETAIL) == "B"  # one LoRA at two strengths
    flow.ab()
    made = flow.current
    assert made is not None
    labels = [flow.plan_of(made, c).label for c in made.cells]
    assert (
        labels == ["A detail-tweaker 0.8"] * 2 + ["B detail-tweaker 0.7/0.8"] * 2 + ["neither"] * 2
    )  # no A+B of one file with itself
    flow.mark(GRAIN)  # a third mark starts a new pair
    flow.mark(DETAIL)
    flow.ab()
    made = flow.current
    assert made is not None
    labels = [flow.plan_of(made, c).label for c in made.cells]
    assert labels[4:6] == ["A+B", "A+B"] and labels[-2:] == ["neither", "neither"]
    assert {c.seed for c in made.cells} == {5, 6}


def test_a_stack_no_node_has_in_full_is_refused_with_who_lacks_what() -> None:
    flow = explorer()
    flow.mark(GRAIN)
    flow.mark(WATER)
    with pytest.raises(ExplorerError) as refused:
        flow.ab()
    assert "premium: no watercolor-style" in str(refused.value)
    assert "draft: no film-grain" in str(refused.value)
    flow.showcase(GRAIN)
    assert flow.notice == "not on draft: no film-grain"


def test_refine_keeps_the_picks_stack_and_the_feedback_can_drop_a_lora() -> None:
    flow = explorer(seeds=[1])
    flow.mark(DETAIL)
    flow.mark(GRAIN)
    flow.ab()
    made = flow.current
    assert made is not None
    both = made.cells[2]  # A+B
    both.verdict = "picked"
    stack, dropped = flow.refine_stack(None, "more fog")
    assert [lora.name for lora in stack] == [DETAIL, GRAIN] and dropped == []
    stack, dropped = flow.refine_stack(None, "more fog, without film-grain")
    assert stack == (StackLora(DETAIL, 0.8, 0.8),) and dropped == ["film-grain"]
    flow.insert_trigger_words(DETAIL)
    assert flow.prompt == "detailed, sharp focus, a heron"
    assert flow.trigger_words(stack) == ["detailed", "sharp focus"]
    specs = flow.refined("detailed, sharp focus, a heron, fog", "", stack)
    refined = flow.current
    assert refined is not None and refined.recipe.name == "refine"
    assert [loras_in(s.graph) for s in specs] == [[(DETAIL, 0.8, 0.8)], []]  # and the baseline


def test_again_keeps_the_plan_and_locked_seeds_and_can_be_undone() -> None:
    flow = explorer(seeds=[7, 8], strengths=[0, 1.0])
    flow.showcase(DETAIL)
    first = flow.current
    assert first is not None
    first.cells[0].locked = True  # seed 7 locked
    specs = flow.again()
    fresh = flow.current
    assert fresh is not None and fresh is not first and len(specs) == 4
    plans = [flow.plan_of(fresh, c) for c in fresh.cells]
    assert [p.label for p in plans] == [BASELINE, BASELINE, "detail-tweaker 1", "detail-tweaker 1"]
    assert plans[0].seed == 7 == plans[2].seed and plans[1].seed == plans[3].seed != 8
    assert flow.undo_again() is fresh and flow.current is first


def test_state_round_trips() -> None:
    flow = explorer()
    flow.mark(DETAIL)
    flow.nudge("clip", 1)
    flow.cycle_family()
    flow.roll_seeds()
    again = explorer()
    again.restore(flow.state())
    assert again.snapshot() == flow.snapshot()
    assert again.family == "sdxl" and again.marks == [StackLora(DETAIL, 0.8, 0.8)]
