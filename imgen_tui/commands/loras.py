"""`imgen-tui loras`: every LoRA the farm really has, what it is, and which node has it.

Each node is asked in parallel (see `imgen_tui.comfy.loras`); a node that is
down or answers badly is named in one line and the rest are still printed.
Exit 0 when every node answered, 1 when any did not, 2 for a LoRA name that
no node has (the listing then says which ones exist).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from imgen_tui.comfy.lora_answers import NodeLoras
from imgen_tui.comfy.lora_cache import LoraDiscoveryCache
from imgen_tui.config import FarmConfig, load_config
from imgen_tui.flows.lora_catalog import LoraEntry, build_catalog, discover_farm
from imgen_tui.locations import user_cache_dir
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import load_demo_farm
from imgen_tui.yamlfile import ConfigError

EXIT_OK, EXIT_NODE_DOWN = 0, 1


def add_loras_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    loras = commands.add_parser(
        "loras",
        parents=parents,
        help="list every LoRA on the farm: family, trigger words, size and the nodes that have it",
    )
    loras.add_argument("name", nargs="?", help="show only this LoRA (its file name)")
    loras.add_argument("--json", action="store_true", help="print JSON")
    loras.add_argument("--demo", action="store_true", help="use the simulated demo farm")
    loras.add_argument(
        "--refresh", action="store_true", help="read every node again instead of the cache"
    )
    loras.set_defaults(run=run_loras)


def run_loras(args: argparse.Namespace, console: Console) -> int:
    farm = None if args.demo else load_config(getattr(args, "config", None)).farm
    return asyncio.run(
        loras_command(
            console, farm, demo=args.demo, name=args.name, as_json=args.json, refresh=args.refresh
        )
    )


async def loras_command(
    console: Console,
    farm: FarmConfig | None,
    *,
    demo: bool = False,
    name: str | None = None,
    as_json: bool = False,
    refresh: bool = False,
) -> int:
    if demo:  # fresh ports every run: a cache keyed by address would only pile up
        async with SimFarm.from_spec(load_demo_farm(), previews=False) as sim_farm:
            found = await discover_farm(sim_farm.config().nodes, cache=None)
    else:
        assert farm is not None
        cache = LoraDiscoveryCache(user_cache_dir() / "loras")
        found = await discover_farm(farm.nodes, cache=cache, refresh=refresh)
    catalog = build_catalog(found)
    if name is not None:
        catalog = [entry for entry in catalog if entry.name == name]
        if not catalog and not any(node.error for node in found):
            known = len(build_catalog(found))
            raise ConfigError(
                f"no node has a LoRA named '{name}'; `imgen-tui loras` lists the {known} "
                "the farm has (give the file name, with its folder and extension)"
            )
    if as_json:
        console.print_json(json.dumps(catalog_json(catalog, found)))
    else:
        render_catalog(console, catalog, found)
    return EXIT_OK if all(node.error is None for node in found) else EXIT_NODE_DOWN


def catalog_json(catalog: Sequence[LoraEntry], found: Sequence[NodeLoras]) -> dict[str, object]:
    return {
        "loras": [entry.to_json() for entry in catalog],
        "nodes": {
            node.node: {
                "ok": node.error is None,
                "error": node.error,
                "sources": list(node.sources),
            }
            for node in found
        },
    }


def human_size(size: int | None) -> str:
    if size is None:
        return "?"
    if size >= 1_000_000_000:
        return f"{size / 1e9:.1f} GB"
    return f"{size / 1e6:.0f} MB" if size >= 1_000_000 else f"{size / 1e3:.0f} kB"


def render_catalog(
    console: Console, catalog: Sequence[LoraEntry], found: Sequence[NodeLoras]
) -> None:
    table = Table(title=f"LoRAs on the farm ({len(catalog)})", header_style="bold")
    # Ratios share a narrow terminal (a pipe is 80 columns) between the three long columns;
    # without them the longest file name takes the width and the rest fold one letter a line.
    table.add_column("file", overflow="fold", ratio=3)
    table.add_column("family", no_wrap=True, min_width=6)
    table.add_column("trigger words", overflow="fold", ratio=2)
    table.add_column("size", justify="right", no_wrap=True, min_width=6)
    table.add_column("nodes", overflow="fold", ratio=3)
    for entry in catalog:
        table.add_row(
            entry.name,
            entry.family_label or Text("?", "dim"),
            ", ".join(entry.trigger_words) or Text("none known", "dim"),
            human_size(entry.size),
            entry.availability(),
        )
    console.print(table)
    for node in found:
        if node.error is not None:
            console.print(Text(f"• {node.error}", "yellow"))
