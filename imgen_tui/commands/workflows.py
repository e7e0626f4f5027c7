"""`imgen-tui workflows`: every workflow the app can see, and what each node lacks to run it.

`workflows` lists the shipped templates, the user's folder and any `--dir`,
each with its family, task and a Ready / Missing N cell per node (from that
node's own `/object_info` and model lists). `workflows show FILE` prints what
was inferred and every parameter found; `--json` gives the same as data.
`--object-info DUMP` uses a saved `/object_info` answer instead of the farm,
so any file can be inspected offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from imgen_tui.config import FarmConfig
from imgen_tui.flows.farm_info import FarmObjectInfo, farm_object_info
from imgen_tui.graphs.infer import Readiness, WorkflowInfo, infer, readiness, with_manifest
from imgen_tui.graphs.templates import WorkflowTemplate, load_library
from imgen_tui.graphs.typed_params import typed_parameters
from imgen_tui.graphs.workflow_file import (
    LoadedWorkflow,
    WorkflowFileError,
    load_workflow,
    read_object_info_dump,
    read_workflow_file,
    workflow_files,
)
from imgen_tui.locations import bundled_dir, user_config_dir
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import load_demo_farm
from imgen_tui.yamlfile import ConfigError

EXIT_OK, EXIT_BAD_INPUT = 0, 2
#: what a template's required placeholders get when it is only looked at, never run
LOOK_ONLY_VALUES = {"prompt": "", "negative": "", "image": "source.png"}


@dataclass(frozen=True)
class WorkflowEntry:
    """One row of the listing: a workflow (or the sentence why it could not be read)."""

    name: str
    source: str  # shipped | user | the --dir path
    format: str  # api | ui | template
    info: WorkflowInfo | None = None
    missing_classes: tuple[str, ...] = ()
    error: str | None = None
    description: str = ""


async def workflows_list(
    console: Console,
    farm: FarmConfig | None,
    *,
    demo: bool = False,
    dirs: Sequence[Path] = (),
    object_info_dump: Path | None = None,
) -> int:
    async with _object_info(farm, demo, object_info_dump) as (farm_info, models):
        folders = [("shipped", bundled_dir("workflows")), ("user", user_config_dir() / "workflows")]
        folders += [(str(folder), folder) for folder in dirs]
        entries = await asyncio.to_thread(_collect, folders, farm_info, models)
        _print_listing(console, entries, farm_info)
    return EXIT_BAD_INPUT if any(entry.error for entry in entries) else EXIT_OK


async def workflows_show(
    console: Console,
    farm: FarmConfig | None,
    path: Path,
    *,
    demo: bool = False,
    as_json: bool = False,
    object_info_dump: Path | None = None,
) -> int:
    source = await asyncio.to_thread(read_workflow_file, path)  # unreadable: exit 2 first
    async with _object_info(farm, demo, object_info_dump) as (farm_info, models):
        merged = farm_info.merged()
        if merged is None:
            reasons = "; ".join(f"{node}: {why}" for node, why in farm_info.errors.items())
            raise WorkflowFileError(
                f"no node answered /object_info ({reasons or 'no nodes'}); "
                "give --object-info with a saved answer to inspect the file offline"
            )
        loaded = await asyncio.to_thread(load_workflow, source, merged, models)
        parameters = typed_parameters(loaded.graph, merged, loaded.controls)
        per_node = {node: readiness(loaded.info, info) for node, info in farm_info.classes.items()}
    if as_json:
        console.print_json(json.dumps(show_json(loaded, parameters)), highlight=False)
        return EXIT_OK
    _print_show(console, loaded, parameters, per_node)
    return EXIT_OK


def show_json(loaded: LoadedWorkflow, parameters: Sequence[Any]) -> dict[str, Any]:
    """The `--json` shape: format, family, task, classes, models, missing_classes, parameters."""
    info = loaded.info
    return {
        "format": loaded.format,
        "family": info.family,
        "task": info.task,
        "classes": list(info.classes),
        "models": [
            {"node": ref.node_id, "input": ref.input, "name": ref.name, "folder": ref.folder}
            for ref in info.models
        ],
        "missing_classes": list(loaded.missing_classes),
        "parameters": [parameter.to_json() for parameter in parameters],
    }


# -- where the object_info comes from ------------------------------------------------------


@contextlib.asynccontextmanager
async def _object_info(
    farm: FarmConfig | None, demo: bool, dump: Path | None
) -> AsyncIterator[tuple[FarmObjectInfo, dict[str, str]]]:
    """A saved answer, the demo farm (started here), or the configured farm's nodes."""
    if dump is not None:
        classes = await asyncio.to_thread(read_object_info_dump, dump)
        models = dict(farm.models) if farm is not None else {}
        yield FarmObjectInfo.from_dump(classes, dump.name), models
        return
    if demo:
        spec = load_demo_farm()
        async with SimFarm.from_spec(spec, previews=False) as sim_farm:
            yield await farm_object_info(sim_farm.config()), dict(spec.models)
        return
    assert farm is not None
    yield await farm_object_info(farm), dict(farm.models)


# -- collecting the rows (in a thread: files are read and graphs converted) -----------------


def _collect(
    folders: Sequence[tuple[str, Path]], farm_info: FarmObjectInfo, models: dict[str, str]
) -> list[WorkflowEntry]:
    merged = farm_info.merged()
    entries: list[WorkflowEntry] = []
    for label, folder in folders:
        listed: set[Path] = set()
        try:
            library = load_library([folder])
        except ConfigError as error:  # a broken manifest: say so, list the files anyway
            entries.append(WorkflowEntry("manifest.yaml", label, "template", error=str(error)))
            library = load_library([])
        for template in library:
            listed.add(template.source.resolve())
            entries.append(_template_entry(template, label, models, merged))
        for path in workflow_files(folder):
            if path.resolve() in listed:
                continue
            entries.append(_file_entry(path, label, merged, models))
    return entries


def _template_entry(
    template: WorkflowTemplate,
    label: str,
    models: dict[str, str],
    merged: dict[str, Any] | None,
) -> WorkflowEntry:
    graph = template.render({**LOOK_ONLY_VALUES, **template.defaults}, models)
    info = with_manifest(infer(graph, models), template.family, template.task, template.requires)
    missing = tuple(name for name in info.classes if merged is not None and name not in merged)
    return WorkflowEntry(
        template.name, label, "template", info, missing, description=template.description
    )


def _file_entry(
    path: Path, label: str, merged: dict[str, Any] | None, models: dict[str, str]
) -> WorkflowEntry:
    try:
        source = read_workflow_file(path)
        loaded = load_workflow(source, merged, models)
    except WorkflowFileError as error:
        return WorkflowEntry(path.stem, label, "?", error=str(error))
    return WorkflowEntry(
        source.name,
        label,
        source.format,
        loaded.info,
        loaded.missing_classes,
        description=source.description,
    )


# -- printing ----------------------------------------------------------------------------


def _print_listing(
    console: Console, entries: list[WorkflowEntry], farm_info: FarmObjectInfo
) -> None:
    table = Table(title="Workflows", header_style="bold", title_justify="left")
    for column in ("workflow", "from", "format", "family", "task", "in → out"):
        table.add_column(column, no_wrap=column != "workflow")
    for node_id in farm_info.order:
        table.add_column(node_id, no_wrap=True)
    details: list[str] = []
    for entry in entries:
        lacking: dict[str, list[str]] = {}  # what is missing -> the nodes it is missing on
        if entry.info is None:
            details.append(f"{entry.name} ({entry.source}): {entry.error}")
            table.add_row(
                entry.name, entry.source, entry.format, "", "", "", *("" for _ in farm_info.order)
            )
            continue
        info = entry.info
        cells: list[Text] = []
        for node_id in farm_info.order:
            if node_id in farm_info.errors:
                cells.append(Text("unreachable", "dim"))
                continue
            result = readiness(info, farm_info.classes[node_id])
            cells.append(_status_cell(result))
            if not result.ready:
                lacking.setdefault(_missing_detail(result), []).append(node_id)
        details += [
            f"{entry.name} on {', '.join(nodes)}: {what}" for what, nodes in lacking.items()
        ]
        flow = f"{'+'.join(info.inputs) or '-'} → {'+'.join(info.outputs) or '-'}"
        table.add_row(entry.name, entry.source, entry.format, info.family, info.task, flow, *cells)
    console.print(table)
    for node_id, error in farm_info.errors.items():
        console.print(Text(f"• {node_id} is unreachable: {error}", "yellow"))
    for line in details:
        console.print(Text(f"• {line}", "yellow"))


def _status_cell(result: Readiness) -> Text:
    if result.ready:
        return Text("Ready", "green")
    return Text(f"Missing {result.missing_count}", "red")


def _missing_detail(result: Readiness) -> str:
    parts = [f"class {name}" for name in result.missing_classes]
    parts += [f"{ref.folder}/{ref.name} (node {ref.node_id})" for ref in result.missing_models]
    return "missing " + ", ".join(parts)


def _print_show(
    console: Console,
    loaded: LoadedWorkflow,
    parameters: Sequence[Any],
    per_node: dict[str, Readiness],
) -> None:
    info = loaded.info
    console.print(
        f"[bold]{escape(loaded.source.name)}[/] ({loaded.format} format, {loaded.source.path})"
    )
    if loaded.source.description:
        console.print(escape(loaded.source.description))
    console.print(
        f"family [bold]{info.family}[/], task [bold]{info.task}[/], "
        f"{'+'.join(info.inputs) or 'nothing'} → {'+'.join(info.outputs) or 'nothing'}, "
        f"needs {', '.join(sorted(info.needs)) or 'nothing special'}"
    )
    console.print(f"{len(info.classes)} node classes: {escape(', '.join(info.classes))}")
    for ref in info.models:
        console.print(
            f"  model {ref.folder}/{escape(ref.name)} (node {ref.node_id} {ref.class_type})"
        )
    if loaded.missing_classes:
        names = ", ".join(loaded.missing_classes)
        console.print(Text(f"No node has the classes: {names}", "red"))
    for node_id, result in per_node.items():
        line = Text(f"{node_id}: ")
        line.append_text(_status_cell(result))
        if not result.ready:
            line.append(f" — {_missing_detail(result)}")
        console.print(line)
    table = Table(title="Parameters", header_style="bold", title_justify="left")
    for column in ("node", "class", "input", "kind", "role", "value", "range / choices"):
        table.add_column(column, overflow="fold")
    for parameter in parameters:
        table.add_row(
            parameter.node,
            parameter.class_type,
            parameter.input,
            parameter.kind,
            parameter.role or "",
            escape(_short(parameter.value)),
            escape(_range(parameter)),
        )
    console.print(table)


def _number(value: float, kind: str) -> str:
    return str(int(value)) if kind == "int" else f"{value:g}"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _range(parameter: Any) -> str:
    if parameter.options:
        return f"{len(parameter.options)} choices"
    if parameter.minimum is not None or parameter.maximum is not None:
        low = "" if parameter.minimum is None else _number(parameter.minimum, parameter.kind)
        high = "" if parameter.maximum is None else _number(parameter.maximum, parameter.kind)
        step = f" step {parameter.step:g}" if parameter.step else ""
        return f"{low}..{high}{step}"
    if parameter.seed and parameter.control:
        return f"seed, {parameter.control}"
    return "multiline" if parameter.multiline else ""


async def workflows_command(args: Any, console: Console) -> int:
    """Entry from the CLI's parsed arguments (kept here so cli.py only registers it)."""
    from imgen_tui.config import load_config

    farm = None if args.demo or args.object_info else load_config(args.config).farm
    if args.action == "show":
        if args.file is None:
            raise ConfigError("`workflows show FILE` needs a workflow file (.json or .png)")
        return await workflows_show(
            console,
            farm,
            args.file,
            demo=args.demo,
            as_json=args.json,
            object_info_dump=args.object_info,
        )
    return await workflows_list(
        console, farm, demo=args.demo, dirs=args.dir, object_info_dump=args.object_info
    )
