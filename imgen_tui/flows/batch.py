"""A headless batch: many jobs from one workflow, a prompt (or a CSV set) and a seed strategy."""

from __future__ import annotations

import asyncio
import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from imgen_tui.comfy.outputs import require_saved_output
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
from imgen_tui.graphs.graph import Graph, GraphError
from imgen_tui.graphs.inject import LoraSpec, inject_loras
from imgen_tui.graphs.params import extract_parameters, with_values
from imgen_tui.graphs.reference_pin import PinnedReference
from imgen_tui.graphs.references import with_local_references
from imgen_tui.graphs.templates import MODEL_PLACEHOLDERS, WorkflowLibrary, WorkflowTemplate
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

#: Placeholders the batch itself fills for every job.
_BATCH_FILLS = frozenset({"prompt", "seed"})
#: parameter kind -> (what it must be, smallest value): checked before anything is planned
_WHOLE_NUMBERS = {"width": 8, "height": 8, "steps": 1, "batch_size": 1, "seed": 0}
_NUMBERS = {"cfg", "denoise", "guidance", "strength_model", "strength_clip"}


@dataclass(frozen=True)
class BatchRequest:
    workflow: str
    prompts: Sequence[str]  # one for a plain batch, one per row for a CSV set
    count: int = 1  # images per prompt
    seed_strategy: SeedStrategy = "random"
    base_seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)  # negative, width, steps, ...
    time_limit: float = 300.0
    loras: Sequence[LoraSpec] = ()
    #: workflow files only: parameter -> values as typed ("4..8 step 2", "a, b", "*")
    sweeps: Mapping[str, str] = field(default_factory=dict)
    sweep_mode: SweepMode = "cartesian"
    #: (kind, local image file, strength) of each --ref, applied to every job
    references: Sequence[tuple[str, str, float]] = ()

    @property
    def title(self) -> str:
        first = self.prompts[0] if self.prompts else ""
        more = f" (+{len(self.prompts) - 1} more)" if len(self.prompts) > 1 else ""
        return f"{first[:60]}{more}"


def parse_lora(text: str) -> LoraSpec:
    """`NAME` or `NAME:STRENGTH` (strength 1 by default), as `--lora` takes it."""
    name, colon, strength_text = text.rpartition(":")
    if not colon:
        name, strength_text = text, ""
    name = name.strip()
    if not name:
        raise ConfigError(f"--lora {text!r} names no LoRA; give NAME or NAME:STRENGTH")
    if not strength_text.strip():
        return LoraSpec(name)
    try:
        strength = float(strength_text)
    except ValueError:
        if "." in strength_text or "/" in strength_text:  # a ':' inside the file's name
            return LoraSpec(text.strip())
        raise ConfigError(
            f"--lora {text!r}: the strength after ':' must be a number, e.g. {name}:0.8"
        ) from None
    if not math.isfinite(strength) or abs(strength) > 10:
        raise ConfigError(f"--lora {text!r}: the strength must be between -10 and 10")
    return LoraSpec(name, strength)


def plan_jobs(
    request: BatchRequest,
    library: WorkflowLibrary,
    models: Mapping[str, str],
    *,
    round_id: str | None = None,
    priority: Priority = Priority.BACKGROUND,
) -> list[JobSpec]:
    """Every job of the batch, in order: each prompt `count` times with its own seed.

    Every input problem is found here, before a session exists, and phrased as
    one `ConfigError` sentence naming the flag or placeholder to fix.
    """
    if request.count < 1:
        raise ConfigError("--count must be at least 1")
    if not math.isfinite(request.time_limit) or request.time_limit <= 0:
        raise ConfigError(
            f"--timeout must be a positive number of seconds (got {request.time_limit:g})"
        )
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
    _check_inputs(template, request.params, models, library)
    seed_list = seeds(
        request.seed_strategy, request.count * len(request.prompts), request.base_seed
    )
    specs: list[JobSpec] = []
    for index, seed in enumerate(seed_list):
        prompt = request.prompts[index // request.count]
        graph = _graph(template, {**request.params, "prompt": prompt, "seed": seed}, models)
        if request.loras:
            graph = _with_loras(template, graph, request.loras)
        graph, images, reference_needs = _with_references(
            graph, template.family, request.references
        )
        if index == 0:
            _check_values(template, graph)
            try:
                require_saved_output(graph)
            except GraphError as error:
                raise ConfigError(f"workflow {request.workflow}: {error}") from None
        specs.append(
            JobSpec.from_graph(
                graph,
                template.family,
                needs=frozenset(template.requires) | reference_needs,
                reference_images=images,
                priority=priority,
                round_id=round_id,
                time_limit=request.time_limit,
            )
        )
    return specs


def _with_references(
    graph: Graph, family: str, references: Sequence[tuple[str, str, float]]
) -> tuple[Graph, tuple[tuple[str, str], ...], frozenset[str]]:
    """The graph with every --ref injected, which LoadImage reads which file, and the needs."""
    pins = [
        PinnedReference(kind=kind, path=path, strength=strength)  # type: ignore[arg-type]
        for kind, path, strength in references
    ]
    try:
        return with_local_references(graph, family, pins)
    except GraphError as error:
        raise ConfigError(f"--ref: {error}") from None


def _check_inputs(
    template: WorkflowTemplate,
    params: Mapping[str, Any],
    models: Mapping[str, str],
    library: WorkflowLibrary,
) -> None:
    """Every placeholder has a value: from --param, the manifest or the farm's models."""
    from_models = {
        name for name, key in MODEL_PLACEHOLDERS.items() if (key or template.family) in models
    }
    missing = sorted(
        template.placeholders
        - template.defaults.keys()
        - params.keys()
        - _BATCH_FILLS
        - from_models
    )
    if not missing:
        return
    flags = " ".join(f"--param {name}=VALUE" for name in missing)
    if template.task != "txt2img" and "image" in missing:
        txt2img = ", ".join(n for n in library.names() if library[n].task == "txt2img")
        raise ConfigError(
            f"workflow {template.name} is {template.task} and needs a source image; a batch "
            f"makes pictures from prompts, so choose a txt2img workflow ({txt2img}), or give "
            f"{flags} with files already in the nodes' input folders"
        )
    models_hint = ""
    if set(missing) & MODEL_PLACEHOLDERS.keys():
        models_hint = (
            f" (family {template.family} has no entry in the farm config's models: section)"
        )
    raise ConfigError(
        f"workflow {template.name} needs a value for {', '.join(missing)}{models_hint}; "
        f"give {flags} or a default in {template.source.parent / 'manifest.yaml'}"
    )


def _graph(
    template: WorkflowTemplate, values: Mapping[str, Any], models: Mapping[str, str]
) -> Graph:
    try:
        return template.render(values, models)
    except GraphError as error:
        raise ConfigError(f"{error}; give it with --param NAME=VALUE") from None


def _with_loras(template: WorkflowTemplate, graph: Graph, loras: Sequence[LoraSpec]) -> Graph:
    try:
        return inject_loras(graph, loras)
    except GraphError as error:
        raise ConfigError(f"--lora cannot be used with workflow {template.name}: {error}") from None


def _check_values(template: WorkflowTemplate, graph: Graph) -> None:
    """Sizes, steps and seeds are whole numbers, cfg and denoise numbers, before any job."""
    for parameter in extract_parameters(graph):
        value, kind = parameter.value, parameter.kind
        where = f"workflow {template.name}: {kind} (node {parameter.node_id} {parameter.input})"
        if kind in _WHOLE_NUMBERS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{where} must be a whole number (got {value!r})")
            if value < _WHOLE_NUMBERS[kind]:
                raise ConfigError(
                    f"{where} must be at least {_WHOLE_NUMBERS[kind]} (got {value!r})"
                )
        elif kind in _NUMBERS and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"{where} must be a number (got {value!r})")


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
        referenced, images, reference_needs = _with_references(
            with_values(swept, values), loaded.info.family, request.references
        )
        specs.append(
            JobSpec.from_graph(
                referenced,
                loaded.info.family,
                needs=loaded.info.needs | reference_needs,
                reference_images=images,
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
