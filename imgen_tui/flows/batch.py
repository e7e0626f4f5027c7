"""A headless batch: many jobs from one workflow, a prompt (or a CSV set) and a seed strategy."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from imgen_tui.config import FarmConfig
from imgen_tui.flows.farm_info import farm_object_info
from imgen_tui.flows.variations import (
    Sweep,
    SweepMode,
    Variation,
    VariationError,
    VariationPlan,
    order_for_fewest_switches,
    plan_variations,
    sweep_values,
)
from imgen_tui.graphs.graph import Graph
from imgen_tui.graphs.params import extract_parameters, with_values
from imgen_tui.graphs.templates import WorkflowLibrary
from imgen_tui.graphs.typed_params import TypedParameter, typed_parameters
from imgen_tui.graphs.workflow_file import (
    WORKFLOW_SUFFIXES,
    LoadedWorkflow,
    load_workflow,
    read_workflow_file,
)
from imgen_tui.scheduler.jobs import JobSpec, Priority
from imgen_tui.scheduler.variations import SeedStrategy, seeds
from imgen_tui.yamlfile import ConfigError


@dataclass(frozen=True)
class BatchRequest:
    workflow: str
    prompts: Sequence[str]  # one for a plain batch, one per row for a CSV set
    count: int = 1  # images per prompt
    seed_strategy: SeedStrategy = "random"
    base_seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)  # negative, width, steps, ...
    time_limit: float = 300.0
    #: workflow files only: parameter -> values as typed ("4..8 step 2", "a, b", "*")
    sweeps: Mapping[str, str] = field(default_factory=dict)
    sweep_mode: SweepMode = "cartesian"

    @property
    def title(self) -> str:
        first = self.prompts[0] if self.prompts else ""
        more = f" (+{len(self.prompts) - 1} more)" if len(self.prompts) > 1 else ""
        return f"{first[:60]}{more}"


def plan_jobs(
    request: BatchRequest,
    library: WorkflowLibrary,
    models: Mapping[str, str],
    *,
    round_id: str | None = None,
    priority: Priority = Priority.BACKGROUND,
) -> list[JobSpec]:
    """Every job of the batch, in order: each prompt `count` times with its own seed."""
    if request.count < 1:
        raise ConfigError("--count must be at least 1")
    if request.sweeps:
        raise ConfigError(
            f"--sweep needs a workflow file (--workflow path/to/file.json); "
            f"template {request.workflow} takes --param"
        )
    if not request.prompts or not all(p.strip() for p in request.prompts):
        raise ConfigError("a batch needs a prompt: give --prompt or a --set with a --template")
    if request.seed_strategy == "fixed" and request.count > 1:
        raise ConfigError(
            f"--seed fixed with --count {request.count} would make the same picture "
            f"{request.count} times (ComfyUI answers an identical graph from its cache); "
            f"use --seed increment or random"
        )
    try:
        template = library[request.workflow]
    except KeyError as error:
        raise ConfigError(str(error.args[0])) from None
    needs_input = template.required - {"prompt"}
    if needs_input:
        raise ConfigError(
            f"workflow {request.workflow} needs {', '.join(sorted(needs_input))}; "
            f"a batch makes pictures from prompts, so choose a txt2img workflow "
            f"({', '.join(n for n in library.names() if 'txt2img' in n)})"
        )
    seed_list = seeds(
        request.seed_strategy, request.count * len(request.prompts), request.base_seed
    )
    specs: list[JobSpec] = []
    for index, seed in enumerate(seed_list):
        prompt = request.prompts[index // request.count]
        graph = template.render({**request.params, "prompt": prompt, "seed": seed}, models)
        specs.append(
            JobSpec.from_graph(
                graph,
                template.family,
                needs=frozenset(template.requires),
                priority=priority,
                round_id=round_id,
                time_limit=request.time_limit,
            )
        )
    return specs


# -- any workflow file (UI or API format), not a template -------------------------------------

#: names a person uses on the command line -> the params.py kind they mean
PARAMETER_ALIASES = {
    "prompt": "positive_prompt",
    "negative": "negative_prompt",
    "sampler": "sampler_name",
    "lora": "lora_name",
}


def is_workflow_file(workflow: str) -> bool:
    """`--workflow` names a file (a path or a .json/.png name), not a template."""
    return Path(workflow).suffix.lower() in WORKFLOW_SUFFIXES or "/" in workflow


async def plan_file_batch(
    request: BatchRequest,
    farm: FarmConfig,
    models: Mapping[str, str],
    *,
    round_id: str | None = None,
    priority: Priority = Priority.BACKGROUND,
) -> list[JobSpec]:
    """Read the file, convert it with the farm's /object_info if it is UI format, plan the jobs."""
    source = await asyncio.to_thread(read_workflow_file, Path(request.workflow))
    object_info = (await farm_object_info(farm)).merged()
    if object_info is None and source.format == "ui":
        raise ConfigError(
            f"{source.path}: is a UI-format workflow and no node answered /object_info, "
            "which converting it needs; check that the nodes are up (imgen-tui nodes)"
        )
    loaded = await asyncio.to_thread(load_workflow, source, object_info, models)
    return plan_loaded_jobs(request, loaded, object_info, round_id=round_id, priority=priority)


def plan_loaded_jobs(
    request: BatchRequest,
    loaded: LoadedWorkflow,
    object_info: Mapping[str, Any] | None,
    *,
    round_id: str | None = None,
    priority: Priority = Priority.BACKGROUND,
) -> list[JobSpec]:
    """Every job: the file's graph with the batch's prompt, seed and parameters written in.

    Without `--prompt` the workflow keeps its own prompt. Parameters are named
    by kind (`steps`, `cfg`, `sampler`...) or as `NODE.INPUT`; each value is
    checked against the node's /object_info spec before anything runs.
    """
    loaded.require_runnable()
    if request.count < 1:
        raise ConfigError("--count must be at least 1")
    where = loaded.source.path
    graph = _with_parameters(loaded, object_info, request.params)
    kinds = {parameter.kind for parameter in extract_parameters(graph)}
    prompts = [prompt for prompt in request.prompts if prompt.strip()]
    if prompts and not kinds & {"positive_prompt", "prompt"}:
        raise ConfigError(f"{where}: has no prompt text to set; leave out --prompt")
    has_seed = "seed" in kinds
    if request.count > 1 and not has_seed:
        raise ConfigError(
            f"{where}: has no seed to vary, so --count {request.count} would make the same "
            "picture again; use --count 1"
        )
    if request.seed_strategy == "fixed" and request.count > 1:
        raise ConfigError(
            f"--seed fixed with --count {request.count} would make the same picture "
            f"{request.count} times; use --seed increment or random"
        )
    typed = typed_parameters(graph, object_info, loaded.controls)
    sweeps = tuple(Sweep(_one_target(loaded, typed, name), ()) for name in request.sweeps)
    try:
        sweeps = tuple(
            Sweep(sweep.parameter, sweep_values(sweep.parameter, text))
            for sweep, text in zip(sweeps, request.sweeps.values(), strict=True)
        )
        rounds: list[str | None] = [*prompts] or [None]
        jobs: list[Variation] = []
        for index, prompt in enumerate(rounds):
            plan = VariationPlan(
                count=request.count,
                seed=request.seed_strategy,
                base_seed=request.base_seed + index * request.count,
                sweeps=sweeps,
                mode=request.sweep_mode,
            )
            jobs += [replace(job, prompt=prompt) for job in plan_variations(plan)]
    except VariationError as error:
        raise ConfigError(f"{where}: {error}") from None
    specs: list[JobSpec] = []
    for job in order_for_fewest_switches(jobs):
        swept = copy.deepcopy(graph)
        for (node_id, input_name), value in job.values.items():
            swept[node_id]["inputs"][input_name] = value
        values: dict[str, Any] = {"seed": job.seed} if has_seed else {}
        if job.prompt is not None:
            values["positive_prompt"] = job.prompt
            if "positive_prompt" not in kinds:
                values["prompt"] = job.prompt
        specs.append(
            JobSpec.from_graph(
                with_values(swept, values),
                loaded.info.family,
                needs=loaded.info.needs,
                priority=priority,
                round_id=round_id,
                time_limit=request.time_limit,
            )
        )
    return specs


def _one_target(loaded: LoadedWorkflow, typed: list[TypedParameter], name: str) -> TypedParameter:
    targets = {(p.node, p.input): p for p in _targets(loaded, typed, name)}
    if len(targets) > 1:
        where = ", ".join(f"{node}.{input_name}" for node, input_name in targets)
        raise ConfigError(
            f"{loaded.source.path}: --sweep {name} matches {len(targets)} parameters ({where}); "
            "name one as NODE.INPUT"
        )
    return next(iter(targets.values()))


def _with_parameters(
    loaded: LoadedWorkflow, object_info: Mapping[str, Any] | None, params: Mapping[str, Any]
) -> Graph:
    typed = typed_parameters(loaded.graph, object_info, loaded.controls)
    graph = copy.deepcopy(loaded.graph)
    for name, value in params.items():
        for target in _targets(loaded, typed, name):
            problem = target.check(value)
            if problem is not None:
                raise ConfigError(f"{loaded.source.path}: {problem}")
            graph[target.node]["inputs"][target.input] = value
    return graph


def _targets(
    loaded: LoadedWorkflow, typed: list[TypedParameter], name: str
) -> list[TypedParameter]:
    """The parameters a CLI name means: a kind or role (`steps`, `sampler`) or `NODE.INPUT`."""
    node_id, dot, input_name = name.partition(".")
    if dot:
        targets = [p for p in typed if p.node == node_id and p.input == input_name]
    else:
        kind = PARAMETER_ALIASES.get(name, name)
        targets = [p for p in typed if kind in (p.table_kind, p.role)]
    if not targets:
        known = sorted({p.role for p in typed if p.role} | {f"{p.node}.{p.input}" for p in typed})
        raise ConfigError(
            f"{loaded.source.path}: has no parameter {name!r}; "
            f"it has {', '.join(known[:12])}{', ...' if len(known) > 12 else ''}"
        )
    return targets
