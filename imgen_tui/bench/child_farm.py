"""The simulated farm in a process of its own, for benchmarks that time the app.

A real farm is other machines: its image making, PNG encoding and HTTP
serving do not share the app's event loop, its GIL or (much of) its CPU. Run
in the app's process, the simulator did all three — its aiohttp servers on
the app's loop, its picture and preview making in the app's threads — and the
UI benchmark measured the simulator along with the app. Here it runs as
`imgen-tui sim --port 0` in a child process, and the app reaches it over
loopback like any farm. It runs at a lower priority (`FARM_NICENESS`): on
two cores it would otherwise still take half the CPU the app needs, which a
farm of other machines never does; it gets what the app leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from imgen_tui.config import FarmConfig, load_config
from imgen_tui.yamlfile import ConfigError

READY_SECONDS = 60.0  # a loaded 2-core machine needs a while to import and start 4 nodes
STOP_SECONDS = 15.0
FARM_NICENESS = 10  # the farm yields the CPU to the app, as other machines' work would


class FarmDidNotStart(RuntimeError):
    pass


@dataclass
class ChildFarm:
    config: FarmConfig
    process: asyncio.subprocess.Process

    async def finished_at(self, node_id: str, prompt_id: str) -> float | None:
        """When the node sent the prompt's execution_success (epoch seconds), from its /history."""
        node = next(node for node in self.config.nodes if node.id == node_id)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{node.base_url}/history/{prompt_id}") as answer,
        ):
            history = await answer.json()
        entry = history.get(prompt_id)
        for kind, data in entry["status"]["messages"] if entry else ():
            if kind == "execution_success":
                return float(data["timestamp"]) / 1000
        return None


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(nothing on stderr)"


def _read_config(farm_file: Path) -> FarmConfig | None:
    """The farm config once `imgen-tui sim` has written it whole, else None."""
    if not farm_file.exists():
        return None
    try:
        return load_config(farm_file).farm
    except ConfigError:  # written but not yet whole: read again
        return None


async def _wait_for_config(
    process: asyncio.subprocess.Process, farm_file: Path, errors: Path
) -> FarmConfig:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise FarmDidNotStart(
                f"the simulated farm (imgen-tui sim) exited with code {process.returncode} "
                f"before it was ready: {_last_line(errors)}"
            )
        config = await asyncio.to_thread(_read_config, farm_file)
        if config is not None:
            return config
        await asyncio.sleep(0.05)
    raise FarmDidNotStart(
        f"the simulated farm (imgen-tui sim) was not ready after {READY_SECONDS:g} s; "
        "the machine may be overloaded"
    )


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Ctrl-C as an operator would (the nodes remove their folders), then a kill if need be."""
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(process.wait(), STOP_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def farm_in_child_process(
    *, nodes: int = 4, speed: float = 1.0, farm: Path | None = None, niceness: int = FARM_NICENESS
) -> AsyncIterator[ChildFarm]:
    """`imgen-tui sim` on free loopback ports for as long as the block runs."""
    with tempfile.TemporaryDirectory(prefix="imgen-child-farm-") as folder:
        farm_file, errors = Path(folder) / "farm.yaml", Path(folder) / "stderr.txt"
        arguments = ["--nodes", str(nodes), "--port", "0", "--speed", f"{speed:g}"]
        if farm is not None:
            arguments += ["--farm", str(farm)]
        with errors.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "imgen_tui",
                "sim",
                *arguments,
                "--write-config",
                str(farm_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
                preexec_fn=functools.partial(os.nice, niceness) if niceness else None,
            )
        try:
            config = await _wait_for_config(process, farm_file, errors)
            yield ChildFarm(config, process)
        finally:
            await _stop(process)
