"""Before a batch makes a session: can some node of the farm run every job at all?

The scheduler only finds out when every node has refused a job, by which time
a session exists, shows the job as one of its total and suggests a `--resume`
that can never succeed. Here each distinct job shape is routed once against
what the nodes declare and what their `/object_info` lists (checkpoints,
LoRAs), so `--dry-run` answers the same question the real run would, and a
job no node can run is refused before anything is written.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from imgen_tui.comfy import ComfyClient, ComfyError
from imgen_tui.comfy.capabilities import confirmed_capabilities, declared_capabilities
from imgen_tui.comfy.responses import ObjectInfo
from imgen_tui.config import FarmConfig, NodeConfig
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.routing import NodeView, refusal
from imgen_tui.yamlfile import ConfigError

log = logging.getLogger(__name__)

#: a node that has not listed its models by then is judged by its config alone
PROBE_SECONDS = 15.0


@dataclass(frozen=True)
class RoutePlan:
    """Which nodes can take the batch's jobs, and which could not be asked."""

    able: tuple[str, ...]  # nodes that can run at least one of the jobs
    silent: tuple[str, ...]  # nodes that did not answer: judged by their config only

    def describe(self) -> str:
        text = f"nodes that can run them: {', '.join(self.able)}"
        if self.silent:
            text += f" ({', '.join(self.silent)} did not answer, judged by the config)"
        return text


async def check_routes(farm: FarmConfig, specs: Sequence[JobSpec]) -> RoutePlan:
    """Raise one `ConfigError` sentence if some job can run on no node; else who can."""
    inventories = await asyncio.gather(*(_inventory(node) for node in farm.nodes))
    views = [
        _view(node, info, farm.models) for node, info in zip(farm.nodes, inventories, strict=True)
    ]
    able: set[str] = set()
    judged: set[tuple[object, ...]] = set()
    for number, spec in enumerate(specs, 1):
        shape = (spec.family, spec.needs, spec.width, spec.height, spec.checkpoint, spec.loras)
        if shape in judged:
            continue
        judged.add(shape)
        refused = {view.id: refusal(spec, view) for view in views}
        takers = [node_id for node_id, reason in refused.items() if reason is None]
        if not takers:
            reasons = "; ".join(reason for reason in refused.values() if reason)
            raise ConfigError(
                f"no node can run job {number} of the batch ({_shape(spec)}): {reasons}"
                f"{_suggestion(spec, inventories)}; nothing was started"
            )
        able.update(takers)
    silent = tuple(node.id for node, info in zip(farm.nodes, inventories, strict=True) if not info)
    return RoutePlan(tuple(n.id for n in farm.nodes if n.id in able), silent)


async def _inventory(node: NodeConfig) -> ObjectInfo | None:
    try:
        async with ComfyClient(node.base_url, name=node.id, headers=node.headers) as client:
            async with asyncio.timeout(PROBE_SECONDS):
                return await client.object_info()
    except (ComfyError, OSError, TimeoutError) as error:
        log.info("%s: no /object_info for the routing check: %s", node.id, error)
        return None


def _view(node: NodeConfig, info: ObjectInfo | None, models: dict[str, str]) -> NodeView:
    """The node as routing would see it once up; a silent node is taken at its word."""
    capabilities = declared_capabilities(node.capabilities)
    if info is not None:
        capabilities = confirmed_capabilities(info, node.capabilities, models)
    return NodeView(
        id=node.id,
        tier=node.tier,
        state="up",
        capabilities=capabilities,
        max_resolution=node.max_resolution,
        checkpoints=(
            None if info is None else frozenset(info.checkpoints) | frozenset(info.models("unet"))
        ),
        loras=None if info is None else frozenset(info.loras),
    )


def _shape(spec: JobSpec) -> str:
    parts = [spec.family, f"{spec.width}x{spec.height}"]
    if spec.checkpoint:
        parts.append(f"checkpoint {spec.checkpoint}")
    if spec.loras:
        parts.append(f"LoRA {', '.join(sorted(spec.loras))}")
    return ", ".join(parts)


def _suggestion(spec: JobSpec, inventories: Sequence[ObjectInfo | None]) -> str:
    """A near miss among the LoRAs the nodes do have ('detail' for 'detail.safetensors')."""
    installed = sorted({name for info in inventories if info for name in info.loras})
    hints = []
    for wanted in sorted(spec.loras):
        if wanted in installed:
            continue
        close = difflib.get_close_matches(wanted, installed, n=2, cutoff=0.5)
        if close:
            hints.append(f"did you mean --lora {close[0]} for {wanted}?")
    return f" ({' '.join(hints)})" if hints else ""
