"""`imgen-tui nodes --watch`: the dashboard as a Rich live table, in-process and as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from rich.console import Console

from imgen_tui.commands.nodes_watch import watch_nodes
from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.sim.farm import SimFarm
from tests.cli_helpers import CLI, home_dirs
from tests.test_scheduler_farm import FARM


async def test_a_few_refreshes_show_every_node_with_memory_and_the_farm_line() -> None:
    farm = SimFarm(FARM, farm_models=dict(DEFAULT_MODELS), previews=False)
    console = Console(record=True, width=160, force_terminal=True, color_system=None)
    async with farm:
        await farm.node("gpu-draft").kill()
        code = await watch_nodes(farm.config(), console, interval=0.2, refreshes=4, demo_drafts=6)
    text = console.export_text()
    assert code == 0
    for node in FARM:
        assert node.id in text
    assert "/8G" in text and "/32G" in text  # the simulated VRAM and RAM
    assert "down" in text and "gpu-draft" in text
    assert "farm:" in text and "busy this session" in text
    assert "▁" in text  # the sparklines


async def test_a_narrow_terminal_gets_the_columns_that_fit() -> None:
    farm = SimFarm(FARM[:1], farm_models=dict(DEFAULT_MODELS), previews=False)
    console = Console(record=True, width=90, force_terminal=True, color_system=None)
    async with farm:
        await watch_nodes(farm.config(), console, interval=0.1, refreshes=2)
    last_frame = console.export_text().split("GPU dashboard")[-1]  # frames follow each other
    lines = last_frame.splitlines()
    assert any("gpu-premium" in line for line in lines)
    assert all(len(line) <= 90 for line in lines)
    assert not any("queue depth" in line for line in lines)


def test_the_real_command_redraws_until_ctrl_c_and_exits_0(tmp_path: Path) -> None:
    env = {**os.environ, **home_dirs(tmp_path), "COLUMNS": "150"}
    watch = subprocess.Popen(
        [*CLI, "nodes", "--watch", "--demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        time.sleep(6)  # the demo farm starts, then a few refreshes
        assert watch.poll() is None, watch.communicate()
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=20)
    finally:
        if watch.poll() is None:
            watch.kill()
    assert watch.returncode == 0, err
    assert "Traceback" not in err
    assert out.count("GPU dashboard") >= 2  # redrawn, not printed once
    assert "gpu-premium" in out and "gpu-draft" in out and "busy this session" in out
