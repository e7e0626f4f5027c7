"""`imgen-tui bench scheduler`: our scheduler against other policies and the optimum.

Every figure comes from a real run against simulated nodes over loopback
sockets; nothing is computed from a model except the optimal makespan, which
is exact for the nodes' mean speeds.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from imgen_tui.bench.baselines import FarmClients, even_split, swarm_policy
from imgen_tui.config import DEFAULT_MODELS, FarmConfig, load_config
from imgen_tui.graphs import load_library, with_values
from imgen_tui.graphs.graph import Graph
from imgen_tui.locations import bundled_dir
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import SimNodeSpec, load_demo_farm

DRAFT_STEPS = 10
JOBS = 20


@dataclass
class MakespanRow:
    policy: str
    makespan: float
    idle_share: float  # GPU idle between consecutive jobs / busy time, worst node


def seed_farm(scale: float, jitter: float) -> list[SimNodeSpec]:
    """The seed's four GPUs at demo speeds, checkpoint preloaded, jobs varying by `jitter`."""
    return [
        spec.scaled(scale).model_copy(update={"jitter": jitter, "load_seconds": 0.0})
        for spec in load_demo_farm().nodes
    ]


def optimal_makespan(job_seconds: Sequence[float], jobs: int) -> float:
    """Exact optimum for identical jobs on machines of these speeds.

    A makespan T is feasible iff the machines can finish sum(floor(T/d_i))
    >= jobs; the optimum is the smallest candidate k*d_i that is feasible.
    """
    candidates = sorted({k * d for d in job_seconds for k in range(1, jobs + 1)})
    for candidate in candidates:
        if sum(int(candidate / d + 1e-9) for d in job_seconds) >= jobs:
            return candidate
    raise ValueError("no feasible makespan")


def draft_graphs(count: int, size: int = 512, steps: int = DRAFT_STEPS) -> list[Graph]:
    template = load_library([bundled_dir("workflows")])["sd15_txt2img"]
    base = template.render(
        {"prompt": "a lighthouse at dusk", "width": size, "height": size, "steps": steps},
        DEFAULT_MODELS,
    )
    return [with_values(base, {"seed": seed}) for seed in range(1, count + 1)]


def idle_share(farm: SimFarm, since: float) -> float:
    worst = 0.0
    for node in farm.nodes:
        runs = sorted((start, end) for start, end in node.timeline if start >= since)
        if len(runs) < 2:
            continue
        busy = sum(end - start for start, end in runs)
        gaps = sum(max(0.0, nxt[0] - prev[1]) for prev, nxt in itertools.pairwise(runs))
        worst = max(worst, gaps / busy)
    return worst


def mean_job_seconds(farm: SimFarm, since: float) -> list[float]:
    """Each node's measured mean prompt time: sampling plus decode, save and messages."""
    means = []
    for node in farm.nodes:
        runs = [end - start for start, end in node.timeline if start >= since]
        means.append(statistics.fmean(runs) if runs else float("inf"))
    return means


async def _with_farm(
    specs: list[SimNodeSpec], body: Callable[[SimFarm], Awaitable[float]]
) -> tuple[float, float, list[float]]:
    farm = SimFarm(specs, farm_models=dict(DEFAULT_MODELS), previews=False)
    async with farm:
        started = time.monotonic()
        makespan = await body(farm)
        return makespan, idle_share(farm, started), mean_job_seconds(farm, started)


async def ours(farm: SimFarm, *, learn: bool) -> float:
    config = FarmConfig.model_validate(farm.farm_config())
    async with Scheduler(config, learn_speed=learn, health_interval=30) as scheduler:
        specs = [JobSpec.from_graph(graph, "sd15") for graph in draft_graphs(JOBS)]
        started = time.monotonic()
        scheduler.submit_many(specs)
        await scheduler.wait_idle()
        return time.monotonic() - started


async def baseline(
    farm: SimFarm, policy: Callable[[FarmClients, list[Graph]], Awaitable[None]]
) -> float:
    async with FarmClients([node.url for node in farm.nodes]) as clients:
        started = time.monotonic()
        await policy(clients, draft_graphs(JOBS))
        return time.monotonic() - started


async def makespan_rows(scale: float, jitter: float) -> tuple[list[MakespanRow], float, float]:
    """Rows per policy, the optimum for the configured speeds, and for measured job times."""
    specs = seed_farm(scale, jitter)
    rows = []
    runs: list[tuple[str, Callable[[SimFarm], Awaitable[float]]]] = [
        ("imgen-tui, speeds learned online", lambda farm: ours(farm, learn=True)),
        ("imgen-tui, speeds known", lambda farm: ours(farm, learn=False)),
        ("SwarmUI (2 per backend, list order)", lambda farm: baseline(farm, swarm_policy)),
        ("even split", lambda farm: baseline(farm, even_split)),
    ]
    measured: list[float] = []
    for name, body in runs:
        makespan, idle, means = await _with_farm(specs, body)
        rows.append(MakespanRow(name, makespan, idle))
        if not measured:
            measured = means
    job_seconds = [spec.step_seconds("sd15", 512, 512) * DRAFT_STEPS for spec in specs]
    return rows, optimal_makespan(job_seconds, JOBS), optimal_makespan(measured, JOBS)


@dataclass
class LatencyRow:
    label: str
    nodes: int
    jobs: int
    enqueue_ms: float
    p50_ms: float
    p99_ms: float
    dispatch_cpu_us: float
    dispatch_median_us: float


async def latency_row(nodes: int, jobs: int) -> LatencyRow:
    """Zero-time nodes in their own process, tiny images: what is left is the scheduler's cost.

    The farm runs as `imgen-tui sim --speed 0` in a subprocess so its work does
    not share the scheduler's event loop, as real GPUs would not.
    """
    with tempfile.TemporaryDirectory() as folder:
        farm_file = Path(folder) / "farm.yaml"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "imgen_tui",
            "sim",
            "--nodes",
            str(nodes),
            "--port",
            "0",
            "--speed",
            "0",
            "--write-config",
            str(farm_file),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            for _ in range(600):
                if farm_file.exists():
                    break
                await asyncio.sleep(0.05)
            config = load_config(farm_file).farm
            async with Scheduler(config, health_interval=60) as scheduler:
                graphs = draft_graphs(jobs, size=64, steps=1)
                job_specs = [JobSpec.from_graph(graph, "sd15") for graph in graphs]
                for _ in range(600):
                    if all(runtime.can_take() for runtime in scheduler.nodes.values()):
                        break
                    await asyncio.sleep(0.05)
                cpu = _DispatchTimer(scheduler)
                started = time.perf_counter()
                scheduler.submit_many(job_specs)
                enqueue = time.perf_counter() - started
                await scheduler.wait_idle()
                latencies = sorted(scheduler.dispatch_latencies)
        finally:
            process.send_signal(signal.SIGINT)
            await process.wait()
    return LatencyRow(
        label=f"{nodes} zero-time nodes",
        nodes=nodes,
        jobs=jobs,
        enqueue_ms=enqueue * 1000,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99) - 1] * 1000,
        dispatch_cpu_us=cpu.mean_us(),
        dispatch_median_us=cpu.median_us(),
    )


class _DispatchTimer:
    """Wraps one scheduler's dispatch pass to time it: the per-dispatch cost."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.samples: list[float] = []
        inner = scheduler._dispatch_once

        def timed() -> None:
            started = time.perf_counter()
            try:
                inner()
            finally:
                self.samples.append(time.perf_counter() - started)

        scheduler._dispatch_once = timed  # type: ignore[method-assign]

    def median_us(self) -> float:
        return statistics.median(self.samples) * 1e6 if self.samples else 0.0

    def mean_us(self) -> float:
        return statistics.fmean(self.samples) * 1e6 if self.samples else 0.0


async def model_swaps(affinity: bool, scale: float) -> int:
    """40 interleaved SD1.5/SDXL jobs; how many checkpoint loads the farm did."""
    specs = [
        spec.scaled(scale).model_copy(update={"load_seconds": 2.0 * scale})
        for spec in load_demo_farm().nodes
    ]
    library = load_library([bundled_dir("workflows")])
    jobs = []
    for index in range(40):
        name, family = ("sd15_txt2img", "sd15") if index % 2 == 0 else ("sdxl_txt2img", "sdxl")
        graph = library[name].render(
            {
                "prompt": "a lighthouse",
                "seed": index,
                "steps": 10,
                **({"width": 768, "height": 768} if family == "sdxl" else {}),
            },
            DEFAULT_MODELS,
        )
        jobs.append(JobSpec.from_graph(graph, family))
    farm = SimFarm(specs, farm_models=dict(DEFAULT_MODELS), previews=False)
    async with farm:
        config = FarmConfig.model_validate(farm.farm_config())
        async with Scheduler(config, affinity=affinity, health_interval=30) as scheduler:
            scheduler.submit_many(jobs)
            await scheduler.wait_idle()
        return sum(node.checkpoint_loads for node in farm.nodes)
