"""The workflow browser's cards: every workflow the app can see, and where it can run.

A card is what seed 004 shows for a workflow — name, description, category
(the folder it came from), input and output media, the model files it needs
(with sizes where a node's `/experiment/models` gives them), an estimated
time, and Ready / Missing N per node — plus what running it needs: the API
graph (a template rendered with its defaults, a UI file converted) and the
seed controls the saved workflow asked for. Building the cards reads and
converts files, so `collect_cards` runs in a thread; asking the nodes is
async (`farm_object_info`, `model_sizes`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from imgen_tui.config import FarmConfig
from imgen_tui.flows.farm_info import FarmObjectInfo
from imgen_tui.flows.rounds import SOURCE_PLACEHOLDER
from imgen_tui.graphs.graph import Graph, GraphError
from imgen_tui.graphs.infer import (
    ModelRef,
    Readiness,
    WorkflowInfo,
    infer,
    readiness,
    with_manifest,
)
from imgen_tui.graphs.templates import WorkflowTemplate, load_library
from imgen_tui.graphs.workflow_file import (
    WorkflowFileError,
    load_workflow,
    read_workflow_file,
    workflow_files,
)
from imgen_tui.yamlfile import ConfigError

#: what a template's required placeholders get before the form fills them
TEMPLATE_STARTING_VALUES = {"prompt": "", "negative": "", "image": SOURCE_PLACEHOLDER}
SIZE_TIMEOUT = 3.0  # seconds: sizes are a nicety, a slow node must not hold the browser


@dataclass(frozen=True)
class NodeStatus:
    """One node's verdict on a card: its readiness, or why it could not be asked."""

    node_id: str
    readiness: Readiness | None
    unreachable: str | None = None

    @property
    def ready(self) -> bool:
        return self.readiness is not None and self.readiness.ready

    def label(self) -> str:
        if self.readiness is None:
            return "unreachable"
        return "Ready" if self.readiness.ready else f"Missing {self.readiness.missing_count}"

    def detail(self) -> str:
        """Which files and which classes the node lacks (empty when Ready)."""
        if self.readiness is None:
            return self.unreachable or ""
        parts = [f"class {name}" for name in self.readiness.missing_classes]
        parts += [f"{ref.folder}/{ref.name}" for ref in self.readiness.missing_models]
        return ", ".join(parts)


@dataclass(frozen=True)
class WorkflowCard:
    key: str  # what values are remembered under: the category and the name
    name: str
    category: str
    format: str  # template | api | ui
    path: Path | None
    description: str = ""
    info: WorkflowInfo | None = None
    graph: Graph = field(default_factory=dict, repr=False)
    controls: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    missing_classes: tuple[str, ...] = ()
    statuses: tuple[NodeStatus, ...] = ()
    error: str | None = None

    # -- what the filters read (flows/workflow_filter.WorkflowFacts) --------------------------

    @property
    def family(self) -> str:
        return self.info.family if self.info else ""

    @property
    def task(self) -> str:
        return self.info.task if self.info else ""

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(self.info.inputs) if self.info else ()

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(self.info.outputs) if self.info else ()

    @property
    def models(self) -> tuple[ModelRef, ...]:
        return self.info.models if self.info else ()

    @property
    def ready_nodes(self) -> list[str]:
        return [status.node_id for status in self.statuses if status.ready]

    def runnable_problem(self) -> str | None:
        """Why this card cannot be run at all (one sentence), or None."""
        if self.error is not None:
            return self.error
        if self.missing_classes:
            names = ", ".join(repr(name) for name in self.missing_classes)
            return (
                f"{self.name} needs the custom node class {names}, which no node has; "
                "install the node pack on a node or choose another workflow"
            )
        if self.statuses and not self.ready_nodes:
            lacking = "; ".join(
                f"{s.node_id}: {s.detail()}" for s in self.statuses if s.readiness is not None
            )
            return f"no node can run {self.name} ({lacking or 'every node is unreachable'})"
        return None


def collect_cards(
    folders: Sequence[tuple[str, Path]],
    farm_info: FarmObjectInfo,
    models: Mapping[str, str],
) -> list[WorkflowCard]:
    """Every workflow in the folders (templates first in each), with Ready/Missing per node.

    A later folder's entry with the same name replaces an earlier one, as the
    library does (the user's folder overrides what ships). A file that cannot
    be read is a card with its error, so the browser says what is wrong with it.
    """
    merged = farm_info.merged()
    cards: dict[str, WorkflowCard] = {}
    for label, folder in folders:
        listed: set[Path] = set()
        try:
            library = load_library([folder])
        except ConfigError as error:
            cards[f"{label}:manifest"] = WorkflowCard(
                f"{label}:manifest", "manifest.yaml", label, "template", folder, error=str(error)
            )
            library = load_library([])
        for template in library:
            listed.add(template.source.resolve())
            card = _template_card(template, label, models, merged, farm_info)
            cards[card.name] = card
        for path in workflow_files(folder):
            if path.resolve() not in listed:
                card = _file_card(path, label, merged, models, farm_info)
                cards[card.name] = card
    return list(cards.values())


def _statuses(info: WorkflowInfo, farm_info: FarmObjectInfo) -> tuple[NodeStatus, ...]:
    found = []
    for node_id in farm_info.order:
        if node_id in farm_info.errors:
            found.append(NodeStatus(node_id, None, farm_info.errors[node_id]))
        else:
            found.append(NodeStatus(node_id, readiness(info, farm_info.classes[node_id])))
    return tuple(found)


def _template_card(
    template: WorkflowTemplate,
    label: str,
    models: Mapping[str, str],
    merged: Mapping[str, Any] | None,
    farm_info: FarmObjectInfo,
) -> WorkflowCard:
    try:
        graph = template.render({**TEMPLATE_STARTING_VALUES, **template.defaults}, dict(models))
    except GraphError as error:
        return WorkflowCard(
            f"{label}:{template.name}",
            template.name,
            label,
            "template",
            template.source,
            error=str(error),
        )
    info = with_manifest(infer(graph, models), template.family, template.task, template.requires)
    missing = tuple(name for name in info.classes if merged is not None and name not in merged)
    return WorkflowCard(
        key=f"{label}:{template.name}",
        name=template.name,
        category=label,
        format="template",
        path=template.source,
        description=template.description,
        info=info,
        graph=graph,
        missing_classes=missing,
        statuses=_statuses(info, farm_info),
    )


def _file_card(
    path: Path,
    label: str,
    merged: Mapping[str, Any] | None,
    models: Mapping[str, str],
    farm_info: FarmObjectInfo,
) -> WorkflowCard:
    try:
        source = read_workflow_file(path)
        loaded = load_workflow(source, merged, models)
    except WorkflowFileError as error:
        return WorkflowCard(f"{label}:{path.stem}", path.stem, label, "?", path, error=str(error))
    return WorkflowCard(
        key=f"{label}:{source.name}",
        name=source.name,
        category=label,
        format=source.format,
        path=path,
        description=source.description,
        info=loaded.info,
        graph=loaded.graph,
        controls=loaded.controls,
        missing_classes=loaded.missing_classes,
        statuses=_statuses(loaded.info, farm_info),
    )


async def model_sizes(farm: FarmConfig, folders: Sequence[str]) -> dict[tuple[str, str], int]:
    """(folder, file) -> bytes, from each node's `/experiment/models/{folder}` where it answers.

    Older servers and proxies do not have the route; then a file has no size
    and the card shows its name alone.
    """
    sizes: dict[tuple[str, str], int] = {}

    async def ask(base_url: str, headers: Mapping[str, str], folder: str) -> None:
        try:
            async with httpx.AsyncClient(
                base_url=base_url, headers=dict(headers), timeout=SIZE_TIMEOUT
            ) as client:
                response = await client.get(f"/experiment/models/{folder}")
            data = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return
        for item in data if isinstance(data, list) else []:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                size = item.get("size")
                if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
                    sizes[(folder, item["name"])] = size

    await asyncio.gather(
        *(ask(node.base_url, node.headers, folder) for node in farm.nodes for folder in folders)
    )
    return sizes


def describe_size(size: int | None) -> str:
    if size is None:
        return ""
    if size >= 1024**3:
        return f"{size / 1024**3:.1f} GB"
    return f"{size / 1024**2:.0f} MB"
