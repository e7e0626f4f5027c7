"""Typed configuration loaded from YAML.

Every problem becomes one `ConfigError` sentence that names the file, the line,
the key path and what was expected, because the person reading it is editing
that file in another terminal, not reading a traceback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from imgen_tui.locations import CONFIG_ENV_VAR, farm_config_candidates
from imgen_tui.yamlfile import (
    ConfigError,
    StrictModel,
    YamlDocument,
    format_loc,
    load_yaml_model,
)

Tier = Literal["draft", "standard", "quality", "premium"]
TIERS: tuple[str, ...] = ("draft", "standard", "quality", "premium")

KNOWN_CAPABILITIES: frozenset[str] = frozenset(
    {
        "sd15",
        "sdxl",
        "pony",
        "illustrious",
        "flux",
        "flux_fp8",
        "upscale",
        "controlnet",
        "ipadapter",
        "faceid",
        "style",  # IP-Adapter or a core fallback; found in /object_info even when not declared
        "animatediff",
        "interpolation",
        "video",
    }
)

#: Each family's native image size: speeds are quoted per step at this size and
#: scale with the pixel count (a 768x768 SD1.5 step costs 2.25 native steps).
NATIVE_PIXELS: dict[str, int] = {
    "sd15": 512 * 512,
    "sdxl": 1024 * 1024,
    "pony": 1024 * 1024,
    "illustrious": 1024 * 1024,
    "flux": 1024 * 1024,
}

DEFAULT_MODELS: dict[str, str] = {
    "sd15": "v1-5-pruned-emaonly.safetensors",
    "sdxl": "sd_xl_base_1.0.safetensors",
    "flux": "flux1-dev-fp8.safetensors",
    "upscale": "4x-UltraSharp.pth",
}


def _not_a_boolean(value: Any) -> Any:
    """YAML's `true` is an int to pydantic (`port: true` would be port 1): refuse it."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not {str(value).lower()}")
    return value


def _non_negative_finite(value: Any) -> Any:
    value = _not_a_boolean(value)
    if isinstance(value, int | float) and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"must be zero or a positive number of seconds (got {value})")
    return value


Number = Annotated[float, BeforeValidator(_not_a_boolean)]
WholeNumber = Annotated[int, BeforeValidator(_not_a_boolean)]
SecondsOrZero = Annotated[float, BeforeValidator(_non_negative_finite)]

#: RFC 9110 token: what a header name may be (no spaces, colons, CR or LF)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$"
)
_ENV_REFERENCE = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def expand_environment(value: str) -> str:
    """`${VAR}` and `$VAR` from the environment; an unset one is an error, never sent as text."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if name not in os.environ:
            raise ValueError(
                f"uses ${{{name}}}, which is not set in the environment; export {name} "
                "before starting imgen-tui"
            )
        return os.environ[name]

    return _ENV_REFERENCE.sub(replace, value)


class NodeConfig(StrictModel):
    """One ComfyUI server as the operator declared it."""

    id: str = Field(min_length=1)
    name: str = ""
    vram_gb: Number = Field(gt=0, allow_inf_nan=False)
    tier: Tier
    host: str = Field(min_length=1)
    port: WholeNumber
    scheme: Literal["http", "https"] = "http"
    headers: dict[str, str] = Field(default_factory=dict)
    capabilities: tuple[str, ...] = ()
    max_resolution: WholeNumber = 1024
    max_batch: WholeNumber = Field(default=1, ge=1)
    seconds_per_step: dict[str, SecondsOrZero] = Field(default_factory=dict)  # 0: a simulated node
    load_seconds: SecondsOrZero = 5.0
    #: re-patching the loaded model when the LoRA stack (or a strength) changes
    patch_seconds: SecondsOrZero = 1.5

    @field_validator("host")
    @classmethod
    def _a_host_name_or_address(cls, host: str) -> str:
        # Only a name or an address: "127.0.0.1/evil?x=" would smuggle a path into every URL.
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(host)
            return host
        if not _HOST_NAME.fullmatch(host):
            raise ValueError(
                f"must be a host name or an IP address, without scheme, port or path (got {host!r})"
            )
        return host

    @field_validator("port")
    @classmethod
    def _port_in_range(cls, port: int) -> int:
        if not 1 <= port <= 65535:
            raise ValueError(f"must be a TCP port between 1 and 65535 (got {port})")
        return port

    @field_validator("max_resolution")
    @classmethod
    def _resolution_multiple_of_8(cls, value: int) -> int:
        if value < 64 or value % 8:
            raise ValueError(f"must be a multiple of 8 and at least 64 (got {value})")
        return value

    @field_validator("capabilities")
    @classmethod
    def _known_capabilities(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [value for value in values if value not in KNOWN_CAPABILITIES]
        if unknown:
            known = ", ".join(sorted(KNOWN_CAPABILITIES))
            raise ValueError(f"has unknown capability {unknown[0]!r}; known ones are {known}")
        return values

    @field_validator("headers")
    @classmethod
    def _expand_header_variables(cls, headers: dict[str, str]) -> dict[str, str]:
        # Secrets such as "Bearer ${COMFY_TOKEN}" stay out of the file.
        expanded: dict[str, str] = {}
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(
                    f"has a header name {name!r} that is not a valid HTTP header name "
                    "(letters, digits and -, no spaces or line breaks)"
                )
            try:
                text = expand_environment(value)
            except ValueError as error:
                raise ValueError(f"{name} {error}") from None
            if any(character in text for character in "\r\n\0"):
                raise ValueError(f"{name} has a line break in its value; headers are one line")
            expanded[name] = text
        return expanded

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def label(self) -> str:
        return self.name or self.id


class FarmConfig(StrictModel):
    """The whole farm: its nodes and the model file each family uses."""

    nodes: tuple[NodeConfig, ...] = Field(min_length=1)
    # A farm config without `models:` gets the default models, as one with a partial list does.
    models: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_MODELS))

    @field_validator("models")
    @classmethod
    def _with_default_models(cls, models: dict[str, str]) -> dict[str, str]:
        return {**DEFAULT_MODELS, **models}

    def node(self, node_id: str) -> NodeConfig:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)


class LoadedConfig(BaseModel):
    """A validated farm config and the file it came from (for messages)."""

    model_config = ConfigDict(frozen=True)

    farm: FarmConfig
    path: Path


def resolve_config_path(explicit: Path | None = None) -> Path:
    """Pick the farm file: `--config`, then $IMGEN_TUI_CONFIG, then the user's, then the sample."""
    candidates = farm_config_candidates(explicit)
    named = candidates[: len(candidates) - 2]  # flag and environment must exist when given
    for path in named:
        if not path.is_file():
            source = "--config" if explicit is not None and path == explicit else CONFIG_ENV_VAR
            raise ConfigError(
                f"{path}: no such config file (named by {source}); "
                "check the path or copy config/gpus.yaml there as a start."
            )
        return path
    user_file, sample = candidates[-2], candidates[-1]
    return user_file if user_file.is_file() else sample


def load_config(explicit: Path | None = None) -> LoadedConfig:
    path = resolve_config_path(explicit)
    return LoadedConfig(farm=parse_farm_config(_read_text(path), path), path=path)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: is not UTF-8 text ({error.reason}); save it as UTF-8."
        ) from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror}).") from None


def parse_farm_config(text: str, path: Path) -> FarmConfig:
    """Validate YAML text as a farm config, raising one readable `ConfigError`."""
    document = load_yaml_model(
        text, path, FarmConfig, what="a 'nodes:' list (see config/gpus.yaml)"
    )
    _check_unique_ids(document.value, document, path)
    return document.value


def _check_unique_ids(farm: FarmConfig, document: YamlDocument[FarmConfig], path: Path) -> None:
    seen: set[str] = set()
    for index, node in enumerate(farm.nodes):
        if node.id in seen:
            loc = ("nodes", index, "id")
            raise ConfigError(
                f"{path}, line {document.line_of(loc)}: {format_loc(loc)} {node.id!r} is used by "
                "an earlier node; every node needs its own id."
            )
        seen.add(node.id)
