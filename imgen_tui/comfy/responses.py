"""Typed views of ComfyUI's HTTP answers: queue, history, object_info, system_stats."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from imgen_tui.comfy.errors import ProtocolError
from imgen_tui.comfy.events import ExecutionError, ImageRef, parse_message
from imgen_tui.comfy.outputs import FILE_KEYS

log = logging.getLogger(__name__)

PromptState = Literal["pending", "running", "done", "unknown"]


@contextlib.contextmanager
def _parsing(path: str) -> Iterator[None]:
    """Any value of the wrong type in an answer becomes one `ProtocolError` naming the path.

    Without this a `"vram_total": "lots"` or a list where an object belongs
    escapes as a bare ValueError or AttributeError, which nothing above expects.
    """
    try:
        yield
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as error:
        raise ProtocolError(f"{path} answered a malformed value ({error})") from None


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _object(value: object, what: str) -> dict[str, Any]:
    """`value` when it is a JSON object (or absent); a `ProtocolError` naming `what` otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} is a {_kind(value)}, not an object")
    return value


def _list(value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProtocolError(f"{what} is a {_kind(value)}, not a list")
    return value


def _number(value: object, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{what} is {value!r:.40}, not a number")
    try:
        return int(value)
    except (ValueError, OverflowError):
        raise ProtocolError(f"{what} is {value!r:.40}, not a number") from None


@dataclass(frozen=True, slots=True)
class SubmitResult:
    prompt_id: str
    number: int


@dataclass(frozen=True, slots=True)
class QueueItem:
    number: int
    prompt_id: str
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class QueueState:
    """`/queue`, with pending items sorted by number (the server sends heap order)."""

    running: tuple[QueueItem, ...]
    pending: tuple[QueueItem, ...]

    @classmethod
    def from_json(cls, data: Any) -> QueueState:
        if not isinstance(data, dict):
            raise ProtocolError(f"/queue answered a {_kind(data)}, not an object")
        with _parsing("/queue"):
            running = tuple(
                _queue_item(item) for item in _list(data.get("queue_running"), "queue_running")
            )
            pending = sorted(
                (_queue_item(item) for item in _list(data.get("queue_pending"), "queue_pending")),
                key=lambda item: item.number,
            )
        return cls(running=running, pending=tuple(pending))

    def state_of(self, prompt_id: str) -> PromptState | None:
        if any(item.prompt_id == prompt_id for item in self.running):
            return "running"
        if any(item.prompt_id == prompt_id for item in self.pending):
            return "pending"
        return None

    @property
    def depth(self) -> int:
        return len(self.running) + len(self.pending)


def _queue_item(item: Any) -> QueueItem:
    if not isinstance(item, list) or len(item) < 2:
        raise ProtocolError(f"a /queue item that is not [number, prompt_id, ...]: {item!r:.80}")
    extra = item[3] if len(item) > 3 and isinstance(item[3], dict) else {}
    client_id = extra.get("client_id")
    return QueueItem(
        number=_number(item[0], "a /queue item's number"),
        prompt_id=str(item[1]),
        client_id=None if client_id is None else str(client_id),
    )


def _listed_files(outputs: dict[str, Any], where: str) -> tuple[ImageRef, ...]:
    """The files the output nodes list; one listed twice (64 times, by a hostile node) once."""
    return tuple(
        dict.fromkeys(
            ImageRef.from_json(image)
            for node_output in outputs.values()
            if isinstance(node_output, dict)
            for key in FILE_KEYS  # VHS lists its videos under `gifs`
            for image in _list(node_output.get(key), f"the {key} in the {where}")
        )
    )


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One finished prompt from `/history/{id}`: success, error or interrupted."""

    prompt_id: str
    status: str
    completed: bool
    images: tuple[ImageRef, ...]
    outputs: dict[str, Any] = field(compare=False)
    error: ExecutionError | None = None
    interrupted: bool = False

    @classmethod
    def from_json(cls, prompt_id: str, entry: Any) -> HistoryEntry:
        if not isinstance(entry, dict):
            raise ProtocolError(
                f"/history answered a {_kind(entry)} for {prompt_id}, not an object"
            )
        where = f"/history of {prompt_id}"
        status = _object(entry.get("status"), f"the 'status' in the {where}")
        outputs = _object(entry.get("outputs"), f"the 'outputs' in the {where}")
        with _parsing("/history"):
            images = _listed_files(outputs, where)
            error: ExecutionError | None = None
            interrupted = False
            for message in _list(status.get("messages"), f"the status messages in the {where}"):
                if not (isinstance(message, list) and len(message) == 2):
                    continue
                try:
                    event = parse_message({"type": message[0], "data": message[1]})
                except ProtocolError as unreadable:  # the status_str still tells the outcome
                    log.warning("%s: skipped a status message: %s", where, unreadable)
                    continue
                if isinstance(event, ExecutionError):
                    error = event
                interrupted = interrupted or message[0] == "execution_interrupted"
        return cls(
            prompt_id=prompt_id,
            status=str(status.get("status_str") or ""),
            completed=bool(status.get("completed")),
            images=images,
            outputs=outputs,
            error=error,
            interrupted=interrupted,
        )

    @classmethod
    def from_outputs(cls, prompt_id: str, outputs: dict[str, Any]) -> HistoryEntry:
        """A successful prompt's entry from its `executed` messages, without asking /history.

        ComfyUI sends each output node's `executed` with the very dict its
        history lists under that node (cached nodes too), before
        `execution_success`: heard whole, they are the same record one round
        trip sooner.
        """
        where = f"executed messages of {prompt_id}"
        with _parsing("the websocket"):
            images = _listed_files(outputs, where)
        return cls(prompt_id, "success", True, images, dict(outputs))

    @property
    def saved_images(self) -> tuple[ImageRef, ...]:
        """Outputs written to the node's output folder, not temporary previews."""
        return tuple(image for image in self.images if image.type == "output")


@dataclass(frozen=True, slots=True)
class Device:
    name: str
    type: str
    vram_total: int
    vram_free: int


@dataclass(frozen=True, slots=True)
class SystemStats:
    comfyui_version: str
    python_version: str
    pytorch_version: str
    devices: tuple[Device, ...]
    ram_total: int = 0  # the machine's RAM in bytes (0: the server did not say)
    ram_free: int = 0

    @classmethod
    def from_json(cls, data: Any) -> SystemStats:
        if not isinstance(data, dict) or not isinstance(data.get("system"), dict):
            raise ProtocolError("/system_stats answered without a 'system' object")
        system = data["system"]
        with _parsing("/system_stats"):
            devices = tuple(
                Device(
                    name=str(device.get("name", "?")),
                    type=str(device.get("type", "?")),
                    vram_total=_number(device.get("vram_total"), "/system_stats vram_total"),
                    vram_free=_number(device.get("vram_free"), "/system_stats vram_free"),
                )
                for device in _list(data.get("devices"), "/system_stats devices")
                if isinstance(device, dict)
            )
        return cls(
            comfyui_version=str(system.get("comfyui_version") or "unknown"),
            python_version=str(system.get("python_version") or "").split(" ")[0],
            pytorch_version=str(system.get("pytorch_version") or ""),
            devices=devices,
            ram_total=_number(system.get("ram_total"), "/system_stats ram_total"),
            ram_free=_number(system.get("ram_free"), "/system_stats ram_free"),
        )

    @property
    def vram_total(self) -> int:
        return sum(device.vram_total for device in self.devices)

    @property
    def vram_free(self) -> int:
        return sum(device.vram_free for device in self.devices)


# Model folders and the loader input that lists each one.
MODEL_LISTS: dict[str, tuple[str, str]] = {
    "checkpoints": ("CheckpointLoaderSimple", "ckpt_name"),
    "loras": ("LoraLoader", "lora_name"),
    "upscale_models": ("UpscaleModelLoader", "model_name"),
    "controlnet": ("ControlNetLoader", "control_net_name"),
    "vae": ("VAELoader", "vae_name"),
    "unet": ("UNETLoader", "unet_name"),
}


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """`/object_info`: which node classes a server has and which model files they list."""

    classes: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Any) -> ObjectInfo:
        if not isinstance(data, dict):
            raise ProtocolError(f"/object_info answered a {_kind(data)}, not an object of classes")
        # A custom node with an odd description costs only that class, not the whole node.
        return cls(classes={name: spec for name, spec in data.items() if isinstance(spec, dict)})

    def has_class(self, class_type: str) -> bool:
        return class_type in self.classes

    def options(self, class_type: str, input_name: str) -> tuple[str, ...]:
        """The choices of a combo input, in either shape servers use.

        Older nodes send `[[names...], {...}]`; newer ones `["COMBO", {"options": [...]}]`.
        """
        spec = self.input_spec(class_type, input_name)
        if not spec:
            return ()
        kind = spec[0]
        if isinstance(kind, list):
            return tuple(str(option) for option in kind)
        if kind == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
            options = spec[1].get("options")
            return tuple(str(option) for option in options) if isinstance(options, list) else ()
        return ()

    def input_spec(self, class_type: str, input_name: str) -> list[Any] | None:
        """One input's spec; a class whose description has the wrong shape has no inputs."""
        inputs = self.classes.get(class_type, {}).get("input")
        for section in ("required", "optional"):
            listed = inputs.get(section) if isinstance(inputs, dict) else None
            spec = listed.get(input_name) if isinstance(listed, dict) else None
            if isinstance(spec, list) and spec:
                return spec
        return None

    def models(self, folder: str) -> tuple[str, ...]:
        class_type, input_name = MODEL_LISTS[folder]
        return self.options(class_type, input_name)

    @property
    def checkpoints(self) -> tuple[str, ...]:
        return self.models("checkpoints")

    @property
    def loras(self) -> tuple[str, ...]:
        return self.models("loras")

    @property
    def upscale_models(self) -> tuple[str, ...]:
        return self.models("upscale_models")

    @property
    def controlnets(self) -> tuple[str, ...]:
        return self.models("controlnet")
