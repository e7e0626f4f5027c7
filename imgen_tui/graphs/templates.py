"""Workflow templates: API-format graphs with typed `{{name}}` placeholders.

Substitution walks the parsed JSON instead of editing text, so a prompt with
quotes or braces can never break the graph, and `"{{seed}}"` becomes the
number 42, not the string "42".
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from imgen_tui.config import KNOWN_CAPABILITIES
from imgen_tui.graphs.graph import Graph, GraphError
from imgen_tui.yamlfile import ConfigError, StrictModel, load_yaml_model

log = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}")

Family = Literal["sd15", "sdxl", "flux", "pony", "illustrious", "any"]
Task = Literal["txt2img", "img2img", "upscale", "video"]

# Placeholders whose default comes from the farm config's `models:` section.
MODEL_PLACEHOLDERS = {"checkpoint": None, "upscale_model": "upscale"}


class _ManifestEntry(StrictModel):
    file: str
    description: str = ""
    family: Family
    task: Task
    requires: tuple[str, ...] = ()
    defaults: dict[str, Any] = Field(default_factory=dict)

    @field_validator("requires")
    @classmethod
    def _known(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if value not in KNOWN_CAPABILITIES:
                known = ", ".join(sorted(KNOWN_CAPABILITIES))
                raise ValueError(f"names unknown capability {value!r}; known ones are {known}")
        return values


class _Manifest(StrictModel):
    workflows: dict[str, _ManifestEntry]


@dataclass(frozen=True)
class WorkflowTemplate:
    name: str
    description: str
    family: str
    task: str
    requires: tuple[str, ...]
    defaults: Mapping[str, Any]
    graph: Graph = field(repr=False)
    source: Path

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(_placeholders(self.graph))

    @property
    def required(self) -> frozenset[str]:
        """Placeholders the caller must always give (the prompt, a source image)."""
        return frozenset(
            name
            for name in self.placeholders
            if name not in self.defaults and name not in MODEL_PLACEHOLDERS
        )

    def render(self, params: Mapping[str, Any], models: Mapping[str, str] | None = None) -> Graph:
        """A fresh graph with every placeholder filled; unknown params are ignored.

        Values come from `params`, then the manifest defaults, then the farm's
        model for this family (`checkpoint`) or its upscaler (`upscale_model`).
        """
        values: dict[str, Any] = {}
        for name, key in MODEL_PLACEHOLDERS.items():
            model_key = key or self.family
            if models and model_key in models:
                values[name] = models[model_key]
        values.update(self.defaults)
        values.update(params)
        missing = sorted(self.placeholders - values.keys())
        if missing:
            raise GraphError(
                f"workflow {self.name} needs a value for {', '.join(missing)} "
                f"(from {self.source.name})"
            )
        return _substitute(copy.deepcopy(self.graph), values)  # type: ignore[no-any-return]


class WorkflowLibrary:
    """Templates by name; later folders (the user's) override earlier ones (bundled)."""

    def __init__(self, templates: Iterable[WorkflowTemplate], problems: Iterable[str] = ()) -> None:
        self._templates = {template.name: template for template in templates}
        self.problems = list(problems)  # files skipped while loading, one sentence each

    def __getitem__(self, name: str) -> WorkflowTemplate:
        try:
            return self._templates[name]
        except KeyError:
            known = ", ".join(sorted(self._templates))
            raise KeyError(f"no workflow named {name!r}; known ones are {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._templates

    def __iter__(self) -> Any:
        return iter(self._templates.values())

    def __len__(self) -> int:
        return len(self._templates)

    def names(self) -> list[str]:
        return sorted(self._templates)


def load_library(folders: Iterable[Path]) -> WorkflowLibrary:
    """Read each folder's manifest.yaml; a folder without one is skipped.

    One bad file must not stop every workflow: a manifest that does not load
    skips its folder, a graph that does not load skips its template, and
    each is reported once in `problems` (and the log) for the caller to show.
    """
    templates: list[WorkflowTemplate] = []
    problems: list[str] = []
    for folder in folders:
        manifest_path = folder / "manifest.yaml"
        if manifest_path.is_file():
            try:
                templates.extend(_load_folder(manifest_path, problems))
            except ConfigError as error:
                problems.append(f"{error} The workflows of {folder} are skipped.")
    for problem in problems:
        log.warning("%s", problem)
    return WorkflowLibrary(templates, problems)


def _load_folder(manifest_path: Path, problems: list[str]) -> list[WorkflowTemplate]:
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{manifest_path}: cannot be read ({error}).") from None
    document = load_yaml_model(text, manifest_path, _Manifest, what="a 'workflows:' mapping")
    templates = []
    for name, entry in document.value.workflows.items():
        line = document.line_of(("workflows", name, "file"))
        try:
            graph = _read_graph(manifest_path.parent / entry.file, f"{manifest_path}, line {line}")
        except ConfigError as error:
            problems.append(f"{error} Workflow {name} is skipped.")
            continue
        templates.append(
            WorkflowTemplate(
                name=name,
                description=entry.description,
                family=entry.family,
                task=entry.task,
                requires=entry.requires,
                defaults=entry.defaults,
                graph=graph,
                source=manifest_path.parent / entry.file,
            )
        )
    return templates


def _read_graph(path: Path, where: str) -> Graph:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{where}: workflow file {path.name} does not exist in {path.parent}."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{where}: workflow file {path} cannot be read ({error}).") from None
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{path}, line {error.lineno}: is not valid JSON ({error.msg}); "
            "export it from ComfyUI with 'Save (API)'."
        ) from None
    if not isinstance(data, dict) or not all(
        isinstance(node, dict) and "class_type" in node for node in data.values()
    ):
        raise ConfigError(
            f"{path}: is not an API-format graph (each node needs a class_type); "
            "export it from ComfyUI with 'Save (API)', not the UI format."
        )
    return data


def _placeholders(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield from PLACEHOLDER.findall(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _placeholders(item)
    elif isinstance(value, list):
        for item in value:
            yield from _placeholders(item)


def _substitute(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole:
            return values[whole.group(1)]
        return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), value)
    if isinstance(value, dict):
        return {key: _substitute(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, values) for item in value]
    return value
