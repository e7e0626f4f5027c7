"""Any workflow file a person has: UI format, API format, or a PNG that ComfyUI wrote.

Reading is strict about what it cannot use and says so in one sentence naming
the file; a UI-format file is converted with the `/object_info` it is given
(graphs/ui_format.py), and what the graph is and needs is inferred
(graphs/infer.py) unless a manifest entry says otherwise.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgen_tui.graphs.graph import Graph
from imgen_tui.graphs.infer import WorkflowInfo, infer
from imgen_tui.graphs.ui_format import ConversionError, WorkflowFormat, detect_format, ui_to_api
from imgen_tui.yamlfile import ConfigError

WORKFLOW_SUFFIXES = (".json", ".png")


class WorkflowFileError(ConfigError):
    """A workflow file that cannot be read or converted: one sentence, naming the file."""


@dataclass(frozen=True)
class WorkflowFile:
    """A workflow as read from disk, before conversion (no object_info needed yet)."""

    path: Path
    format: WorkflowFormat
    data: dict[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def description(self) -> str:
        """`_meta.description` or the UI file's `extra.description`, if the author left one."""
        for holder in (self.data.get("_meta"), self.data.get("extra")):
            if isinstance(holder, Mapping) and isinstance(holder.get("description"), str):
                return str(holder["description"])
        return ""


@dataclass(frozen=True)
class LoadedWorkflow:
    source: WorkflowFile
    graph: Graph = field(repr=False)
    info: WorkflowInfo
    missing_classes: tuple[str, ...] = ()
    controls: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def format(self) -> WorkflowFormat:
        return self.source.format

    def require_runnable(self) -> None:
        """Refuse a graph with classes no node has: the sentence names the first one."""
        if self.missing_classes:
            names = ", ".join(repr(name) for name in self.missing_classes)
            noun = "class" if len(self.missing_classes) == 1 else "classes"
            raise WorkflowFileError(
                f"{self.source.path}: needs the custom node {noun} {names}, which no node has; "
                "install the node pack on a node or choose another workflow"
            )


def read_workflow_file(path: Path) -> WorkflowFile:
    """Parse a .json (UI or API format) or a ComfyUI .png (its `workflow`/`prompt` text)."""
    try:
        if path.suffix.lower() == ".png":
            data = _png_workflow(path)
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkflowFileError(f"{path}: no such workflow file.") from None
    except IsADirectoryError:
        raise WorkflowFileError(f"{path}: is a folder, not a workflow file.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise WorkflowFileError(f"{path}: cannot be read ({error}).") from None
    except json.JSONDecodeError as error:
        raise WorkflowFileError(
            f"{path}, line {error.lineno}: is not valid JSON ({error.msg})."
        ) from None
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and "nodes" not in data:
        data = data["prompt"]  # a saved /prompt request body
    kind = detect_format(data)
    if kind is None or not isinstance(data, dict):
        raise WorkflowFileError(
            f"{path}: is neither a ComfyUI workflow (nodes and links) nor an API-format graph "
            "(nodes with a class_type); save it from ComfyUI with Save or Export (API)."
        )
    return WorkflowFile(path, kind, data)


def load_workflow(
    source: WorkflowFile,
    object_info: Mapping[str, Any] | None,
    farm_models: Mapping[str, str] | None = None,
) -> LoadedWorkflow:
    """The API graph and what it is; a UI file needs an object_info to be converted."""
    if source.format == "api":
        graph = {key: value for key, value in source.data.items() if isinstance(value, dict)}
        missing: tuple[str, ...] = ()
        if object_info is not None:
            missing = tuple(
                sorted(
                    {
                        str(node.get("class_type"))
                        for node in graph.values()
                        if node.get("class_type") not in object_info
                    }
                )
            )
        return LoadedWorkflow(source, graph, infer(graph, farm_models), missing)
    if object_info is None:
        raise WorkflowFileError(
            f"{source.path}: is a UI-format workflow; converting it needs an /object_info "
            "(a reachable node, or --object-info with a saved answer)."
        )
    try:
        conversion = ui_to_api(source.data, object_info)
    except ConversionError as error:
        raise WorkflowFileError(f"{source.path}: {error}.") from None
    return LoadedWorkflow(
        source,
        conversion.graph,
        infer(conversion.graph, farm_models),
        conversion.missing_classes,
        conversion.controls,
    )


def read_object_info_dump(path: Path) -> dict[str, Any]:
    """A saved `/object_info` answer: the bare object, gzipped, or a recorded `{json: ...}`."""
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw).decode("utf-8") if raw[:2] == b"\x1f\x8b" else raw.decode()
        data = json.loads(text)
    except FileNotFoundError:
        raise WorkflowFileError(f"{path}: no such /object_info file.") from None
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as error:
        raise WorkflowFileError(f"{path}: cannot be read ({error}).") from None
    except json.JSONDecodeError as error:
        raise WorkflowFileError(
            f"{path}, line {error.lineno}: is not valid JSON ({error.msg})."
        ) from None
    if isinstance(data, dict) and isinstance(data.get("json"), dict) and "request" in data:
        data = data["json"]
    if not isinstance(data, dict) or not any(
        isinstance(spec, dict) and "input" in spec for spec in data.values()
    ):
        raise WorkflowFileError(
            f"{path}: is not an /object_info answer (class name -> {{input, output, ...}}); "
            "save one with: curl http://NODE:8188/object_info > object_info.json"
        )
    return {name: spec for name, spec in data.items() if isinstance(spec, dict)}


def workflow_files(folder: Path) -> list[Path]:
    """The workflow files directly in a folder, by name (a missing folder has none)."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in WORKFLOW_SUFFIXES
    )


def _png_workflow(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            text = dict(getattr(image, "text", {}) or image.info)
    except UnidentifiedImageError:
        raise WorkflowFileError(f"{path}: is not a PNG image.") from None
    for key in ("workflow", "prompt"):
        value = text.get(key)
        if isinstance(value, str) and value.strip():
            return json.loads(value)
    raise WorkflowFileError(
        f"{path}: has no ComfyUI workflow in it (no 'workflow' or 'prompt' text chunk)."
    )
