"""`imgen-tui sim`: a simulated ComfyUI farm in the foreground, for curl, the app or any client."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from imgen_tui.locations import user_cache_dir
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import load_demo_farm
from imgen_tui.yamlfile import ConfigError


class PortInUse(ConfigError):
    pass


async def sim_command(
    console: Console,
    *,
    count: int,
    host: str,
    base_port: int,
    speed: float,
    config_out: Path | None,
    farm_file: Path | None,
    stop: asyncio.Event | None = None,
) -> int:
    # The handlers come first: a SIGTERM while the nodes start must still remove their folders.
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    farm = SimFarm.from_spec(load_demo_farm(farm_file), count, speed=speed)
    try:
        await _start(console, farm, host, base_port, count, speed, config_out)
        await stop.wait()
    finally:
        await farm.stop()  # whatever happened: the nodes' temporary folders go with them
    console.print("Simulated farm stopped.")
    return 0


async def _start(
    console: Console,
    farm: SimFarm,
    host: str,
    base_port: int,
    count: int,
    speed: float,
    config_out: Path | None,
) -> None:
    try:
        await farm.start(host, base_port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {base_port} (or one of the next {count - 1}) is already in use; pass "
                "--port 0 for free ports or another base port."
            ) from None
        raise
    out = farm.write_farm_config(config_out or user_cache_dir() / "sim-farm.yaml")
    table = Table(title=f"Simulated ComfyUI farm ({count} nodes, speed x{speed:g})")
    for column in ("node", "tier", "url", "checkpoints"):
        table.add_column(column)
    for node in farm.nodes:
        table.add_row(
            node.spec.id,
            node.spec.tier,
            node.url,
            ", ".join(node.spec.models.get("checkpoints", [])),
        )
    console.print(table)
    console.print(f"Farm config written to {out}")
    console.print(f"Try: imgen-tui nodes --config {out}")
    console.print("Press Ctrl-C to stop.")
