"""Typed events decoded from ComfyUI's WebSocket, JSON and binary alike.

The shapes follow the traffic recorded from a real server
(tests/fixtures/comfyui). Newer servers add message types and fields: an
unknown type decodes to `None` and unknown fields are ignored, so a server
upgrade never breaks the client.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

from imgen_tui.comfy.errors import ProtocolError


@dataclass(frozen=True, slots=True)
class ImageRef:
    """Where an output lives on its node: the three query fields of `/view`."""

    filename: str
    subfolder: str = ""
    type: str = "output"

    @classmethod
    def from_json(cls, data: Any) -> ImageRef:
        if not isinstance(data, dict) or not isinstance(data.get("filename"), str):
            raise ProtocolError(f"an image reference without a filename: {data!r:.80}")
        return cls(
            filename=data["filename"],
            subfolder=str(data.get("subfolder") or ""),
            type=str(data.get("type") or "output"),
        )


@dataclass(frozen=True, slots=True)
class Status:
    """Queue depth as the server counts it: everyone's prompts, running ones included."""

    queue_remaining: int
    sid: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionStart:
    prompt_id: str
    timestamp: int | None = None


@dataclass(frozen=True, slots=True)
class ExecutionCached:
    prompt_id: str
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Executing:
    """A graph node started; `node is None` marks the end of the prompt."""

    prompt_id: str | None
    node: str | None


@dataclass(frozen=True, slots=True)
class Progress:
    prompt_id: str | None
    node: str | None
    value: int
    max: int


@dataclass(frozen=True, slots=True)
class Executed:
    prompt_id: str
    node: str
    images: tuple[ImageRef, ...] = ()
    output: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class ExecutionSuccess:
    prompt_id: str
    timestamp: int | None = None


@dataclass(frozen=True, slots=True)
class ExecutionError:
    prompt_id: str
    node_id: str | None
    node_type: str | None
    exception_type: str
    exception_message: str
    traceback: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class ExecutionInterrupted:
    prompt_id: str
    node_id: str | None
    node_type: str | None


@dataclass(frozen=True, slots=True)
class Preview:
    """A sampler preview frame; `prompt_id` is known only for type-4 frames."""

    image: bytes = field(repr=False)
    format: Literal["jpeg", "png"]
    prompt_id: str | None = None
    node_id: str | None = None


NodeEvent = (
    Status
    | ExecutionStart
    | ExecutionCached
    | Executing
    | Progress
    | Executed
    | ExecutionSuccess
    | ExecutionError
    | ExecutionInterrupted
    | Preview
)

PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4
_PREVIEW_FORMATS: dict[int, Literal["jpeg", "png"]] = {1: "jpeg", 2: "png"}
_MIME_FORMATS: dict[str, Literal["jpeg", "png"]] = {"image/jpeg": "jpeg", "image/png": "png"}


def parse_message(message: Any) -> NodeEvent | None:
    """Decode one JSON WebSocket message; `None` for types this client does not use."""
    if not isinstance(message, dict):
        raise ProtocolError(f"a WebSocket message that is not an object: {message!r:.80}")
    kind, data = message.get("type"), message.get("data")
    if not isinstance(data, dict):
        data = {}
    try:
        return _decode(kind, data)
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as error:
        # OverflowError: `1e999` is valid JSON and decodes to infinity, which int() refuses.
        raise ProtocolError(
            f"a malformed {kind!r:.40} message ({error!r}): {message!r:.120}"
        ) from None


def _decode(kind: object, data: dict[str, Any]) -> NodeEvent | None:
    match kind:
        case "status":
            info = data["status"]["exec_info"]
            return Status(
                queue_remaining=_count(info["queue_remaining"]), sid=_optional_str(data.get("sid"))
            )
        case "execution_start":
            return ExecutionStart(
                prompt_id=str(data["prompt_id"]), timestamp=_optional_int(data.get("timestamp"))
            )
        case "execution_cached":
            nodes = tuple(str(node) for node in _items(data.get("nodes")))
            return ExecutionCached(prompt_id=str(data["prompt_id"]), nodes=nodes)
        case "executing":
            node = data.get("node")
            return Executing(
                prompt_id=_optional_str(data.get("prompt_id")),
                node=None if node is None else str(node),
            )
        case "progress":
            node = data.get("node")
            return Progress(
                prompt_id=_optional_str(data.get("prompt_id")),
                node=None if node is None else str(node),
                value=_count(data["value"]),
                max=_count(data["max"]),
            )
        case "executed":
            output = data.get("output") or {}
            if not isinstance(output, dict):
                raise TypeError(f"its output is a {type(output).__name__}, not an object")
            images = tuple(ImageRef.from_json(image) for image in _items(output.get("images")))
            return Executed(
                prompt_id=str(data["prompt_id"]),
                node=str(data["node"]),
                images=images,
                output=output,
            )
        case "execution_success":
            return ExecutionSuccess(
                prompt_id=str(data["prompt_id"]), timestamp=_optional_int(data.get("timestamp"))
            )
        case "execution_error":
            return ExecutionError(
                prompt_id=str(data["prompt_id"]),
                node_id=_optional_str(data.get("node_id")),
                node_type=_optional_str(data.get("node_type")),
                exception_type=str(data.get("exception_type") or ""),
                exception_message=str(data.get("exception_message") or "").strip(),
                traceback=tuple(str(line) for line in _items(data.get("traceback"))),
            )
        case "execution_interrupted":
            return ExecutionInterrupted(
                prompt_id=str(data["prompt_id"]),
                node_id=_optional_str(data.get("node_id")),
                node_type=_optional_str(data.get("node_type")),
            )
        case _:
            return None


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _count(value: object) -> int:
    """A step or queue count; a bool, a string, NaN or infinity is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r:.40} is not a number")
    return int(value)  # ValueError for NaN, OverflowError for infinity


def _optional_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _items(value: object) -> list[Any]:
    """A list field, or nothing: a string or an object in its place is a malformed message."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"{value!r:.40} is not a list")
    return value


def parse_binary(frame: bytes) -> Preview | None:
    """Decode a binary frame: big-endian u32 event type, then its payload.

    Type 1 is `[format][image]`; type 4 (after the client announced
    `supports_preview_metadata`) is `[metadata length][metadata JSON][image]`.
    Other types (unencoded images, progress text) are not used here.
    """
    if len(frame) < 8:
        raise ProtocolError(f"a binary frame of {len(frame)} bytes is too short for its header")
    event_type, word = struct.unpack_from(">II", frame)
    if event_type == PREVIEW_IMAGE:
        image_format = _PREVIEW_FORMATS.get(word)
        if image_format is None:
            raise ProtocolError(f"a preview frame with unknown image format {word}")
        return Preview(image=frame[8:], format=image_format)
    if event_type == PREVIEW_IMAGE_WITH_METADATA:
        end = 8 + word
        if end > len(frame):
            raise ProtocolError("a preview frame whose metadata runs past its end")
        try:
            metadata = json.loads(frame[8:end])
        except (ValueError, RecursionError) as error:
            raise ProtocolError(f"a preview frame with unreadable metadata ({error})") from None
        if not isinstance(metadata, dict):
            raise ProtocolError("a preview frame whose metadata is not an object")
        image_format = _MIME_FORMATS.get(str(metadata.get("image_type", "image/jpeg")), "jpeg")
        return Preview(
            image=frame[end:],
            format=image_format,
            prompt_id=_optional_str(metadata.get("prompt_id")),
            node_id=_optional_str(metadata.get("node_id")),
        )
    return None


def encode_preview(
    image: bytes, image_format: Literal["jpeg", "png"], metadata: dict[str, Any] | None
) -> bytes:
    """The inverse of `parse_binary`, used by the simulator to speak the same frames."""
    format_code = 1 if image_format == "jpeg" else 2
    if metadata is None:
        return struct.pack(">II", PREVIEW_IMAGE, format_code) + image
    meta = json.dumps({**metadata, "image_type": f"image/{image_format}"}).encode()
    return struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, len(meta)) + meta + image
