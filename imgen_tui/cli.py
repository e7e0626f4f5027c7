"""Entry point: parse the command line, run a sub-command, turn failures into sentences.

Every expected failure (bad config, unreachable node, port in use) ends as one
line on stderr and a non-zero exit; anything unexpected is logged with its
traceback to the log file and reported by its path.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from imgen_tui import __version__
from imgen_tui.comfy.errors import ComfyError
from imgen_tui.config import load_config
from imgen_tui.logs import setup_logging
from imgen_tui.yamlfile import ConfigError

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

log = logging.getLogger("imgen_tui")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgen-tui",
        description="Iterate on images across a farm of ComfyUI GPU machines from a terminal.",
    )
    parser.add_argument("--version", action="version", version=f"imgen-tui {__version__}")
    # --config is accepted before or after the sub-command: `imgen-tui nodes --config F`.
    config_help = "farm config file (default: $IMGEN_TUI_CONFIG, the user config, the sample)"
    parser.add_argument("--config", type=Path, metavar="PATH", help=config_help)
    with_config = argparse.ArgumentParser(add_help=False)
    with_config.add_argument(
        "--config", type=Path, metavar="PATH", help=config_help, default=argparse.SUPPRESS
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    nodes = commands.add_parser(
        "nodes", parents=[with_config], help="show each node's health, models and capabilities"
    )
    nodes.add_argument(
        "--demo", action="store_true", help="start the simulated demo farm and show it"
    )

    sim = commands.add_parser("sim", help="run a simulated ComfyUI farm in the foreground")
    sim.add_argument("--nodes", type=int, default=4, metavar="N", help="how many nodes (default 4)")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument(
        "--port",
        type=int,
        default=8188,
        metavar="PORT",
        help="first node's port, the others follow; 0 picks free ports (default 8188)",
    )
    sim.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="time scale: 0.1 is ten times faster than the real cards (default 1)",
    )
    sim.add_argument(
        "--write-config",
        type=Path,
        metavar="PATH",
        dest="config_out",
        help="where to write the farm config for these nodes",
    )
    sim.add_argument(
        "--farm",
        type=Path,
        metavar="PATH",
        help="simulated farm description (default: config/demo.yaml)",
    )
    bench = commands.add_parser("bench", help="measure the scheduler against simulated farms")
    bench.add_argument("target", choices=["scheduler"], help="what to measure")
    bench.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="X",
        help="time scale of the simulated GPUs (default 1: real speeds)",
    )
    bench.add_argument("--quick", action="store_true", help="skip the 32-node run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_path = setup_logging()
    console = Console()
    try:
        return _dispatch(args, console)
    except ConfigError as error:
        _say(f"imgen-tui: {error}")
        return EXIT_BAD_INPUT
    except ComfyError as error:
        _say(f"imgen-tui: {error}")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:
        log.exception("unexpected error")
        where = f"; details are in {log_path}" if log_path else ""
        _say(f"imgen-tui: unexpected error: {error}{where}")
        return EXIT_FAILURE


def _say(message: str) -> None:
    """One unwrapped line on stderr: the terminal wraps it, scripts can grep it."""
    print(message, file=sys.stderr)


def _dispatch(args: argparse.Namespace, console: Console) -> int:
    if args.command == "sim":
        from imgen_tui.commands.sim import sim_command

        if args.nodes < 1:
            raise ConfigError("--nodes must be at least 1.")
        return asyncio.run(
            sim_command(
                console,
                count=args.nodes,
                host=args.host,
                base_port=args.port,
                speed=args.speed,
                config_out=args.config_out,
                farm_file=args.farm,
            )
        )
    if args.command == "nodes":
        from imgen_tui.commands.nodes import nodes_command

        farm = None if args.demo else load_config(args.config).farm
        return asyncio.run(nodes_command(farm, console, demo=args.demo))
    if args.command == "bench":
        from imgen_tui.commands.bench import bench_scheduler

        return asyncio.run(bench_scheduler(console, scale=args.scale, quick=args.quick))
    build_parser().print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
