"""`imgen-tui nodes --watch`: the GPU dashboard as a Rich live table, for use without the TUI.

It runs the scheduler's health checks and event streams (and submits nothing),
so every number is the one F2 shows: `farm_snapshot` of the same model. All
the work on the nodes is other clients' here, and is shown so. Ctrl-C ends it
with exit 0: watching has no outcome to report.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from imgen_tui.config import FarmConfig
from imgen_tui.graphs import load_library
from imgen_tui.locations import bundled_dir
from imgen_tui.scheduler.farm_stats import (
    FarmSnapshot,
    farm_line,
    farm_snapshot,
    memory_text,
    now_text,
    since_text,
    spark_text,
    speed_text,
)
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import load_demo_farm

STATE_STYLE = {"up": "green", "degraded": "yellow", "down": "red"}
#: how many drafts `--demo` keeps the simulated farm busy with, so the table moves
DEMO_DRAFTS = 16


#: below this width the sparklines, RAM and the loaded model are left out (they would crop)
WIDE_COLUMNS = 140


def dashboard_table(snapshot: FarmSnapshot, width: int = WIDE_COLUMNS) -> Group:
    """One row per node and the farm line under it; fewer columns on a narrow terminal."""
    wide = width >= WIDE_COLUMNS
    table = Table(title="GPU dashboard", title_justify="left", box=box.SIMPLE_HEAD)
    columns = ["node", "tier", "health", "q", "now", "VRAM", "s/step", "10m"]
    if wide:
        columns += ["RAM", "images", "queue depth", "loaded"]
    for column in columns:
        table.add_column(column, no_wrap=column not in ("health", "now", "s/step"))
    for row in snapshot.nodes:
        health = Text(f"{row.health} {since_text(row.since)}", STATE_STYLE.get(row.health, ""))
        if row.health != "up":
            health.append(f"\n{row.reason}", "dim")
        elif row.last_error:
            health.append(f"\nlast: {row.last_error}", "dim")
        now = Text(now_text(row), "yellow" if row.idle_reasons else "")
        for reason in row.idle_reasons[1:]:
            now.append(f"\n{reason}", "yellow")
        cells: list[Text | str] = [
            Text(row.id, "bold"),
            row.tier,
            health,
            f"{row.ours}+{row.others}",
            now,
            memory_text(row.vram_used, row.vram_total),
            speed_text(row).replace(", ", "\n"),
            str(row.images_recent),
        ]
        if wide:
            cells += [
                memory_text(row.ram_used, row.ram_total),
                spark_text(row.throughput[-12:]),
                spark_text(row.queue_depth[-12:]),
                (row.checkpoint or "-").removesuffix(".safetensors"),
            ]
        table.add_row(*cells)
    legend = Text("q: our jobs + other clients'; sparklines: the last two minutes", "dim")
    return Group(table, Text(farm_line(snapshot)), legend)


async def watch_nodes(
    farm: FarmConfig,
    console: Console,
    *,
    interval: float = 1.0,
    refreshes: int | None = None,
    demo_drafts: int = 0,
) -> int:
    """Redraw every `interval` until Ctrl-C (or `refreshes` redraws, for tests)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    scheduler = Scheduler(farm, health_interval=2.0)
    try:
        await scheduler.start()
        if demo_drafts:
            scheduler.submit_many(_drafts(demo_drafts, farm.models))
        # Without a terminal (a pipe, a log) Live would print once, at the end: each
        # refresh is printed in full instead, one table after the other.
        live = Live(console=console, auto_refresh=False) if console.is_terminal else None
        with live or contextlib.nullcontext():
            count = 0
            while not stop.is_set():
                snapshot = farm_snapshot(
                    scheduler.nodes, scheduler.jobs.values(), scheduler.stats, time.monotonic()
                )
                frame = dashboard_table(snapshot, console.width)
                if live is not None:
                    live.update(frame, refresh=True)
                else:
                    console.print(frame)
                count += 1
                if refreshes is not None and count >= refreshes:
                    break
                if demo_drafts and all(job.state.finished for job in scheduler.jobs.values()):
                    scheduler.submit_many(_drafts(demo_drafts, farm.models))  # keep it moving
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        with contextlib.suppress(Exception):
            await scheduler.cancel_all()
        await scheduler.stop()
    return 0


async def watch_command(
    farm: FarmConfig | None, console: Console, *, demo: bool = False, interval: float = 1.0
) -> int:
    if demo:
        sim_farm = SimFarm.from_spec(load_demo_farm(), previews=False)
        async with sim_farm:
            return await watch_nodes(
                sim_farm.config(), console, interval=interval, demo_drafts=DEMO_DRAFTS
            )
    assert farm is not None
    return await watch_nodes(farm, console, interval=interval)


def _drafts(count: int, models: dict[str, str]) -> list[JobSpec]:
    template = load_library([bundled_dir("workflows")])["sd15_txt2img"]
    return [
        JobSpec.from_graph(
            template.render({"prompt": "a lighthouse at dusk", "seed": seed}, models),
            "sd15",
        )
        for seed in range(count)
    ]
