"""Variations of any workflow from its typed parameters (seed 003, issue 18's form).

A plan is: `count` images per point, a seed strategy, prompts cycled one per
line, and sweeps over any numeric or combo parameter, combined as a
cartesian product or zipped. Jobs are ordered so a model switch happens as
rarely as possible: every job that needs the same models (checkpoint, LoRA,
any loader's file) is next to the others, and the model already loaded comes
first. Before anything runs, the plan says how many jobs it is and how long
the farm would take, by the same routing estimate the scheduler uses.
"""

from __future__ import annotations

import copy
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from imgen_tui.config import FarmConfig
from imgen_tui.graphs.graph import Graph
from imgen_tui.graphs.infer import MODEL_SUFFIXES
from imgen_tui.graphs.typed_params import TypedParameter
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.routing import NodeView, route
from imgen_tui.scheduler.variations import SeedStrategy, seeds

SweepMode = Literal["cartesian", "zip"]
MODEL_KINDS = frozenset({"checkpoint", "lora_name", "upscale_model", "clip_name"})


class VariationError(ValueError):
    """A plan that cannot be made; the message says which parameter and why."""


@dataclass(frozen=True)
class Sweep:
    """One axis: the parameter it changes and the values it takes, in order."""

    parameter: TypedParameter
    values: tuple[Any, ...]

    @property
    def label(self) -> str:
        return self.parameter.role or f"{self.parameter.node}.{self.parameter.input}"

    @property
    def changes_models(self) -> bool:
        """Switching its value makes a node load another file (the expensive axis)."""
        parameter = self.parameter
        if parameter.table_kind in MODEL_KINDS or parameter.role in ("checkpoint", "lora"):
            return True
        return parameter.kind == "combo" and any(
            isinstance(value, str) and value.lower().endswith(MODEL_SUFFIXES)
            for value in self.values
        )


@dataclass(frozen=True)
class VariationPlan:
    count: int = 1
    seed: SeedStrategy = "random"
    base_seed: int = 0
    prompts: tuple[str, ...] = ()
    sweeps: tuple[Sweep, ...] = ()
    mode: SweepMode = "cartesian"


@dataclass(frozen=True)
class Variation:
    """One job's values: (node, input) -> value, plus its seed and prompt."""

    values: Mapping[tuple[str, str], Any]
    seed: int | None
    prompt: str | None
    models: tuple[Any, ...] = ()  # the model-changing values, to count switches


@dataclass(frozen=True)
class FarmEstimate:
    seconds: float
    jobs_per_node: dict[str, int] = field(default_factory=dict)
    unrunnable: int = 0
    reason: str = ""


def prompt_lines(text: str) -> tuple[str, ...]:
    """Prompts to cycle through, one per line; blank lines are not prompts."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def sweep_values(parameter: TypedParameter, text: str) -> tuple[Any, ...]:
    """Values from what a person types: `a, b, c`, `1..10` (step 1), `0.5..1 step 0.25`, `*`.

    `*` is every choice of a combo. Each value is checked against the
    parameter's spec, so a sweep never posts a value the node would refuse.
    """
    text = text.strip()
    where = f"{parameter.input} of node {parameter.node}"
    if not text:
        raise VariationError(f"the sweep over {where} has no values")
    if text == "*":
        if parameter.kind != "combo" or not parameter.options:
            raise VariationError(
                f"'*' sweeps every choice of a combo; {where} is a {parameter.kind}"
            )
        return tuple(parameter.options)
    if ".." in text and parameter.kind in ("int", "float"):
        values = _range_values(parameter, text, where)
    else:
        values = tuple(_typed_value(parameter, item.strip()) for item in text.split(","))
    for value in values:
        problem = parameter.check(value)
        if problem is not None:
            raise VariationError(problem)
    return values


def plan_variations(
    plan: VariationPlan,
    *,
    loaded_models: Sequence[Any] = (),
    rng: random.Random | None = None,
) -> list[Variation]:
    """Every job of the plan, grouped so consecutive jobs share their models.

    Within a sweep point the `count` jobs get the same seeds as every other
    point, so points differ only in the swept values. Prompts cycle over the
    jobs of each point.
    """
    if plan.count < 1:
        raise VariationError("a batch needs at least one image per point (count >= 1)")
    points = _points(plan.sweeps, plan.mode)
    seed_list = seeds(plan.seed, plan.count, plan.base_seed, rng)
    expensive = [index for index, sweep in enumerate(plan.sweeps) if sweep.changes_models]
    jobs: list[Variation] = []
    for point in points:
        values = {
            (sweep.parameter.node, sweep.parameter.input): value
            for sweep, value in zip(plan.sweeps, point, strict=True)
        }
        models = tuple(point[index] for index in expensive)
        for index in range(plan.count):
            prompt = plan.prompts[index % len(plan.prompts)] if plan.prompts else None
            jobs.append(Variation(values, seed_list[index], prompt, models))
    return order_for_fewest_switches(jobs, loaded_models)


def order_for_fewest_switches(
    jobs: Sequence[Variation], loaded_models: Sequence[Any] = ()
) -> list[Variation]:
    """Jobs with the same models next to each other (stable), the loaded models first."""
    first_seen: dict[tuple[Any, ...], int] = {}
    for job in jobs:
        first_seen.setdefault(job.models, len(first_seen))
    loaded = tuple(loaded_models)

    def key(job: Variation) -> tuple[int, int]:
        return (0 if loaded and job.models == loaded else 1, first_seen[job.models])

    return sorted(jobs, key=key)


def model_switches(jobs: Sequence[Variation]) -> int:
    """How often consecutive jobs need different models."""
    return sum(1 for before, after in itertools.pairwise(jobs) if before.models != after.models)


def apply_variation(graph: Graph, parameters: Sequence[TypedParameter], job: Variation) -> Graph:
    """The graph of one job: swept values, then the seed and the prompt where the roles are."""
    result = copy.deepcopy(graph)
    for (node_id, input_name), value in job.values.items():
        result[node_id]["inputs"][input_name] = value
    for parameter in parameters:
        if job.seed is not None and parameter.role == "seed":
            result[parameter.node]["inputs"][parameter.input] = job.seed
        if job.prompt is not None and parameter.role == "prompt":
            result[parameter.node]["inputs"][parameter.input] = job.prompt
    return result


def estimate_farm_seconds(jobs: Sequence[JobSpec], farm: FarmConfig) -> FarmEstimate:
    """How long the farm would take, placing each job where routing says it finishes first.

    The nodes' configured speeds (what the scheduler starts from before it has
    learnt better) and checkpoint load times are used; jobs no node can run
    are counted apart with the reason routing gives.
    """
    views = [
        NodeView(
            id=node.id,
            tier=node.tier,
            state="up",
            capabilities=frozenset(node.capabilities),
            max_resolution=node.max_resolution,
            seconds_per_step=dict(node.seconds_per_step),
            load_seconds=node.load_seconds,
        )
        for node in farm.nodes
    ]
    return estimate_on_views(jobs, views)


def estimate_on_views(jobs: Sequence[JobSpec], views: Sequence[NodeView]) -> FarmEstimate:
    """The same estimate from the scheduler's own node views: learned speeds, current load."""
    placed = list(views)
    counts: dict[str, int] = {view.id: 0 for view in placed}
    unrunnable, reason = 0, ""
    for job in jobs:
        routing = route(job, placed)
        best = routing.best
        if best is None:
            unrunnable += 1
            reason = reason or routing.explain()
            continue
        index = next(i for i, view in enumerate(placed) if view.id == best.node_id)
        placed[index] = replace(
            placed[index],
            busy_seconds=best.finish_in,
            loaded_checkpoint=job.checkpoint or placed[index].loaded_checkpoint,
        )
        counts[best.node_id] += 1
    seconds = max((view.busy_seconds for view in placed), default=0.0)
    return FarmEstimate(seconds, counts, unrunnable, reason)


# -- the pieces ----------------------------------------------------------------------------


def _points(sweeps: Sequence[Sweep], mode: SweepMode) -> list[tuple[Any, ...]]:
    if not sweeps:
        return [()]
    if mode == "zip":
        lengths = {len(sweep.values) for sweep in sweeps}
        if len(lengths) > 1:
            detail = ", ".join(f"{sweep.label} has {len(sweep.values)}" for sweep in sweeps)
            raise VariationError(f"a zipped sweep needs axes of equal length ({detail})")
        return list(zip(*(sweep.values for sweep in sweeps), strict=True))
    return list(itertools.product(*(sweep.values for sweep in sweeps)))


def _range_values(parameter: TypedParameter, text: str, where: str) -> tuple[Any, ...]:
    span, _, step_text = text.partition("step")
    low_text, _, high_text = span.partition("..")
    try:
        low, high = float(low_text), float(high_text)
        step = float(step_text) if step_text.strip() else (parameter.step or 1.0)
    except ValueError:
        raise VariationError(
            f"the sweep over {where} is not 'LOW..HIGH' or 'LOW..HIGH step S': {text!r}"
        ) from None
    if step <= 0 or high < low:
        raise VariationError(f"the sweep over {where} needs LOW <= HIGH and a step above 0")
    count = round((high - low) / step + 1e-9) + 1
    if count > 1000:
        raise VariationError(f"the sweep over {where} would make {count} values; 1000 at most")
    values = [low + index * step for index in range(count)]
    if parameter.kind == "int":
        return tuple(round(value) for value in values)
    return tuple(round(value, 10) for value in values)


def _typed_value(parameter: TypedParameter, text: str) -> Any:
    if parameter.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise VariationError(
                f"{parameter.input} of node {parameter.node} takes whole numbers, not {text!r}"
            ) from None
    if parameter.kind == "float":
        try:
            return float(text)
        except ValueError:
            raise VariationError(
                f"{parameter.input} of node {parameter.node} takes numbers, not {text!r}"
            ) from None
    if parameter.kind == "boolean":
        return text.lower() in ("true", "yes", "1", "on")
    for option in parameter.options:  # a combo of numbers (RIFE's scale_factor) keeps its type
        if str(option) == text:
            return option
    return text


def describe_estimate(jobs: int, estimate: FarmEstimate) -> str:
    """One line for before a run: how many jobs and how long the farm would take."""
    minutes, seconds = divmod(round(estimate.seconds), 60)
    took = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
    spread = ", ".join(f"{node} {count}" for node, count in estimate.jobs_per_node.items() if count)
    line = f"{jobs} jobs, about {took} on the farm ({spread or 'no node'})"
    if estimate.unrunnable:
        line += f"; {estimate.unrunnable} cannot run: {estimate.reason}"
    return line
