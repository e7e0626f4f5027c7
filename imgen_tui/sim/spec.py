"""What a simulated node is: its declared shape, installed models and speed."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from imgen_tui.config import DEFAULT_MODELS, NATIVE_PIXELS, Tier
from imgen_tui.locations import bundled_dir
from imgen_tui.yamlfile import ConfigError, StrictModel, load_yaml_model


class SimNodeSpec(StrictModel):
    id: str
    name: str = ""
    tier: Tier = "standard"
    vram_gb: float = 8
    capabilities: tuple[str, ...] = ("sd15",)
    max_resolution: int = 1024
    max_batch: int = 1
    seconds_per_step: dict[str, float] = Field(default_factory=lambda: {"sd15": 0.1})
    upscale_seconds: float = 2.0
    #: an aux preprocessor's run (DWPose, Depth Anything): its detector model, per prompt
    preprocess_seconds: float = 0.0
    load_seconds: float = 0.0
    #: charged when a prompt's LoRA stack (files or strengths) differs from the last one's
    patch_seconds: float = 0.0
    #: per prompt whatever its size, like text encoding and VAE decoding: half before the
    #: first sampler step, half after the last
    fixed_seconds: float = 0.0
    #: each prompt's step time varies uniformly by up to this share (0.1 = ±10%)
    jitter: float = 0.0
    #: model folder (checkpoints, loras, upscale_models, controlnet, ...) -> file names
    models: dict[str, list[str]] = Field(default_factory=dict)
    #: custom-node classes this node pretends to have (IP-Adapter, AnimateDiff...)
    extra_classes: tuple[str, ...] = ()
    #: core classes an older ComfyUI on this node does not have yet (Flux's, say)
    missing_classes: tuple[str, ...] = ()
    comfyui_version: str = "0.3.64"

    def step_seconds(self, family: str, width: int, height: int) -> float:
        per_step = self.seconds_per_step.get(family)
        if per_step is None:
            per_step = max(self.seconds_per_step.values(), default=0.1) * 2
        native = NATIVE_PIXELS.get(family, 512 * 512)
        return per_step * (width * height) / native

    def scaled(self, factor: float) -> SimNodeSpec:
        """The same node running `factor` times slower (0 makes every job instant)."""
        return self.model_copy(
            update={
                "seconds_per_step": {k: v * factor for k, v in self.seconds_per_step.items()},
                "upscale_seconds": self.upscale_seconds * factor,
                "preprocess_seconds": self.preprocess_seconds * factor,
                "load_seconds": self.load_seconds * factor,
                "patch_seconds": self.patch_seconds * factor,
                "fixed_seconds": self.fixed_seconds * factor,
            }
        )


class SimFarmSpec(StrictModel):
    nodes: tuple[SimNodeSpec, ...] = Field(min_length=1)
    models: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_MODELS))


def load_demo_farm(path: Path | None = None) -> SimFarmSpec:
    path = path or bundled_dir("config") / "demo.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read ({error}).") from None
    return load_yaml_model(text, path, SimFarmSpec, what="a 'nodes:' list").value


def family_of_checkpoint(farm_models: dict[str, str], checkpoint: str) -> str:
    """Guess a checkpoint's family from the farm's model table, then from its name."""
    for family, name in farm_models.items():
        if name == checkpoint:
            return family
    lowered = checkpoint.lower()
    if "flux" in lowered:
        return "flux"
    if "xl" in lowered or "pony" in lowered or "illustrious" in lowered:
        return "sdxl"
    return "sd15"
