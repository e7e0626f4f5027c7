"""`config/explorer.yaml`: the LoRA explorer's sweep strengths, fixed seeds and families."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from imgen_tui.config import Tier
from imgen_tui.flows.round_maker import MoreLikeThisConfig
from imgen_tui.locations import bundled_dir, user_config_dir
from imgen_tui.yamlfile import ConfigError, StrictModel, load_yaml_model

Strength = float


class StrengthPair(StrictModel):
    model: float = Field(default=0.8, ge=-4, le=4)
    clip: float = Field(default=0.8, ge=-4, le=4)


class ExplorerConfig(StrictModel):
    strengths: list[Strength] = Field(default_factory=lambda: [0.0, 0.4, 0.7, 1.0], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [1234, 5678], min_length=1, max_length=8)
    family: str = "sd15"
    workflows: dict[str, str] = Field(
        default_factory=lambda: {"sd15": "sd15_txt2img", "sdxl": "sdxl_txt2img"}
    )
    strength: StrengthPair = StrengthPair()
    nudge: float = Field(default=0.1, gt=0, le=1)
    min_tier: Tier = "draft"
    prompt: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    more_like_this: MoreLikeThisConfig = MoreLikeThisConfig()
    upscale_workflow: str = "upscale_esrgan"

    @property
    def sweep(self) -> list[float]:
        """The strengths to sweep, without 0: the baseline is always made, once per seed."""
        return sorted({round(s, 4) for s in self.strengths if s != 0})


def explorer_config_path(path: Path | None = None) -> Path:
    candidates = [path] if path else [user_config_dir() / "explorer.yaml"]
    candidates.append(bundled_dir("config") / "explorer.yaml")
    return next(p for p in candidates if p is not None and p.is_file())


def load_explorer_config(path: Path | None = None) -> ExplorerConfig:
    chosen = explorer_config_path(path)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{chosen}: cannot be read ({error.strerror}).") from None
    return parse_explorer_config(text, chosen)


def parse_explorer_config(text: str, path: Path) -> ExplorerConfig:
    document = load_yaml_model(text, path, ExplorerConfig, what="a mapping of settings")
    config = document.value
    if config.family not in config.workflows:
        raise ConfigError(
            f"{path}, line {document.line_of(('family',))}: family '{config.family}' has no "
            f"template under workflows:; add one or use {', '.join(config.workflows)}."
        )
    if len(set(config.seeds)) != len(config.seeds):
        raise ConfigError(
            f"{path}, line {document.line_of(('seeds',))}: seeds repeat a seed; "
            "list each seed once."
        )
    return config
