"""YAML files validated by pydantic models, with errors that point at a line.

Farm configs, workflow manifests and later settings files share this: the
person reading the error is editing the file, so it names the file, the line,
the key path and what was expected, in one sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["ConfigError", "StrictModel", "YamlDocument", "format_loc", "load_yaml_model"]


class ConfigError(Exception):
    """A configuration problem, already phrased for the person who must fix it."""


class StrictModel(BaseModel):
    """Unknown keys are errors: a misspelt key must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class YamlDocument(Generic[ModelT]):
    """A validated value and the YAML tree it came from, to locate later problems."""

    value: ModelT
    root: yaml.Node

    def line_of(self, loc: Sequence[Any]) -> int:
        return line_of(self.root, loc)


def line_of(root: yaml.Node, loc: Sequence[Any]) -> int:
    """1-based line of the deepest YAML node that `loc` reaches."""
    node = root
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    child = value_node
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node = child
    return int(node.start_mark.line) + 1


def load_yaml_model(
    text: str, path: Path, model: type[ModelT], *, what: str
) -> YamlDocument[ModelT]:
    """Parse and validate; `what` completes "…is empty; it needs …" for an empty file."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}{where}: is not valid YAML ({problem}).") from None
    if root is None or data is None:
        raise ConfigError(f"{path}: is empty; it needs {what}.")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}, line 1: must be a mapping with {what}.")
    try:
        value = model.model_validate(data)
    except ValidationError as error:
        # A misspelt key also makes its real name "missing": name the misspelling.
        details = sorted(
            error.errors(include_url=False), key=lambda d: d["type"] != "extra_forbidden"
        )
        detail = details[0]
        loc = tuple(detail["loc"])
        raise ConfigError(
            f"{path}, line {line_of(root, loc)}: {format_loc(loc)} {_explain(detail)}."
        ) from None
    return YamlDocument(value=value, root=root)


def format_loc(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the file"


def _explain(detail: Any) -> str:
    kind, ctx, value = detail["type"], detail.get("ctx") or {}, detail.get("input")
    if kind == "missing":
        return "is missing"
    if kind == "extra_forbidden":
        return "is not a known key; remove it or check its spelling"
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "")
        return f"must be one of {expected} (got {value!r})"
    if kind == "value_error":
        return str(ctx.get("error", detail["msg"]))
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return f"must be a whole number (got {value!r})"
    if kind in {"float_parsing", "float_type"}:
        return f"must be a number (got {value!r})"
    if kind == "too_short":
        return "must not be empty"
    message = str(detail["msg"])
    return f"{message[0].lower()}{message[1:]} (got {value!r})"
