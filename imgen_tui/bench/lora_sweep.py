"""The LoRA-sweep bench: re-patches and makespan with LoRA-stack affinity on and off.

A showcase sweep (4 LoRAs x 4 strengths x 2 seeds) runs on a simulated copy
of the seed farm whose nodes charge their `patch_seconds` whenever a prompt's
LoRA stack differs from the previous prompt's, as ComfyUI re-patches the
loaded weights. Both figures are measured from the run: re-patches counted
by the simulated nodes, makespan on the clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from imgen_tui.config import DEFAULT_MODELS, FarmConfig
from imgen_tui.graphs import load_library, with_values
from imgen_tui.graphs.graph import Graph
from imgen_tui.graphs.inject import LoraSpec, inject_loras
from imgen_tui.locations import bundled_dir
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import load_demo_farm

SWEEP_LORAS = (
    "detail-tweaker.safetensors",
    "film-grain.safetensors",
    "watercolor-style.safetensors",
    "cinematic-light.safetensors",
)
SWEEP_STRENGTHS = (0.0, 0.4, 0.7, 1.0)
SWEEP_SEEDS = (11, 12)
SWEEP_STEPS = 10


@dataclass(frozen=True)
class SweepRow:
    affinity: bool
    jobs: int
    patches: int
    makespan: float


def sweep_graphs(steps: int = SWEEP_STEPS) -> list[Graph]:
    """The sweep in the order a person asks for it: per LoRA, per strength, per seed."""
    template = load_library([bundled_dir("workflows")])["sd15_txt2img"]
    base = template.render({"prompt": "a lighthouse at dusk", "steps": steps}, DEFAULT_MODELS)
    graphs: list[Graph] = []
    for name in SWEEP_LORAS:
        for strength in SWEEP_STRENGTHS:
            with_lora = inject_loras(base, [LoraSpec(name, strength)])
            graphs.extend(with_values(with_lora, {"seed": seed}) for seed in SWEEP_SEEDS)
    return graphs


async def lora_sweep_row(affinity: bool, scale: float) -> SweepRow:
    specs = [
        spec.scaled(scale).model_copy(update={"load_seconds": 0.0})
        for spec in load_demo_farm().nodes
    ]
    jobs = [JobSpec.from_graph(graph, "sd15") for graph in sweep_graphs()]
    farm = SimFarm(specs, farm_models=dict(DEFAULT_MODELS), previews=False)
    async with farm:
        config = FarmConfig.model_validate(farm.farm_config())
        async with Scheduler(config, affinity=affinity, health_interval=30) as scheduler:
            started = time.monotonic()
            scheduler.submit_many(jobs)
            await scheduler.wait_idle()
            makespan = time.monotonic() - started
        return SweepRow(affinity, len(jobs), sum(n.lora_patches for n in farm.nodes), makespan)
