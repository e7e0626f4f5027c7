"""Many jobs from one spec (seed 003): seeds, prompt lists and parameter sweeps.

Each variation is a mapping of parameter kinds to values, ready for
`graphs.with_values`. Sweeps put the expensive axis (the checkpoint)
outermost, so consecutive jobs share a model and nodes swap as little as
possible.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from typing import Any, Literal

SeedStrategy = Literal["random", "increment", "fixed"]
SweepMode = Literal["cartesian", "zip"]

MAX_SEED = 2**32 - 1
EXPENSIVE_AXES = ("checkpoint", "lora_name")  # outermost first


def seeds(
    strategy: SeedStrategy, count: int, base: int = 0, rng: random.Random | None = None
) -> list[int]:
    if strategy == "fixed":
        return [base] * count
    if strategy == "increment":
        return [(base + offset) % (MAX_SEED + 1) for offset in range(count)]
    rng = rng or random.Random()
    return [rng.randint(0, MAX_SEED) for _ in range(count)]


def sweep(axes: Mapping[str, Sequence[Any]], mode: SweepMode = "cartesian") -> list[dict[str, Any]]:
    """All combinations (cartesian) or position-wise pairs (zip) of the axes' values."""
    if not axes:
        return [{}]
    names = sorted(axes, key=_axis_order)
    if mode == "zip":
        lengths = {len(axes[name]) for name in names}
        if len(lengths) > 1:
            detail = ", ".join(f"{name} has {len(axes[name])}" for name in names)
            raise ValueError(f"a zipped sweep needs axes of equal length ({detail})")
        return [
            dict(zip(names, values, strict=True))
            for values in zip(*(axes[n] for n in names), strict=True)
        ]
    return [
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(axes[n] for n in names))
    ]


def variations(
    count: int,
    *,
    seed_strategy: SeedStrategy = "random",
    base_seed: int = 0,
    prompts: Sequence[str] = (),
    axes: Mapping[str, Sequence[Any]] | None = None,
    mode: SweepMode = "cartesian",
    rng: random.Random | None = None,
) -> list[dict[str, Any]]:
    """`count` jobs per sweep point, prompts cycled, expensive axis outermost.

    Every sweep point gets the same seeds, so points differ only in the swept
    values: that is what makes a sweep a comparison.
    """
    if count < 1:
        raise ValueError("a batch needs at least one image")
    points = sweep(axes or {}, mode)
    jobs: list[dict[str, Any]] = []
    seed_list = seeds(seed_strategy, count, base_seed, rng)
    for point in points:
        for index in range(count):
            job = dict(point)
            job["seed"] = seed_list[index]
            if prompts:
                job["positive_prompt"] = prompts[index % len(prompts)]
            jobs.append(job)
    return jobs


def _axis_order(name: str) -> tuple[int, str]:
    return (EXPENSIVE_AXES.index(name) if name in EXPENSIVE_AXES else len(EXPENSIVE_AXES), name)
