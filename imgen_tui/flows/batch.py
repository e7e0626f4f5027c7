"""A headless batch: many jobs from one workflow, a prompt (or a CSV set) and a seed strategy."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imgen_tui.comfy.outputs import require_saved_output
from imgen_tui.graphs.graph import Graph, GraphError
from imgen_tui.graphs.inject import LoraSpec, inject_loras
from imgen_tui.graphs.params import extract_parameters
from imgen_tui.graphs.templates import MODEL_PLACEHOLDERS, WorkflowLibrary, WorkflowTemplate
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
                needs=frozenset(template.requires),
                priority=priority,
                round_id=round_id,
                time_limit=request.time_limit,
            )
        )
    return specs


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
