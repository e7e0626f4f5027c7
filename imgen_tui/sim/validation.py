"""ComfyUI's prompt validation, reproduced against the simulator's object_info.

Mirrors `execution.validate_prompt` / `validate_inputs` closely enough that the
400 answers have the same types, messages and `extra_info` as the recordings:
the client's error summaries are tested against both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from imgen_tui.graphs.graph import is_link

_COMBO_LIST_LIMIT = 20


@dataclass
class ValidationResult:
    """`error` set means a 400; otherwise `outputs` run and `node_errors` may still be filled."""

    error: dict[str, Any] | None = None
    node_errors: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)


def prompt_error(kind: str, message: str, details: str = "") -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": {}}


def validate_prompt(prompt: dict[str, Any], object_info: dict[str, Any]) -> ValidationResult:
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return ValidationResult(
                error=prompt_error(
                    "invalid_prompt",
                    "Cannot execute because a node is missing the class_type property.",
                    f"Node ID '#{node_id}'",
                )
            )
        class_type = node["class_type"]
        if class_type not in object_info:
            return ValidationResult(
                error=prompt_error(
                    "invalid_prompt",
                    f"Cannot execute because node {class_type} does not exist.",
                    f"Node ID '#{node_id}'",
                )
            )
        if object_info[class_type].get("output_node"):
            outputs.append(node_id)
    if not outputs:
        return ValidationResult(error=prompt_error("prompt_no_outputs", "Prompt has no outputs"))

    validated: dict[str, tuple[bool, list[dict[str, Any]]]] = {}
    good: list[str] = []
    node_errors: dict[str, Any] = {}
    for output in outputs:
        try:
            valid = _validate_node(prompt, output, validated, object_info)
        except Exception as error:  # mirrors ComfyUI: a broken output is reported, not raised
            valid = False
            validated[output] = (False, [_inner_exception(error, "", None, [output, 0])])
        if valid:
            good.append(output)
            continue
        for node_id, (ok, reasons) in validated.items():
            if ok or not reasons:
                continue
            entry = node_errors.setdefault(
                node_id,
                {
                    "errors": reasons,
                    "dependent_outputs": [],
                    "class_type": prompt[node_id]["class_type"],
                },
            )
            entry["dependent_outputs"].append(output)
    if not good:
        return ValidationResult(
            error=prompt_error(
                "prompt_outputs_failed_validation", "Prompt outputs failed validation"
            ),
            node_errors=node_errors,
        )
    return ValidationResult(node_errors=node_errors, outputs=good)


def _validate_node(
    prompt: dict[str, Any],
    node_id: str,
    validated: dict[str, tuple[bool, list[dict[str, Any]]]],
    object_info: dict[str, Any],
) -> bool:
    if node_id in validated:
        return validated[node_id][0]
    node = prompt[node_id]
    class_info = object_info[node["class_type"]]
    inputs = node.get("inputs") or {}
    required: dict[str, Any] = (class_info.get("input") or {}).get("required") or {}
    optional: dict[str, Any] = (class_info.get("input") or {}).get("optional") or {}
    reasons: list[dict[str, Any]] = []
    valid = True
    for name, spec in [*required.items(), *optional.items()]:
        if name not in inputs:
            if name in required:
                reasons.append(
                    _error(
                        "required_input_missing",
                        "Required input is missing",
                        name,
                        {"input_name": name},
                    )
                )
                valid = False
            continue
        value = inputs[name]
        if is_link(value):
            linked_id, index = value
            linked_class = prompt[linked_id]["class_type"]  # KeyError: caught by the caller
            produced = (
                (object_info[linked_class].get("output") or [])[index]
                if index < len(object_info[linked_class].get("output") or [])
                else None
            )
            expected = spec[0]
            if (
                isinstance(expected, str)
                and expected not in ("*", "COMBO")
                and produced not in (None, "*")
                and produced != expected
            ):
                reasons.append(
                    _error(
                        "return_type_mismatch",
                        "Return type mismatch between linked nodes",
                        f"{name}, received_type({produced}) mismatch input_type({expected})",
                        {
                            "input_name": name,
                            "input_config": spec,
                            "received_type": produced,
                            "linked_node": value,
                        },
                    )
                )
                valid = False
                continue
            try:
                if not _validate_node(prompt, linked_id, validated, object_info):
                    valid = False
            except Exception as error:
                valid = False
                validated[linked_id] = (False, [_inner_exception(error, name, spec, value)])
            continue
        problem = _check_literal(name, spec, value)
        if problem is not None:
            reasons.append(problem)
            valid = False
    validated[node_id] = (valid, reasons)
    return valid


def _check_literal(name: str, spec: list[Any], value: Any) -> dict[str, Any] | None:
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    choices: list[Any] | None = None
    if isinstance(kind, list):
        choices = kind
    elif kind == "COMBO":
        choices = list(options.get("options") or [])
    if choices is not None:
        if value in choices:
            return None
        if len(choices) > _COMBO_LIST_LIMIT:
            listing, config = f"(list of length {len(choices)})", None
        else:
            # ComfyUI reports (type, extra_info): a list-only spec gets its empty dict (recorded)
            listing, config = str(choices), spec if len(spec) > 1 else [kind, {}]
        return _error(
            "value_not_in_list",
            "Value not in list",
            f"{name}: '{value}' not in {listing}",
            {"input_name": name, "input_config": config, "received_value": value},
        )
    converters = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
    converter = converters.get(kind) if isinstance(kind, str) else None
    if converter is None:
        return None
    try:
        converted = converter(value)
    except (TypeError, ValueError) as error:
        return _error(
            "invalid_input_type",
            f"Failed to convert an input value to a {kind} value",
            f"{name}, {value}, {error}",
            {
                "input_name": name,
                "input_config": spec,
                "received_value": value,
                "exception_message": str(error),
            },
        )
    if kind in ("INT", "FLOAT"):
        if "min" in options and converted < options["min"]:
            return _error(
                "value_smaller_than_min",
                f"Value {converted} smaller than min of {options['min']}",
                name,
                {"input_name": name, "input_config": spec, "received_value": value},
            )
        if "max" in options and converted > options["max"]:
            return _error(
                "value_bigger_than_max",
                f"Value {converted} bigger than max of {options['max']}",
                name,
                {"input_name": name, "input_config": spec, "received_value": value},
            )
    return None


def _inner_exception(error: Exception, name: str, spec: Any, link: Any) -> dict[str, Any]:
    kind = type(error)
    qualified = (
        kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    )
    return _error(
        "exception_during_inner_validation",
        "Exception when validating inner node",
        str(error),
        {
            "input_name": name,
            "input_config": spec,
            "exception_message": str(error),
            "exception_type": qualified,
            "traceback": [],
            "linked_node": link,
        },
    )


def _error(kind: str, message: str, details: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}
