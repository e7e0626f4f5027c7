"""Reading one ComfyUI server's LoRA answers: file lists, sizes, safetensors headers.

Every function here is pure and forgiving. Servers differ (older ones lack
`/experiment/models`, customised ones answer garbage, files may carry no
safetensors metadata), and none of that may stop discovery: anything that
cannot be read is "not known" and the caller falls back to the bare file list.
Safetensors metadata arrives with every value a string, so nested kohya fields
such as `ss_tag_frequency` are JSON parsed a second time.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from imgen_tui.comfy.errors import ProtocolError
from imgen_tui.comfy.responses import ObjectInfo

#: how many of the most frequent training tags are offered as trigger words
TRIGGER_WORD_COUNT = 5


@dataclass(frozen=True, slots=True)
class LoraFile:
    """One file as `/experiment/models/loras` describes it; None where it is not known."""

    name: str
    size: int | None = None
    modified: float | None = None
    path_index: int | None = None


@dataclass(frozen=True, slots=True)
class LoraMetadata:
    """What a LoRA's safetensors header says about itself, already interpreted."""

    family: str | None = None
    trigger_words: tuple[str, ...] = ()
    title: str | None = None
    base_model: str | None = None


@dataclass(frozen=True, slots=True)
class NodeLoras:
    """One node's LoRAs and which endpoints answered; `error` when the node itself did not."""

    node: str
    files: tuple[LoraFile, ...] = ()
    metadata: Mapping[str, LoraMetadata] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    error: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(file.name for file in self.files)


# -- file lists ------------------------------------------------------------------------


def lora_names_from_object_info(data: Any) -> tuple[str, ...] | None:
    """`GET /object_info/LoraLoader`'s `lora_name` choices, in either combo shape.

    None when the answer is not an object_info for LoraLoader at all, so the
    caller knows to try `/models/loras` instead; `()` when the folder is empty.
    """
    try:
        info = ObjectInfo.from_json(data)
    except ProtocolError:
        return None
    if info.input_spec("LoraLoader", "lora_name") is None:
        return None
    return info.options("LoraLoader", "lora_name")


def lora_names_from_model_list(data: Any) -> tuple[str, ...] | None:
    """`GET /models/loras`: a name list; None when it is anything else."""
    if not isinstance(data, list) or not all(isinstance(name, str) for name in data):
        return None
    return tuple(data)


def files_from_experiment_models(data: Any) -> dict[str, LoraFile]:
    """`GET /experiment/models/loras`: sizes and dates by name; entries that are not
    `{name, size, modified, pathIndex}` objects are skipped, not fatal."""
    files: dict[str, LoraFile] = {}
    if not isinstance(data, list):
        return files
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        files[item["name"]] = LoraFile(
            name=item["name"],
            size=_int(item.get("size")),
            modified=_number(item.get("modified")),
            path_index=_int(item.get("pathIndex")),
        )
    return files


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def merge_files(
    names: Iterable[str] | None, details: Mapping[str, LoraFile]
) -> tuple[LoraFile, ...]:
    """The node's list (from the loader) with sizes where `/experiment/models` knew them.

    The loader's list is the truth for what a prompt may name; without one the
    experiment listing stands in.
    """
    if names is None:
        return tuple(details.values())
    return tuple(details.get(name, LoraFile(name=name)) for name in names)


def wants_metadata(name: str) -> bool:
    """Only safetensors files carry a header; ComfyUI answers 404 for any other name."""
    return name.lower().endswith(".safetensors")


# -- metadata --------------------------------------------------------------------------


def parse_metadata(data: Any) -> LoraMetadata:
    """`GET /view_metadata/loras?filename=...`'s answer, interpreted; empty when unusable."""
    if not isinstance(data, dict):
        return LoraMetadata()
    header = {str(key): value for key, value in data.items() if isinstance(value, str)}
    title = header.get("modelspec.title") or header.get("ss_output_name") or None
    return LoraMetadata(
        family=family_from_metadata(header),
        trigger_words=trigger_words(header),
        title=title,
        base_model=header.get("ss_sd_model_name") or None,
    )


def family_from_metadata(header: Mapping[str, str]) -> str | None:
    """SD1.5 / SDXL / Pony / Illustrious / Flux when the header says so, else None.

    kohya writes `ss_base_model_version` (sd_v1, sdxl_base_v1-0, flux1...) and
    the SAI model spec `modelspec.architecture`; Pony and Illustrious are SDXL
    underneath, told apart only by the base model's name.
    """
    base = " ".join(
        header.get(key, "")
        for key in ("ss_base_model_version", "modelspec.architecture", "modelspec.base_model")
    ).lower()
    model_name = " ".join(
        header.get(key, "") for key in ("ss_sd_model_name", "modelspec.title", "ss_output_name")
    ).lower()
    if "flux" in base:
        return "flux"
    is_sdxl = "xl" in base
    if is_sdxl or not base.strip():
        if "pony" in model_name:
            return "pony"
        if "illustrious" in model_name or "noobai" in model_name:
            return "illustrious"
    if is_sdxl:
        return "sdxl"
    if "sd_v1" in base or "stable-diffusion-v1" in base:
        return "sd15"
    return None


def trigger_words(header: Mapping[str, str], limit: int = TRIGGER_WORD_COUNT) -> tuple[str, ...]:
    """The author's trigger phrase first, then the most frequent training tags.

    `ss_tag_frequency` is `{"dataset": {"tag": count}}` serialised as a string;
    counts are summed across datasets and ties go alphabetically so the order
    is stable.
    """
    words: list[str] = []
    phrase = header.get("modelspec.trigger_phrase", "").strip()
    if phrase:
        words.append(phrase)
    counts: Counter[str] = Counter()
    for tags in _json_object(header.get("ss_tag_frequency")).values():
        if not isinstance(tags, dict):
            continue
        for tag, count in tags.items():
            if isinstance(count, int | float) and not isinstance(count, bool) and tag.strip():
                counts[tag.strip()] += int(count)
    for tag, _count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if tag not in words:
            words.append(tag)
    return tuple(words[:limit])


def _json_object(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
