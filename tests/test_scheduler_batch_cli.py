"""`imgen-tui batch` as a real process when the farm cannot help: it ends, and says why.

A checkpoint that is corrupt on every node, or a farm whose nodes all refuse
us or are gone, used to leave the batch at "0/2 idle idle" until killed.
"""

from __future__ import annotations

import http.server
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.locations import bundled_dir
from tests.cli_helpers import CLI, home_dirs, run_cli

HEADER_TOO_LARGE = "Error while deserializing header: header too large"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return home_dirs(tmp_path)


@pytest.fixture
def broken_farm(tmp_path: Path, env: dict[str, str]) -> Iterator[Path]:
    """Two simulated nodes that both have a corrupt `broken.safetensors` installed."""
    import os
    import subprocess

    spec = yaml.safe_load((bundled_dir("config") / "demo.yaml").read_text())
    spec["nodes"] = spec["nodes"][:2]
    for node in spec["nodes"]:
        node["models"]["checkpoints"].append("broken.safetensors")
    farm_spec = tmp_path / "broken-farm.yaml"
    farm_spec.write_text(yaml.safe_dump(spec))
    farm_file = tmp_path / "farm.yaml"
    command = [*CLI, "sim", "--farm", str(farm_spec), "--nodes", "2", "--port", "0"]
    sim = subprocess.Popen(
        [*command, "--speed", "0.1", "--write-config", str(farm_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    deadline = time.monotonic() + 30
    while not farm_file.exists():
        assert sim.poll() is None and time.monotonic() < deadline, sim.communicate()
        time.sleep(0.05)
    yield farm_file
    sim.send_signal(signal.SIGINT)
    sim.communicate(timeout=20)


@pytest.mark.parametrize("count", ["2", "12"])
def test_a_checkpoint_broken_on_every_node_fails_every_job_with_comfyuis_reason(
    tmp_path: Path, env: dict[str, str], broken_farm: Path, count: str
) -> None:
    started = time.monotonic()
    result = run_cli(
        *("batch", "--config", str(broken_farm), "--data-dir", str(tmp_path / "data")),
        *("--prompt", "a fox", "--param", "checkpoint=broken.safetensors", "--count", count),
        *("--timeout", "20"),
        env=env,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert time.monotonic() - started < 30
    assert f"0 of {count}" in result.stdout
    assert HEADER_TOO_LARGE in " ".join(result.stdout.split())
    assert not list((tmp_path / "data").glob("sessions/*/*.png"))


class Unauthorized(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("Content-Length", "17")
        self.end_headers()
        self.wfile.write(b"401: Unauthorized")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unauthorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def farm_of_down_nodes(tmp_path: Path, refusing_port: int) -> Path:
    shape = {"host": "127.0.0.1", "tier": "standard", "vram_gb": 8, "capabilities": ["sd15"]}
    farm = {
        "nodes": [
            {"id": "gpu-token", "port": refusing_port, **shape},
            {"id": "gpu-gone", "port": unused_port(), **shape},
        ],
        "models": dict(DEFAULT_MODELS),
    }
    path = tmp_path / "farm.yaml"
    path.write_text(yaml.safe_dump(farm))
    return path


def test_with_every_node_down_the_batch_names_them_and_gives_up(
    tmp_path: Path, env: dict[str, str], refusing_port: int
) -> None:
    farm = farm_of_down_nodes(tmp_path, refusing_port)
    started = time.monotonic()
    result = run_cli(
        *("batch", "--config", str(farm), "--data-dir", str(tmp_path / "data")),
        *("--prompt", "a fox", "--count", "2", "--timeout", "2"),
        env=env,
        timeout=60,
    )
    seconds = time.monotonic() - started
    text = " ".join(result.stdout.split())
    assert result.returncode == 1, result.stdout + result.stderr
    assert seconds < 20
    assert "Down: gpu-token refused /system_stats with 401" in text
    assert "Down: gpu-gone (http://127.0.0.1:" in text and "unreachable" in text
    assert "failed: no node was up to run this job for 2 s" in text


def test_told_to_wait_the_batch_keeps_waiting_for_a_node(
    tmp_path: Path, env: dict[str, str], refusing_port: int
) -> None:
    import os
    import subprocess

    farm = farm_of_down_nodes(tmp_path, refusing_port)
    where = ("--config", str(farm), "--data-dir", str(tmp_path / "data"))
    batch = subprocess.Popen(
        [*CLI, "batch", *where, "--prompt", "a fox", "--timeout", "1", "--wait-for-nodes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env, "COLUMNS": "160"},
    )
    time.sleep(6)  # well past the time limit
    assert batch.poll() is None, batch.communicate()
    batch.send_signal(signal.SIGINT)
    out, _ = batch.communicate(timeout=30)
    assert batch.returncode == 130
    assert "waiting for one (--wait-for-nodes)" in " ".join(out.split())


def test_the_help_names_the_wait_flag(env: dict[str, str]) -> None:
    result = run_cli("batch", "--help", env=env)
    assert "--wait-for-nodes" in result.stdout
