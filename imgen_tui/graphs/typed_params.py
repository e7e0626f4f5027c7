"""Every literal input of every node as a typed parameter, from the class's `/object_info` spec.

The form needs more than a value: INT/FLOAT bounds and step, a combo's
choices (a loader's model list is a combo), whether a string is multiline,
whether an INT is a seed (by name or `control_after_generate`) and how the
saved workflow wanted it changed between runs. `role` marks the few
parameters shown first (the table in graphs/params.py, prompts found by
following the sampler's links); the rest have no role and are folded away.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from imgen_tui.graphs.graph import Graph, is_link, iter_nodes
from imgen_tui.graphs.params import extract_parameters
from imgen_tui.graphs.widgets import (
    SEED_NAMES,
    combo_choices,
    input_specs,
    spec_options,
    spec_type,
)

ParameterKind = Literal["int", "float", "combo", "string", "boolean", "unknown"]
Role = Literal[
    "prompt",
    "negative",
    "seed",
    "steps",
    "cfg",
    "sampler",
    "scheduler",
    "width",
    "height",
    "checkpoint",
    "lora",
    "denoise",
    "image",
]
ROLE_ORDER: tuple[Role, ...] = (
    "prompt",
    "negative",
    "seed",
    "steps",
    "cfg",
    "sampler",
    "scheduler",
    "width",
    "height",
    "checkpoint",
    "lora",
    "denoise",
    "image",
)
#: params.py kind -> role in the form and the JSON
ROLE_OF_KIND: dict[str, Role] = {
    "positive_prompt": "prompt",
    "prompt": "prompt",
    "negative_prompt": "negative",
    "seed": "seed",
    "steps": "steps",
    "cfg": "cfg",
    "sampler_name": "sampler",
    "scheduler": "scheduler",
    "width": "width",
    "height": "height",
    "checkpoint": "checkpoint",
    "lora_name": "lora",
    "denoise": "denoise",
    "image": "image",
}
_KINDS: dict[str, ParameterKind] = {
    "INT": "int",
    "FLOAT": "float",
    "COMBO": "combo",
    "STRING": "string",
    "BOOLEAN": "boolean",
}


@dataclass(frozen=True)
class TypedParameter:
    node: str
    class_type: str
    input: str
    kind: ParameterKind
    role: Role | None
    value: Any
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    options: tuple[Any, ...] = ()
    multiline: bool = False
    seed: bool = False
    #: "randomize" | "fixed" | "increment" | "decrement" from the saved workflow, for seeds
    control: str | None = None
    #: the params.py kind (positive_prompt, lora_name, ...) when the table knows the input
    table_kind: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "node": self.node,
            "class_type": self.class_type,
            "input": self.input,
            "kind": self.kind,
            "role": self.role,
            "value": self.value,
        }
        for name in ("default", "minimum", "maximum", "step", "control"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.options:
            data["options"] = list(self.options)
        if self.kind == "string":
            data["multiline"] = self.multiline
        if self.seed:
            data["seed"] = True
        return data

    def check(self, value: Any) -> str | None:
        """Why `value` does not fit this parameter (one clause), or None when it does."""
        label = f"{self.input} of node {self.node}"
        if self.kind in ("int", "float"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"{label} takes a number, not {value!r}"
            if self.kind == "int" and not float(value).is_integer():
                return f"{label} takes a whole number, not {value!r}"
            if self.minimum is not None and value < self.minimum:
                return f"{label} is at least {self.minimum:g}, not {value!r}"
            if self.maximum is not None and value > self.maximum:
                return f"{label} is at most {self.maximum:g}, not {value!r}"
        elif self.kind == "combo" and self.options and value not in self.options:
            shown = ", ".join(str(option) for option in self.options[:8])
            more = ", ..." if len(self.options) > 8 else ""
            return f"{label} is one of {shown}{more}, not {value!r}"
        elif self.kind == "boolean" and not isinstance(value, bool):
            return f"{label} is true or false, not {value!r}"
        elif self.kind == "string" and not isinstance(value, str):
            return f"{label} takes text, not {value!r}"
        return None


def typed_parameters(
    graph: Graph,
    object_info: Mapping[str, Any] | None = None,
    controls: Mapping[str, Mapping[str, str]] | None = None,
) -> list[TypedParameter]:
    """Every literal input, important ones (those with a role) first in ROLE_ORDER.

    Without an object_info entry for a class, its literals are still listed,
    typed by their JSON value (kind `unknown` for anything odd).
    """
    object_info = object_info or {}
    controls = controls or {}
    table: dict[tuple[str, str], list[str]] = {}
    for known in extract_parameters(graph):
        table.setdefault((known.node_id, known.input), []).append(known.kind)
    found: list[TypedParameter] = []
    for node_id, class_type, inputs in iter_nodes(graph):
        specs = {name: spec for name, spec, _ in input_specs(object_info.get(class_type) or {})}
        for name, value in inputs.items():
            if is_link(value):
                continue
            # A primitive that feeds both width and height is listed once per role.
            kinds: list[str | None] = [*table.get((node_id, name), [])] or [None]
            for table_kind in kinds:
                found.append(
                    _typed(
                        node_id,
                        class_type,
                        name,
                        _unbox(value),
                        specs.get(name),
                        table_kind,
                        controls.get(node_id, {}).get(name),
                    )
                )
    return sorted(found, key=_importance)


def _typed(
    node_id: str,
    class_type: str,
    name: str,
    value: Any,
    spec: list[Any] | None,
    table_kind: str | None,
    control: str | None,
) -> TypedParameter:
    role = ROLE_OF_KIND.get(table_kind) if table_kind else None
    if spec is None:
        kind = _kind_of_value(value)
        seed = kind == "int" and (name in SEED_NAMES or role == "seed")
        return TypedParameter(
            node_id,
            class_type,
            name,
            kind,
            role,
            value,
            seed=seed,
            control=control,
            table_kind=table_kind,
        )
    options = spec_options(spec)
    kind = _KINDS.get(spec_type(spec), "unknown")
    if class_type in _PRIMITIVE_HOSTS:
        seed = role == "seed"
    else:
        seed = kind == "int" and (
            name in SEED_NAMES or bool(options.get("control_after_generate")) or role == "seed"
        )
    if seed and role is None:
        role = "seed"
    return TypedParameter(
        node=node_id,
        class_type=class_type,
        input=name,
        kind=kind,
        role=role,
        value=value,
        default=options.get("default"),
        minimum=_number(options.get("min")),
        maximum=_number(options.get("max")),
        step=_number(options.get("step")),
        options=tuple(combo_choices(spec)) if kind == "combo" else (),
        multiline=bool(options.get("multiline")),
        seed=seed,
        control=control,
        table_kind=table_kind,
    )


#: classes whose `control_after_generate` INT is a value of any meaning, not a seed by itself
_PRIMITIVE_HOSTS = frozenset({"PrimitiveInt"})


def _importance(parameter: TypedParameter) -> tuple[int, int]:
    rank = ROLE_ORDER.index(parameter.role) if parameter.role else len(ROLE_ORDER)
    return (rank, 0)


def _kind_of_value(value: Any) -> ParameterKind:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "unknown"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _unbox(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"__value__"}:
        return value["__value__"]
    return value


def found_roles(parameters: list[TypedParameter]) -> set[Role]:
    return {parameter.role for parameter in parameters if parameter.role is not None}
