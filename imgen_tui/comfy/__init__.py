"""One ComfyUI server: its HTTP API, its WebSocket event stream and typed results."""

from imgen_tui.comfy.client import ComfyClient
from imgen_tui.comfy.errors import (
    ComfyError,
    DownloadTooLarge,
    ExecutionFailed,
    GraphRejected,
    Interrupted,
    NodeUnreachable,
    ProtocolError,
    TimedOut,
)
from imgen_tui.comfy.events import ImageRef, NodeEvent, parse_binary, parse_message
from imgen_tui.comfy.websocket import NodeEventStream

__all__ = [
    "ComfyClient",
    "ComfyError",
    "DownloadTooLarge",
    "ExecutionFailed",
    "GraphRejected",
    "ImageRef",
    "Interrupted",
    "NodeEvent",
    "NodeEventStream",
    "NodeUnreachable",
    "ProtocolError",
    "TimedOut",
    "parse_binary",
    "parse_message",
]
