"""Shared fixtures: recorded traffic, and simulated nodes on real loopback sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from imgen_tui.comfy import ComfyClient, NodeEventStream
from imgen_tui.comfy.websocket import Backoff
from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.sim.node import SimulatedNode
from imgen_tui.sim.spec import SimNodeSpec

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED = FIXTURES / "comfyui"


def recorded_json(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def recorded_ws(name: str) -> Iterator[dict[str, Any]]:
    """The server->client lines of a recorded WebSocket session, JSON and binary alike."""
    for line in (RECORDED / name).read_text().splitlines():
        entry = json.loads(line)
        if entry.get("dir") == "server->client":
            yield entry


# A simulated node shaped like the server the recordings came from.
RECORDING_SERVER = SimNodeSpec(
    id="recorder",
    tier="standard",
    vram_gb=24,
    capabilities=("sd15", "upscale"),
    seconds_per_step={"sd15": 0.0},
    models={
        "checkpoints": ["tiny-sd15.safetensors"],
        "loras": ["broken-lora.safetensors", "tiny-lora.safetensors"],
        "upscale_models": ["tiny-compact-2x.safetensors"],
    },
)

FAST_NODE = SimNodeSpec(
    id="gpu-test",
    tier="premium",
    vram_gb=16,
    capabilities=("sd15", "sdxl", "flux", "upscale"),
    seconds_per_step={"sd15": 0.0, "sdxl": 0.0, "flux": 0.0},
    upscale_seconds=0.0,
    models={
        "checkpoints": [DEFAULT_MODELS["sd15"], DEFAULT_MODELS["sdxl"], DEFAULT_MODELS["flux"]],
        "loras": [
            "detail-tweaker.safetensors",
            "film-grain.safetensors",
            "broken-lora.safetensors",
        ],
        "upscale_models": [DEFAULT_MODELS["upscale"]],
    },
)


@pytest.fixture
async def recording_node(tmp_path: Path) -> AsyncIterator[SimulatedNode]:
    node = SimulatedNode(RECORDING_SERVER, root=tmp_path / "recorder")
    await node.start()
    yield node
    await node.stop()


@pytest.fixture
async def sim_node(tmp_path: Path) -> AsyncIterator[SimulatedNode]:
    node = SimulatedNode(FAST_NODE, farm_models=dict(DEFAULT_MODELS), root=tmp_path / "node")
    await node.start()
    yield node
    await node.stop()


@pytest.fixture
async def client(sim_node: SimulatedNode) -> AsyncIterator[ComfyClient]:
    async with ComfyClient(sim_node.url, name=sim_node.spec.id) as comfy:
        yield comfy


@pytest.fixture
async def stream(sim_node: SimulatedNode, client: ComfyClient) -> AsyncIterator[NodeEventStream]:
    events = NodeEventStream(
        sim_node.url, client.client_id, name=sim_node.spec.id, backoff=Backoff(first=0.05, cap=0.2)
    )
    events.start()
    yield events
    await events.close()


@pytest.fixture(autouse=True)
def _own_state_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """What the app remembers between runs (its theme) never comes from or goes to your home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(autouse=True)
def _no_colour_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    """No 16-colour notice on screen, whatever TERM the machine running us has (the tests of
    the notice put the real check back)."""
    monkeypatch.setattr("imgen_tui.ui.graphics.few_colours_notice", lambda environment: None)
