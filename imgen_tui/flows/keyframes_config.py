"""`config/keyframes.yaml`: how the keyframe stills enter a render, and how strongly.

`keyframe_images` is `reference` (the first locked still is the IP-Adapter
subject of every render: who is in the clip), `latent` (each locked still
is the render's starting latent at its frames: what each moment looks like)
or `both`, the default — an operator who locked a still for a moment
expects that moment of the video to look like it, and the subject to stay
the same between moments. `latent_denoise` is the sampler's denoise when
the render starts from the stills: lower keeps more of them, higher moves more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from imgen_tui.locations import bundled_dir, user_config_dir
from imgen_tui.yamlfile import ConfigError, StrictModel, load_yaml_model

KeyframeImages = Literal["reference", "latent", "both"]
CONFIG_NAME = "keyframes.yaml"


class KeyframeConfig(StrictModel):
    keyframe_images: KeyframeImages = "both"
    latent_denoise: float = Field(default=0.75, gt=0, lt=1)

    @property
    def as_reference(self) -> bool:
        return self.keyframe_images in ("reference", "both")

    @property
    def as_latent(self) -> bool:
        return self.keyframe_images in ("latent", "both")


def keyframe_config_path(path: Path | None = None) -> Path:
    candidates = [path] if path else [user_config_dir() / CONFIG_NAME]
    candidates.append(bundled_dir("config") / CONFIG_NAME)
    return next(p for p in candidates if p is not None and p.is_file())


def load_keyframe_config(path: Path | None = None) -> KeyframeConfig:
    chosen = keyframe_config_path(path)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{chosen}: cannot be read ({error.strerror}).") from None
    return load_yaml_model(text, chosen, KeyframeConfig, what="a mapping of settings").value
