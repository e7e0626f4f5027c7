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
from typing import Any

import yaml
from rich.console import Console

from imgen_tui import __version__
from imgen_tui.comfy.errors import ComfyError
from imgen_tui.commands.loras import add_loras_parser
from imgen_tui.config import load_config
from imgen_tui.logs import setup_logging
from imgen_tui.store.errors import StoreError
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
    parser.add_argument(
        "--demo", action="store_true", help="open the app on a simulated 4-GPU farm"
    )
    parser.add_argument(
        "--no-llm",
        action="store_true",
        help="refine prompts by the offline rules, without asking Ollama",
    )
    parser.add_argument(
        "--graphics",
        choices=["auto", "tgp", "sixel", "iterm", "halfcell", "unicode"],
        default="auto",
        help="how thumbnails are drawn (default: detect the terminal)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="PATH",
        help="where sessions and images are kept (default: the user data folder)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    nodes = commands.add_parser(
        "nodes", parents=[with_config], help="show each node's health, models and capabilities"
    )
    nodes.add_argument(
        "--demo", action="store_true", help="start the simulated demo farm and show it"
    )
    nodes.add_argument(
        "--watch", action="store_true", help="a live dashboard of the farm until Ctrl-C"
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
    with_data_dir = argparse.ArgumentParser(add_help=False)
    with_data_dir.add_argument(
        "--data-dir",
        type=Path,
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="where sessions and images are kept (default: the user data folder)",
    )
    _add_batch_parser(commands, [with_config, with_data_dir])

    sessions = commands.add_parser(
        "sessions", parents=[with_data_dir], help="list, delete or export sessions"
    )
    sessions.add_argument("action", nargs="?", choices=["list", "delete", "export"], default="list")
    sessions.add_argument("session", nargs="?", help="session id (or its first characters)")
    sessions.add_argument("destination", nargs="?", type=Path, help="export: target folder")

    label = commands.add_parser(
        "label", parents=[with_data_dir], help="caption, tag and NSFW-flag a session's images"
    )
    label.add_argument("session", nargs="?", help="session id (or its first characters)")
    label.add_argument("--demo", action="store_true", help="label a new demo session")
    label.add_argument("--picked", action="store_true", help="only the picked images")

    _add_workflows_parser(commands, [with_config])
    add_loras_parser(commands, [with_config])

    bench = commands.add_parser(
        "bench", help="measure the scheduler or the terminal UI against simulated farms"
    )
    bench.add_argument("target", choices=["scheduler", "ui"], help="what to measure")
    bench.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="X",
        help="time scale of the simulated GPUs (default 1: real speeds)",
    )
    bench.add_argument("--quick", action="store_true", help="skip the 32-node run")
    return parser


def _add_workflows_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    workflows = commands.add_parser(
        "workflows",
        parents=parents,
        help="list every workflow with Ready/Missing per node, or show one file's parameters",
    )
    workflows.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    workflows.add_argument("file", nargs="?", type=Path, help="show: a workflow file (.json/.png)")
    workflows.add_argument(
        "--dir", type=Path, action="append", default=[], metavar="DIR", help="another folder"
    )
    workflows.add_argument("--json", action="store_true", help="show: print JSON")
    workflows.add_argument(
        "--object-info",
        type=Path,
        metavar="DUMP",
        help="a saved /object_info answer to use instead of asking the nodes",
    )
    workflows.add_argument("--demo", action="store_true", help="use the simulated demo farm")


def _add_batch_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    batch = commands.add_parser(
        "batch",
        parents=parents,
        help="generate images without the TUI, into a session",
        description="Run jobs to completion with a progress bar; Ctrl-C leaves it resumable.",
    )
    batch.add_argument(
        "--workflow",
        default="sd15_txt2img",
        help="workflow template name, or any workflow file (UI or API format, .json or .png)",
    )
    batch.add_argument("--prompt", default="", help="the prompt (with --set: the base prompt)")
    batch.add_argument("--negative", help="negative prompt (default: the workflow's)")
    batch.add_argument("--count", type=int, default=1, help="images per prompt (default 1)")
    batch.add_argument(
        "--seed",
        choices=["random", "increment", "fixed"],
        default="random",
        help="seed strategy (default random)",
    )
    batch.add_argument("--seed-start", type=int, default=0, metavar="N", help="first seed")
    batch.add_argument("--width", type=int, help="image width")
    batch.add_argument("--height", type=int, help="image height")
    batch.add_argument("--steps", type=int, help="sampling steps")
    batch.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other workflow placeholder, e.g. cfg=6.5 (repeatable)",
    )
    batch.add_argument(
        "--ref",
        action="append",
        default=[],
        metavar="KIND:IMAGE[:STRENGTH]",
        help="keep the pose, depth, edges, style or face of an image (repeatable)",
    )
    batch.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="NAME[:STRENGTH]",
        help="chain a LoRA into the graph, e.g. detail.safetensors:0.8 (repeatable)",
    )
    batch.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="NAME=VALUES",
        help="workflow files: sweep a parameter, e.g. cfg=4..8 step 2, sampler=euler,dpmpp_2m",
    )
    batch.add_argument("--zip", action="store_true", help="pair sweep values instead of crossing")
    batch.add_argument("--set", type=Path, metavar="CSV", dest="set_file", help="a CSV set")
    batch.add_argument("--template", help="row template for --set, e.g. '{value} of {suit}'")
    batch.add_argument("--theme", default="", help="with --set: a theme after the base prompt")
    batch.add_argument("--style-suffix", default="", help="with --set: style terms at the end")
    batch.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="SESSION",
        help="finish an interrupted batch (default: the newest unfinished one)",
    )
    batch.add_argument("--demo", action="store_true", help="run on the simulated demo farm")
    batch.add_argument("--dry-run", action="store_true", help="check and count, run nothing")
    batch.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="per-job time limit (300 s); also how long a job waits when no node that can run "
        "it is up",
    )
    batch.add_argument(
        "--wait-for-nodes",
        action="store_true",
        help="when no node that can run a job is up, wait for one however long it takes",
    )
    batch.add_argument(
        "--thumbnail-size", type=int, default=384, metavar="PX", help="thumbnail longest side"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_path = setup_logging()
    console = Console()
    try:
        return _dispatch(args, console)
    except ConfigError as error:
        _say(f"imgen-tui: {error}")
        return EXIT_BAD_INPUT
    except (ComfyError, StoreError) as error:
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
        if args.watch:
            from imgen_tui.commands.nodes_watch import watch_command

            return asyncio.run(watch_command(farm, console, demo=args.demo))
        return asyncio.run(nodes_command(farm, console, demo=args.demo))
    if args.command == "bench":
        from imgen_tui.commands.bench import bench_scheduler, bench_ui

        if args.target == "ui":
            return asyncio.run(bench_ui(console, scale=args.scale))
        return asyncio.run(bench_scheduler(console, scale=args.scale, quick=args.quick))
    if args.command == "batch":
        return _batch(args, console)
    if args.command == "sessions":
        return _sessions(args, console)
    if getattr(args, "run", None) is not None:  # sub-commands that bring their own runner
        return int(args.run(args, console))
    if args.command == "label":
        from imgen_tui.commands.label import label_command

        data_dir = getattr(args, "data_dir", None)
        return asyncio.run(
            label_command(console, data_dir, args.session, demo=args.demo, picked_only=args.picked)
        )
    if args.command == "workflows":
        from imgen_tui.commands.workflows import workflows_command

        return asyncio.run(workflows_command(args, console))
    return _app(args)


def _app(args: argparse.Namespace) -> int:
    """No sub-command: the terminal app (textual-image probes the terminal on import)."""
    farm = None if args.demo else load_config(args.config).farm
    from imgen_tui.ui.app import make_app

    app = make_app(
        farm,
        demo=args.demo,
        data_dir=args.data_dir,
        graphics=args.graphics,
        use_llm=not (args.demo or args.no_llm),  # demo mode refines by the offline rules
    )
    app.run()
    return app.return_code or 0


def _batch(args: argparse.Namespace, console: Console) -> int:
    from imgen_tui.commands.batch import batch_command
    from imgen_tui.flows.batch import BatchRequest, parse_lora
    from imgen_tui.flows.csvsets import set_prompts

    farm = None if args.demo else load_config(args.config).farm
    request = None
    if args.resume is None:
        if args.set_file is not None:
            if not args.template:
                raise ConfigError("--set needs a --template naming its columns, e.g. '{suit}'")
            prompts = set_prompts(
                args.set_file,
                args.template,
                base_prompt=args.prompt,
                theme=args.theme,
                style_suffix=args.style_suffix,
            )
        else:
            prompts = [args.prompt]
        request = BatchRequest(
            workflow=args.workflow,
            prompts=prompts,
            count=args.count,
            seed_strategy=args.seed,
            base_seed=args.seed_start,
            params=_params(args),
            time_limit=args.timeout,
            references=_references(args.ref),
            loras=tuple(parse_lora(text) for text in args.lora),
            sweeps=_sweeps(args.sweep),
            sweep_mode="zip" if args.zip else "cartesian",
        )
    return asyncio.run(
        batch_command(
            console,
            farm,
            request,
            data_dir=args.data_dir,
            resume=args.resume,
            demo=args.demo,
            dry_run=args.dry_run,
            thumbnail_side=args.thumbnail_size,
            wait_for_nodes=args.wait_for_nodes,
        )
    )


def _references(values: list[str]) -> tuple[tuple[str, str, float], ...]:
    from imgen_tui.flows.reference_args import parse_references

    return parse_references(values)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    """--param NAME=VALUE pairs (values read as YAML scalars) plus the named flags."""
    params: dict[str, Any] = {}
    for pair in args.param:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise ConfigError(f"--param {pair!r} is not NAME=VALUE, e.g. --param cfg=6.5")
        params[name.strip()] = yaml.safe_load(value) if value.strip() else ""
    for name in ("negative", "width", "height", "steps"):
        value = getattr(args, name)
        if value is not None:
            params[name] = value
    return params


def _sweeps(pairs: list[str]) -> dict[str, str]:
    sweeps: dict[str, str] = {}
    for pair in pairs:
        name, equals, values = pair.partition("=")
        if not equals or not name.strip():
            raise ConfigError(f"--sweep {pair!r} is not NAME=VALUES, e.g. --sweep cfg=4..8 step 2")
        sweeps[name.strip()] = values
    return sweeps


def _sessions(args: argparse.Namespace, console: Console) -> int:
    from imgen_tui.commands import sessions

    if args.action == "list":
        return asyncio.run(sessions.list_sessions(console, args.data_dir))
    if not args.session:
        raise ConfigError(f"`sessions {args.action}` needs a session id; `sessions` lists them")
    if args.action == "delete":
        return asyncio.run(sessions.delete_session(console, args.data_dir, args.session))
    if args.destination is None:
        raise ConfigError("`sessions export ID FOLDER` needs a folder to copy the picks into")
    return asyncio.run(
        sessions.export_session(console, args.data_dir, args.session, args.destination)
    )


if __name__ == "__main__":
    sys.exit(main())
