"""A headless batch: many jobs from one workflow, a prompt (or a CSV set) and a seed strategy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgen_tui.graphs.graph import Graph, GraphError
from imgen_tui.graphs.references import (
    Reference,
    auto_controlnets,
    capability_for,
    inject_references,
)
from imgen_tui.graphs.templates import WorkflowLibrary
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
    #: (kind, local image file, strength) of each --ref, applied to every job
    references: Sequence[tuple[str, str, float]] = ()

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
        graph, images = _with_references(graph, template.family, request.references)
        specs.append(
            JobSpec.from_graph(
                graph,
                template.family,
                needs=frozenset(template.requires)
                | frozenset(capability_for(kind) for kind, _, _ in request.references),
                reference_images=images,
                priority=priority,
                round_id=round_id,
                time_limit=request.time_limit,
            )
        )
    return specs


def _with_references(
    graph: Graph, family: str, references: Sequence[tuple[str, str, float]]
) -> tuple[Graph, tuple[tuple[str, str], ...]]:
    """The graph with every --ref injected, and which LoadImage reads which local file."""
    if not references:
        return graph, ()
    refs = [
        Reference(kind, Path(path).name, strength)  # type: ignore[arg-type]
        for kind, path, strength in references
    ]
    before = set(graph)
    try:
        injected = inject_references(graph, refs, auto_controlnets(family))
    except GraphError as error:
        raise ConfigError(f"--ref: {error}") from None
    loads = [
        node_id
        for node_id in sorted(set(injected) - before, key=int)
        if injected[node_id]["class_type"] == "LoadImage"
    ]
    return injected, tuple(
        (node_id, path) for node_id, (_, path, _) in zip(loads, references, strict=True)
    )
