"""A node's speed, learned online from the jobs it finishes.

Kept as seconds per step at each family's native size, so a 1024x1024 SDXL
job and a 512x512 SD1.5 job teach the same number per family. Seeded from the
farm config when it has one; otherwise the first job teaches it.
"""

from __future__ import annotations

from collections.abc import Mapping

from imgen_tui.config import NATIVE_PIXELS
from imgen_tui.scheduler.jobs import JobSpec

SMOOTHING = 0.3  # weight of the newest observation


class SpeedModel:
    def __init__(self, seed: Mapping[str, float] | None = None) -> None:
        self.seconds_per_step: dict[str, float] = dict(seed or {})
        self.observations: dict[str, int] = {}

    def observe(self, spec: JobSpec, seconds: float) -> None:
        if spec.steps <= 0 or seconds <= 0:
            return
        scale = spec.pixels / NATIVE_PIXELS.get(spec.family, 512 * 512)
        per_step = seconds / (spec.steps * max(scale, 1e-6))
        count = self.observations.get(spec.family, 0)
        known = self.seconds_per_step.get(spec.family)
        if known is None or count == 0:
            # The first real measurement replaces a configured guess outright.
            self.seconds_per_step[spec.family] = per_step
        else:
            self.seconds_per_step[spec.family] = known + SMOOTHING * (per_step - known)
        self.observations[spec.family] = count + 1
