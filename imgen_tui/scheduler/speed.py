"""A node's speed, learned online from the jobs it finishes.

A job costs a fixed part whatever its size (text encoding, VAE decoding,
saving, the round trips) plus a part per sampler step that scales with the
pixel count. Scaling the whole job by pixels teaches nonsense at sizes far
from native: at 128 px a one-second fixed cost reads as 0.9 s a step, and a
512 px job is then estimated at seventeen times its real length. So the two
parts are learned apart, per family: the step time from the job's own
progress events (the time between its first and last step), the fixed cost
as the rest. Step times are kept at the family's native size, so a 1024x1024
SDXL job and a 512x512 SD1.5 job teach the same kind of number. Seeded from
the farm config when it has one; otherwise the first job teaches it.
"""

from __future__ import annotations

from collections.abc import Mapping

from imgen_tui.config import NATIVE_PIXELS
from imgen_tui.scheduler.jobs import JobSpec

SMOOTHING = 0.3  # weight of the newest observation
UNKNOWN_SPEED = 1.0  # seconds per step when nothing is known yet: a cautious guess


def pixel_scale(spec: JobSpec) -> float:
    """The job's pixels as a share of its family's native size."""
    return max(spec.pixels / NATIVE_PIXELS.get(spec.family, 512 * 512), 1e-6)


def run_seconds(
    spec: JobSpec, seconds_per_step: Mapping[str, float], fixed_seconds: Mapping[str, float]
) -> float:
    """A job's expected run: the fixed part plus its steps at its size.

    A family the node has not run yet borrows its slowest known figures.
    """
    per_step = seconds_per_step.get(spec.family)
    if per_step is None:
        per_step = max(seconds_per_step.values(), default=UNKNOWN_SPEED)
    fixed = fixed_seconds.get(spec.family)
    if fixed is None:
        fixed = max(fixed_seconds.values(), default=0.0)
    return fixed + per_step * spec.steps * pixel_scale(spec)


class SpeedModel:
    def __init__(self, seed: Mapping[str, float] | None = None) -> None:
        self.seconds_per_step: dict[str, float] = dict(seed or {})
        #: seconds per job whatever its size
        self.fixed_seconds: dict[str, float] = {}
        #: the share of the fixed part after the last step (decode, save): what an ETA adds
        self.after_seconds: dict[str, float] = {}
        self.observations: dict[str, int] = {}

    def run_seconds(self, spec: JobSpec) -> float:
        return run_seconds(spec, self.seconds_per_step, self.fixed_seconds)

    def step_seconds(self, spec: JobSpec) -> float | None:
        """Seconds per step at this job's size, if this family's speed is known."""
        per_step = self.seconds_per_step.get(spec.family)
        return None if per_step is None else per_step * pixel_scale(spec)

    def observe(
        self,
        spec: JobSpec,
        seconds: float,
        *,
        sampling: tuple[int, float] | None = None,
        after: float | None = None,
    ) -> None:
        """Learn from a finished job that took `seconds` from its start to its outputs.

        `sampling` is (steps, seconds) between its first and last progress
        event; `after` the time from its last step to its end. Without them
        (events missed, a one-step job) the known fixed part is taken out
        and the rest counts as steps.
        """
        if spec.steps <= 0 or seconds <= 0:
            return
        family = spec.family
        step = self._step_from(sampling)
        if step is not None:
            self._blend(self.fixed_seconds, family, max(0.0, seconds - step * spec.steps))
            if after is not None:
                self._blend(self.after_seconds, family, max(0.0, after))
        else:
            sampled = seconds - self.fixed_seconds.get(family, 0.0)
            if sampled <= 0:
                return
            step = sampled / spec.steps
        self._blend(self.seconds_per_step, family, step / pixel_scale(spec))
        self.observations[family] = self.observations.get(family, 0) + 1

    def observe_sampling(self, spec: JobSpec, sampling: tuple[int, float] | None) -> None:
        """Learn the step time alone: the job also loaded a checkpoint, so its total says little."""
        step = self._step_from(sampling)
        if step is not None:
            self._blend(self.seconds_per_step, spec.family, step / pixel_scale(spec))
            self.observations[spec.family] = self.observations.get(spec.family, 0) + 1

    @staticmethod
    def _step_from(sampling: tuple[int, float] | None) -> float | None:
        if sampling is None or sampling[0] <= 0 or sampling[1] <= 0:
            return None
        return sampling[1] / sampling[0]

    def _blend(self, table: dict[str, float], family: str, value: float) -> None:
        known = table.get(family)
        if known is None or self.observations.get(family, 0) == 0:
            # The first real measurement replaces a configured guess outright.
            table[family] = value
        else:
            table[family] = known + SMOOTHING * (value - known)
