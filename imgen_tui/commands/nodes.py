"""`imgen-tui nodes`: what each configured node is, has and can do, in one table."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from imgen_tui.comfy import ComfyClient, ComfyError, NodeUnreachable, ProtocolError, TimedOut
from imgen_tui.comfy.capabilities import CapabilityCheck, check_capabilities
from imgen_tui.comfy.responses import ObjectInfo, QueueState, SystemStats
from imgen_tui.config import FarmConfig, NodeConfig
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import load_demo_farm

#: a quick look, not a job: a node that has not answered by then is reported as slow
ANSWER_DEADLINE = 10.0
#: below this width the table crops its cells (Rich shrinks columns to "Comf…")
TABLE_COLUMNS = 120
_MARKS = {"confirmed": ("✓", "green"), "missing": ("✗", "red"), "unchecked": ("?", "yellow")}


@dataclass(frozen=True)
class NodeReport:
    node: NodeConfig
    error: str | None = None
    status: str = "unreachable"  # what went wrong, in a word or two, when `error` is set
    stats: SystemStats | None = None
    info: ObjectInfo | None = None
    queue: QueueState | None = None
    checks: tuple[CapabilityCheck, ...] = ()


async def probe_node(node: NodeConfig, models: dict[str, str]) -> NodeReport:
    async with ComfyClient(node.base_url, name=node.id, headers=node.headers) as client:
        try:
            stats, info, queue = await asyncio.gather(
                client.system_stats(deadline=ANSWER_DEADLINE), client.object_info(), client.queue()
            )
        except ComfyError as error:
            return NodeReport(node=node, error=str(error), status=_status_of(error))
    checks = tuple(check_capabilities(info, node.capabilities, models))
    return NodeReport(node=node, stats=stats, info=info, queue=queue, checks=checks)


def _status_of(error: ComfyError) -> str:
    """`unreachable` only when nothing answered: garbage and slowness are other problems."""
    if isinstance(error, TimedOut):
        return "too slow"
    if isinstance(error, ProtocolError):
        return "bad answer"
    if isinstance(error, NodeUnreachable):
        return "unreachable"
    return "refused"


async def probe_farm(farm: FarmConfig) -> list[NodeReport]:
    return list(await asyncio.gather(*(probe_node(node, farm.models) for node in farm.nodes)))


def render_reports(reports: list[NodeReport], console: Console) -> None:
    """A table when it fits the terminal; else each node folded into a few lines.

    The table needs about 120 columns; cut at 80 it cropped versions, states
    and capabilities, so a narrower terminal gets the same facts as blocks.
    """
    table, problems = _table(reports)
    if console.width < TABLE_COLUMNS:
        _render_blocks(reports, console)
    else:
        console.print(table)
    console.print(
        Text("capabilities: ✓ confirmed by /object_info  ✗ missing  ? not checkable", "dim")
    )
    for problem in problems:
        console.print(Text(f"• {problem}", "yellow"))


def _render_blocks(reports: list[NodeReport], console: Console) -> None:
    """Each node as a heading line and indented details that wrap within the width."""
    console.print(Text("ComfyUI nodes", "bold"))
    for report in reports:
        node, stats, info, queue = report.node, report.stats, report.info, report.queue
        heading = Text(node.id, "bold").append(f"  {node.tier}  ")
        details = [Text(node.base_url, "dim")]
        if report.error or stats is None or info is None or queue is None:
            heading.append("unreachable", "red")
            details.append(Text(f"declared: {' '.join(node.capabilities)}"))
        else:
            heading.append(f"up, ComfyUI {stats.comfyui_version}", "green")
            details.append(
                Text(
                    f"VRAM {stats.vram_free / 1024**3:.1f}/{stats.vram_total / 1024**3:.0f} GB "
                    f"free · queue {len(queue.running)} running, {len(queue.pending)} waiting · "
                    f"{len(info.checkpoints)} checkpoints, {len(info.loras)} LoRAs"
                )
            )
            details.append(_capabilities(report))
        console.print(heading)
        for line in details:
            console.print(Padding(line, (0, 0, 0, 2), expand=False))


def _capabilities(report: NodeReport) -> Text:
    capabilities = Text()
    for check in report.checks:
        mark, style = _MARKS[check.verdict]
        capabilities.append(f"{check.capability}{mark} ", style=style)
    return capabilities


def _table(reports: list[NodeReport]) -> tuple[Table, list[str]]:
    table = Table(title="ComfyUI nodes", header_style="bold", expand=False)
    table.add_column("node", no_wrap=True)
    table.add_column("tier")
    table.add_column("status")
    table.add_column("VRAM free", no_wrap=True)
    table.add_column("queue")
    table.add_column("models")
    table.add_column("capabilities", overflow="fold", min_width=24)
    problems: list[str] = []
    for report in reports:
        node = report.node
        name = Text(node.id, "bold").append(f"\n{node.base_url}", "dim")
        stats, info, queue = report.stats, report.info, report.queue
        if report.error or stats is None or info is None or queue is None:
            table.add_row(
                name, node.tier, Text(report.status, "red"), "", "", "", " ".join(node.capabilities)
            )
            problems.append(report.error or f"{node.id}: no answer")
            continue
        capabilities = Text()
        for check in report.checks:
            mark, style = _MARKS[check.verdict]
            capabilities.append(f"{check.capability}{mark} ", style=style)
            if check.verdict == "missing":
                problems.append(f"{node.id}: {check.capability} is declared but {check.reason}")
        table.add_row(
            name,
            node.tier,
            Text(f"up\nComfyUI {stats.comfyui_version}", "green"),
            f"{stats.vram_free / 1024**3:.1f}/{stats.vram_total / 1024**3:.0f} GB",
            f"{len(queue.running)} running\n{len(queue.pending)} waiting",
            f"{len(info.checkpoints)} ckpt\n{len(info.loras)} LoRA",
            capabilities,
        )
    return table, problems


async def nodes_command(farm: FarmConfig | None, console: Console, *, demo: bool = False) -> int:
    """Exit 0 when every node answered, 1 when any did not.

    With `demo`, the built-in simulated farm is started in this process first,
    so a newcomer sees a full table without any GPU.
    """
    if demo:
        sim_farm = SimFarm.from_spec(load_demo_farm(), previews=False)
        async with sim_farm:
            return await nodes_command(sim_farm.config(), console)
    assert farm is not None
    reports = await probe_farm(farm)
    render_reports(reports, console)
    return 0 if all(report.error is None for report in reports) else 1
