"""The CLI as a new user runs it: real subprocesses, real ports, real exit codes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.cli_helpers import CLI, home_dirs, run_cli, start_sim


@pytest.fixture
def isolated_home(tmp_path: Path) -> dict[str, str]:
    return home_dirs(tmp_path)


def test_sim_then_nodes_as_a_new_user_would(tmp_path: Path, isolated_home: dict[str, str]) -> None:
    farm_file = tmp_path / "farm.yaml"
    sim = start_sim(farm_file, isolated_home)
    try:
        farm = yaml.safe_load(farm_file.read_text())
        assert [node["id"] for node in farm["nodes"]] == [
            "gpu-premium",
            "gpu-quality",
            "gpu-standard",
            "gpu-draft",
        ]
        result = run_cli("nodes", "--config", str(farm_file), env=isolated_home)
        assert result.returncode == 0, result.stderr
        for node in farm["nodes"]:
            assert node["id"] in result.stdout
        assert "ComfyUI 0.3.64" in result.stdout and "unreachable" not in result.stdout
        assert "sdxl✓" in result.stdout
    finally:
        sim.send_signal(signal.SIGINT)
        out, err = sim.communicate(timeout=20)
    assert sim.returncode == 0, err
    assert "Simulated farm stopped." in out


def test_nodes_demo_shows_the_whole_simulated_farm(isolated_home: dict[str, str]) -> None:
    result = run_cli("nodes", "--demo", env=isolated_home)
    assert result.returncode == 0, result.stderr
    assert "gpu-premium" in result.stdout and "gpu-draft" in result.stdout
    assert "flux✓" in result.stdout


def test_nodes_is_readable_at_80_columns(isolated_home: dict[str, str]) -> None:
    """Issue 12, item 8: at 80 columns the table cut versions and states to 'Comf…'."""
    result = run_cli("nodes", "--demo", env={**isolated_home, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "…" not in result.stdout
    assert result.stdout.count("up, ComfyUI 0.3.64") == 4
    for node in ("gpu-premium", "gpu-quality", "gpu-standard", "gpu-draft"):
        assert any(line.startswith(node) for line in lines)
    words = result.stdout.split()
    for capability in ("flux_fp8✓", "controlnet✓", "ipadapter✓", "faceid✓"):
        assert capability in words  # whole, never split across lines
    assert "queue 0 running, 0 waiting" in result.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_node_is_reported_and_exits_1(
    tmp_path: Path, isolated_home: dict[str, str]
) -> None:
    config = tmp_path / "farm.yaml"
    config.write_text(
        f"nodes:\n  - {{id: gpu-off, vram_gb: 8, tier: draft, host: 127.0.0.1, port: {_free_port()}}}\n"
    )
    result = run_cli("nodes", "--config", str(config), env=isolated_home)
    assert result.returncode == 1
    assert "unreachable" in result.stdout and "gpu-off" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_bad_config_is_one_line_on_stderr_and_exit_2(
    tmp_path: Path, isolated_home: dict[str, str]
) -> None:
    config = tmp_path / "farm.yaml"
    config.write_text("nodes:\n  - {id: a, vram_gb: 8, tier: turbo, host: h, port: 1}\n")
    result = run_cli("nodes", "--config", str(config), env=isolated_home)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "farm.yaml, line 2: nodes[0].tier must be one of" in lines[0]
    assert "Traceback" not in result.stderr


def test_sim_on_a_busy_port_says_so(isolated_home: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("sim", "--nodes", "1", "--port", str(port), env=isolated_home)
    assert result.returncode == 2
    assert f"port {port}" in result.stderr and "--port 0" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("when", ["starting", "mid-batch"])
def test_sim_stopped_with_sigterm_removes_its_node_folders(
    tmp_path: Path, isolated_home: dict[str, str], when: str
) -> None:
    """Issue 12, item 24: a SIGTERM left the nodes' temporary folders behind."""
    temp = Path(isolated_home["TMPDIR"])  # where the sim's node folders go
    env = isolated_home
    farm_file = tmp_path / "farm.yaml"
    if when == "starting":
        sim = subprocess.Popen(
            [*CLI, "sim", "--nodes", "4", "--port", "0", "--write-config", str(farm_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        deadline = time.monotonic() + 30
        while not any(temp.iterdir()):  # the first node folder exists: it is starting
            assert time.monotonic() < deadline and sim.poll() is None
            time.sleep(0.005)
    else:
        sim = start_sim(farm_file, env, speed=0.05)
        batch = subprocess.Popen(
            [*CLI, "batch", "--config", str(farm_file), "--data-dir", str(tmp_path / "d"),
             "--prompt", "fox", "--count", "40", "--seed", "increment"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, **isolated_home},
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not list(temp.glob("*/output/*.png")):  # pictures are being written
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.3)
    sim.send_signal(signal.SIGTERM)
    _, errors = sim.communicate(timeout=30)
    if when != "starting":
        batch.send_signal(signal.SIGINT)
        batch.communicate(timeout=30)
    assert sim.returncode == 0, errors
    time.sleep(0.5)  # a write still in flight would recreate a folder by now
    assert list(temp.iterdir()) == []
