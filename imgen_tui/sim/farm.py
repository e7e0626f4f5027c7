"""Several simulated nodes at once, and the farm config that points at them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from imgen_tui.config import FarmConfig
from imgen_tui.sim.node import SimulatedNode
from imgen_tui.sim.spec import SimFarmSpec, SimNodeSpec


class SimFarm:
    """Start, address and stop a set of simulated nodes together."""

    def __init__(
        self,
        specs: Sequence[SimNodeSpec],
        *,
        farm_models: dict[str, str] | None = None,
        previews: bool = True,
    ) -> None:
        self.models = dict(farm_models or {})
        self.nodes = [
            SimulatedNode(spec, farm_models=self.models, previews=previews) for spec in specs
        ]

    @classmethod
    def from_spec(
        cls,
        farm: SimFarmSpec,
        count: int | None = None,
        *,
        speed: float = 1.0,
        previews: bool = True,
    ) -> SimFarm:
        """The first `count` nodes (repeating the list, with numbered ids, past its end)."""
        count = count or len(farm.nodes)
        specs = []
        for index in range(count):
            base = farm.nodes[index % len(farm.nodes)]
            spec = (
                base
                if index < len(farm.nodes)
                else base.model_copy(update={"id": f"{base.id}-{index // len(farm.nodes) + 1}"})
            )
            specs.append(spec.scaled(speed))
        return cls(specs, farm_models=farm.models, previews=previews)

    async def start(self, host: str = "127.0.0.1", base_port: int = 0) -> None:
        for index, node in enumerate(self.nodes):
            await node.start(host, base_port + index if base_port else 0)

    async def stop(self) -> None:
        await asyncio.gather(*(node.stop() for node in self.nodes))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def node(self, node_id: str) -> SimulatedNode:
        for node in self.nodes:
            if node.spec.id == node_id:
                return node
        raise KeyError(node_id)

    def farm_config(self) -> dict[str, Any]:
        """A farm config (gpus.yaml shape) for these nodes at their live addresses."""
        return {
            "nodes": [
                {
                    "id": node.spec.id,
                    "name": node.spec.name or node.spec.id,
                    "vram_gb": node.spec.vram_gb,
                    "tier": node.spec.tier,
                    "host": node.host,
                    "port": node.port,
                    "capabilities": list(node.spec.capabilities),
                    "max_resolution": node.spec.max_resolution,
                    "max_batch": node.spec.max_batch,
                    "seconds_per_step": dict(node.spec.seconds_per_step),
                    "load_seconds": node.spec.load_seconds,
                    "patch_seconds": node.spec.patch_seconds,
                }
                for node in self.nodes
            ],
            "models": dict(self.models),
        }

    def config(self) -> FarmConfig:
        return FarmConfig.model_validate(self.farm_config())

    def write_farm_config(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        header = "# Written by `imgen-tui sim`: the simulated farm, valid while it runs.\n"
        path.write_text(
            header + yaml.safe_dump(self.farm_config(), sort_keys=False), encoding="utf-8"
        )
        return path
