"""Failures of one ComfyUI server, each carrying a sentence a person can act on."""

from __future__ import annotations

from typing import Any

# Inputs whose "value not in list" means a model file is missing on the node.
_MODEL_INPUTS = frozenset(
    {
        "ckpt_name",
        "lora_name",
        "model_name",
        "unet_name",
        "vae_name",
        "clip_name",
        "clip_name1",
        "clip_name2",
        "control_net_name",
        "ipadapter_file",
        "config_name",
    }
)


class ComfyError(Exception):
    """Base of every node failure; `str(error)` is the sentence to show."""

    #: whether another node (or a later attempt) could succeed with the same graph
    retryable: bool = True

    def __init__(self, message: str, *, node: str = "") -> None:
        super().__init__(message)
        self.node = node


class NodeUnreachable(ComfyError):
    """No HTTP answer: connection refused, DNS, TLS or a dropped connection."""


class TimedOut(ComfyError):
    """A request or a prompt took longer than allowed."""


class ProtocolError(ComfyError):
    """The server answered something that is not ComfyUI's protocol."""


class DownloadTooLarge(ComfyError):
    """An output was bigger than the download cap; it is never read whole."""

    retryable = False


class Interrupted(ComfyError):
    """The prompt was stopped by an interrupt before it finished."""

    retryable = False


class ExecutionFailed(ComfyError):
    """A graph node raised during execution (OOM, a broken model file...)."""

    def __init__(
        self,
        message: str,
        *,
        node: str = "",
        node_id: str | None = None,
        node_type: str | None = None,
        exception_type: str = "",
    ) -> None:
        super().__init__(message, node=node)
        self.node_id = node_id
        self.node_type = node_type
        self.exception_type = exception_type

    @property
    def out_of_memory(self) -> bool:
        text = f"{self.exception_type} {self}".lower()
        return "outofmemory" in text.replace(" ", "") or "out of memory" in text


class GraphRejected(ComfyError):
    """`POST /prompt` refused the graph (400), or accepted it with broken outputs.

    Not retryable on the same node; another node with other models may accept it.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        node: str = "",
        error_type: str = "",
        problems: tuple[str, ...] = (),
        node_errors: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, node=node)
        self.error_type = error_type
        self.problems = problems
        self.node_errors = node_errors or {}

    @property
    def missing_models(self) -> tuple[str, ...]:
        """Model files the node lacks, so a scheduler can try a node that has them."""
        missing = []
        for entry in self.node_errors.values():
            errors = entry.get("errors") if isinstance(entry, dict) else None
            for error in errors if isinstance(errors, list) else ():
                if not isinstance(error, dict):
                    continue
                info = _as_dict(error.get("extra_info"))
                if (
                    error.get("type") == "value_not_in_list"
                    and info.get("input_name") in _MODEL_INPUTS
                ):
                    missing.append(str(info.get("received_value")))
        return tuple(missing)


def graph_rejected(body: Any, node: str) -> GraphRejected:
    """Turn a `/prompt` error body into one `GraphRejected` naming each bad input."""
    if not isinstance(body, dict):
        return GraphRejected(f"{node} rejected the graph: {body!r:.200}", node=node)
    error = _as_dict(body.get("error"))
    node_errors = _as_dict(body.get("node_errors"))
    problems = tuple(_describe_node_errors(node_errors, node))
    if not problems:
        message = str(error.get("message") or "the graph is invalid").rstrip(".")
        details = str(error.get("details") or "")
        problems = (f"{message} ({details})" if details and details != message else message,)
    return GraphRejected(
        f"{node} rejected the graph: " + "; ".join(problems) + ".",
        node=node,
        error_type=str(error.get("type") or ""),
        problems=problems,
        node_errors=node_errors,
    )


def _describe_node_errors(node_errors: dict[str, Any], node: str) -> list[str]:
    lines = []
    for node_id, entry in sorted(node_errors.items(), key=lambda item: _numeric_key(item[0])):
        if not isinstance(entry, dict):
            continue
        class_type = entry.get("class_type", "?")
        errors = entry.get("errors")
        for error in errors if isinstance(errors, list) else ():
            if isinstance(error, dict):
                lines.append(f"node {node_id} {class_type}: {_describe_error(error, node)}")
    return lines


def _describe_error(error: dict[str, Any], node: str) -> str:
    info = _as_dict(error.get("extra_info"))
    name = info.get("input_name") or error.get("details") or "?"
    value = info.get("received_value")
    match error.get("type"):
        case "value_not_in_list" if name in _MODEL_INPUTS:
            return f"{name} {value!r} is not installed on {node}"
        case "value_not_in_list":
            return f"{name} {value!r} is not one of the allowed values"
        case "required_input_missing":
            return f"required input {name} is missing"
        case "value_smaller_than_min":
            return f"{name} {value!r} is below the minimum ({error.get('message', '')})"
        case "value_bigger_than_max":
            return f"{name} {value!r} is above the maximum ({error.get('message', '')})"
        case "invalid_input_type":
            return f"{name} {value!r} has the wrong type ({error.get('message', '')})"
        case "return_type_mismatch":
            return f"{name} is linked to an output of the wrong type ({error.get('details', '')})"
        case "exception_during_inner_validation":
            return f"{name} links to a node that is missing or broken ({error.get('details', '')})"
    return f"{error.get('message', 'invalid')} ({error.get('details', '')})"


def _numeric_key(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isascii() and node_id.isdigit() else (1 << 62, node_id)


def _as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
