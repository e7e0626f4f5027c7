"""`config/llm.yaml` and the enhancement styles, read once, checked strictly."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field

from imgen_tui.locations import bundled_dir, user_config_dir
from imgen_tui.yamlfile import ConfigError, StrictModel, load_yaml_model


class StageModel(StrictModel):
    model: str
    num_ctx: int = Field(default=8192, ge=512)
    temperature: float = Field(default=0.2, ge=0, le=2)
    enabled: bool = True


class LlmConfig(StrictModel):
    host: str = "http://127.0.0.1:11434"
    timeout_seconds: float = Field(default=300, gt=0)
    keep_alive: str = "10m"
    interpreter: StageModel = StageModel(model="hermes3:8b")
    engineer: StageModel = StageModel(model="phi4:14b")
    vision: StageModel = StageModel(model="minicpm-v", num_ctx=4096)


class EnhancementStyle(StrictModel):
    instructions: str
    tags: tuple[str, ...] = ()


def _first_file(name: str, path: Path | None) -> Path:
    candidates = [path] if path else [user_config_dir() / name]
    candidates.append(bundled_dir("config") / name)
    return next(p for p in candidates if p is not None and p.is_file())


def load_llm_config(path: Path | None = None) -> LlmConfig:
    chosen = _first_file("llm.yaml", path)
    text = chosen.read_text(encoding="utf-8")
    return load_yaml_model(text, chosen, LlmConfig, what="a mapping of settings").value


def load_styles(path: Path | None = None) -> dict[str, EnhancementStyle]:
    chosen = _first_file("enhancement_styles.yaml", path)
    try:
        raw = yaml.safe_load(chosen.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{chosen}: cannot be read as YAML ({error}).") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{chosen}: expected style names mapped to instructions and tags.")
    try:
        return {str(name): EnhancementStyle.model_validate(body) for name, body in raw.items()}
    except ValueError as error:
        raise ConfigError(f"{chosen}: a style is not valid: {error}") from None
