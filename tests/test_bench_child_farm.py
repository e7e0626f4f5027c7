"""The UI benchmark's farm runs in a child process (imgen_tui.bench.child_farm)."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest

from imgen_tui.bench.child_farm import FarmDidNotStart, farm_in_child_process
from imgen_tui.comfy.client import ComfyClient


async def test_the_child_farm_serves_comfyui_and_stops_cleanly() -> None:
    async with farm_in_child_process(nodes=2, speed=0.01) as farm:
        assert [node.id for node in farm.config.nodes] == ["gpu-premium", "gpu-quality"]
        assert farm.process.pid != os.getpid() and farm.process.returncode is None
        node = farm.config.nodes[0]
        client = ComfyClient(node.base_url, name=node.id)
        try:
            stats = await client.system_stats()
        finally:
            await client.close()
        assert stats.comfyui_version and stats.devices
        assert await farm.finished_at(node.id, "no-such-prompt") is None
        process = farm.process
    assert process.returncode is not None  # stopped with the block, by Ctrl-C
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session:
            await session.get(f"{node.base_url}/system_stats")


async def test_a_farm_that_cannot_start_says_why(tmp_path: Path) -> None:
    broken = tmp_path / "farm.yaml"
    broken.write_text("nodes: [\n", encoding="utf-8")
    with pytest.raises(FarmDidNotStart, match="exited with code"):
        async with farm_in_child_process(farm=broken):
            pass
