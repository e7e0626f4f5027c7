"""Running `imgen-tui` as a real subprocess, the way a user (or a crash) meets it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

CLI = [sys.executable, "-m", "imgen_tui"]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "160", **(env or {})},
    )


def home_dirs(root: Path) -> dict[str, str]:
    """XDG dirs and TMPDIR under `root`: no test touches the user's files, and what a
    killed process leaves (a demo farm's folders) goes when pytest clears `root`."""
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    return {
        "TMPDIR": str(root / "tmp"),
        "XDG_CONFIG_HOME": str(root / "config"),
        "XDG_STATE_HOME": str(root / "state"),
        "XDG_CACHE_HOME": str(root / "cache"),
        "XDG_DATA_HOME": str(root / "data"),
        "IMGEN_TUI_CONFIG": "",
    }


def start_sim(
    farm_file: Path, env: dict[str, str], *, speed: float = 0.0, nodes: int = 4
) -> subprocess.Popen[str]:
    """`imgen-tui sim` in its own process; returns once its farm config is written."""
    command = [*CLI, "sim", "--nodes", str(nodes), "--port", "0", "--speed", str(speed)]
    sim = subprocess.Popen(
        [*command, "--write-config", str(farm_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    deadline = time.monotonic() + 30
    while not farm_file.exists():
        if sim.poll() is not None or time.monotonic() > deadline:
            sim.kill()
            raise AssertionError(f"the simulator did not start: {sim.communicate()}")
        time.sleep(0.05)
    return sim


def farm_ports(farm_file: Path) -> list[int]:
    return [node["port"] for node in yaml.safe_load(farm_file.read_text())["nodes"]]
