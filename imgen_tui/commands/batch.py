"""`imgen-tui batch`: run jobs to completion without the TUI, into a session the TUI can open.

The session is written exactly as the app writes it: job rows (with their
prompt ids, committed before each POST) and images land in the store, so a
killed batch is picked up with `--resume` and nothing that finished is made
again. Ctrl-C cancels our prompts on the nodes and leaves the session
resumable.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from imgen_tui.commands.preflight import RoutePlan, check_routes
from imgen_tui.config import FarmConfig
from imgen_tui.flows.batch import BatchRequest, is_workflow_file, plan_file_batch, plan_jobs
from imgen_tui.flows.recorder import SessionRecorder
from imgen_tui.flows.variations import describe_estimate, estimate_farm_seconds
from imgen_tui.graphs.templates import load_library
from imgen_tui.locations import workflow_folders
from imgen_tui.scheduler.events import (
    JobDone,
    JobEvent,
    JobFailed,
    JobProgress,
    JobRetrying,
    JobStarted,
    NodeStateChanged,
)
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import load_demo_farm
from imgen_tui.store import SessionInfo, SessionStore, StoreError
from imgen_tui.store.lock import SessionLock
from imgen_tui.store.records import UNFINISHED_STATES
from imgen_tui.yamlfile import ConfigError

EXIT_OK, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 0, 1, 130
LATEST = "latest"  # `--resume` without an id: the newest unfinished batch session


@dataclass
class BatchOutcome:
    """What the summary table reports."""

    session: SessionInfo
    total: int
    already_done: int
    done_by_node: Counter[str] = field(default_factory=Counter)
    seconds_by_node: defaultdict[str, list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )
    retries_by_node: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    interrupted: bool = False
    store_failure: StoreError | None = None

    @property
    def done(self) -> int:
        return self.already_done + sum(self.done_by_node.values())


async def batch_command(
    console: Console,
    farm: FarmConfig | None,
    request: BatchRequest | None,
    *,
    data_dir: Path | None,
    resume: str | None = None,
    demo: bool = False,
    dry_run: bool = False,
    thumbnail_side: int = 384,
    wait_for_nodes: bool = False,
) -> int:
    if not 16 <= thumbnail_side <= 4096:
        raise ConfigError(
            f"--thumbnail-size must be between 16 and 4096 pixels (got {thumbnail_side})"
        )
    specs: list[JobSpec] = []
    from_file = request is not None and is_workflow_file(request.workflow)
    if request is not None and not from_file:
        library = load_library(workflow_folders())
        models = farm.models if farm is not None else load_demo_farm().models
        specs = plan_jobs(request, library, models)  # every input problem shows up here
    async with _farm(farm, demo) as live_farm:
        if request is not None and from_file:  # a UI-format file needs the nodes' object_info
            specs = await plan_file_batch(request, live_farm, live_farm.models)
        if request is not None:
            routes = await check_routes(live_farm, specs)  # before any session exists
            if dry_run:
                _print_plan(console, request, len(specs), routes)
                if from_file:
                    console.print(
                        describe_estimate(len(specs), estimate_farm_seconds(specs, live_farm))
                    )
                return EXIT_OK
        store = await SessionStore.open(data_dir, thumbnail_side=thumbnail_side)
        lock: SessionLock | None = None
        try:
            if resume is not None:
                session = await _session_to_resume(store, resume)
                # One process runs a session at a time; its rows are read under the lock.
                lock = await store.lock_session(session.id)
                rows = await store.jobs(session.id, UNFINISHED_STATES)
                total = len(await store.jobs(session.id))
                outcome = BatchOutcome(session, total=total, already_done=total - len(rows))
                console.print(
                    f"Resuming session [bold]{session.id[:8]}[/] ({escape(session.title)}): "
                    f"{outcome.already_done} of {total} images already made."
                )
            else:
                assert request is not None
                session, specs = await _new_session(store, request, specs)
                lock = await store.lock_session(session.id)
                rows = []
                outcome = BatchOutcome(session, total=len(specs), already_done=0)
            recorder = SessionRecorder(store)
            # The session's own client id: ComfyUI sends a prompt's events to the id that
            # posted it, so a resumed batch hears about the prompts the killed one left.
            client_id = session.state.get("client_id")
            scheduler = Scheduler(
                live_farm,
                keeper=recorder,
                client_id=str(client_id) if client_id else None,
                wait_for_nodes=wait_for_nodes,
            )
            async with scheduler:
                _say_which_nodes_are_down(console, scheduler, wait_for_nodes)
                if resume is not None:
                    SessionRecorder.resume(scheduler, rows)
                else:
                    scheduler.submit_many(specs)
                await _run(console, scheduler, recorder, outcome, live_farm)
            await recorder.drain()
            outcome.store_failure = recorder.store_failure
        finally:
            if lock is not None:
                await asyncio.to_thread(lock.release)
            await store.close()
    _print_summary(console, outcome, store.session_dir(outcome.session.id))
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if outcome.done == outcome.total and not outcome.failures else EXIT_SOME_FAILED


@contextlib.asynccontextmanager
async def _farm(farm: FarmConfig | None, demo: bool) -> AsyncIterator[FarmConfig]:
    if not demo:
        assert farm is not None
        yield farm
        return
    async with SimFarm.from_spec(load_demo_farm()) as sim_farm:
        yield sim_farm.config()


async def _new_session(
    store: SessionStore, request: BatchRequest, specs: list[JobSpec]
) -> tuple[SessionInfo, list[JobSpec]]:
    """The session, its round and every job row, committed before the first POST."""
    session = await store.create_session(
        "batch",
        request.title,
        {
            "workflow": request.workflow,
            "count": request.count,
            "seed": request.seed_strategy,
            "client_id": str(uuid.uuid4()),
        },
    )
    params = dict(request.params)
    round_info = await store.add_round(
        session.id,
        "batch",
        prompt=request.prompts[0],
        negative=str(params.pop("negative", "")),
        parameters={"workflow": request.workflow, **params},
    )
    specs = [dataclasses.replace(spec, round_id=round_info.id) for spec in specs]
    await store.add_jobs(round_info.id, [(spec.job_id, spec.to_json()) for spec in specs])
    return session, specs


async def _session_to_resume(store: SessionStore, wanted: str) -> SessionInfo:
    if wanted != LATEST:
        return await store.find_session(wanted)
    for session in await store.sessions(disk_use=False):
        if session.flow == "batch" and not session.finished:
            return session
    raise StoreError(f"no unfinished batch session in {store.data_dir}: nothing to resume")


async def _run(
    console: Console,
    scheduler: Scheduler,
    recorder: SessionRecorder,
    outcome: BatchOutcome,
    farm: FarmConfig,
) -> None:
    """Show progress until every job has ended, Ctrl-C is pressed or the disk fails."""
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # not on Windows
        loop.add_signal_handler(signal.SIGINT, interrupted.set)
    events = scheduler.subscribe()
    progress = Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
    )
    overall = progress.add_task(
        "all nodes", total=outcome.total, completed=outcome.already_done, note=""
    )
    per_node = {node.id: progress.add_task(node.id, total=None, note="idle") for node in farm.nodes}
    idle = asyncio.ensure_future(scheduler.wait_idle())
    stop = asyncio.ensure_future(interrupted.wait())
    try:
        with progress:
            follow = asyncio.ensure_future(
                _follow(events, progress, overall, per_node, outcome, recorder, interrupted)
            )
            await asyncio.wait({idle, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not idle.done():
                outcome.interrupted = recorder.store_failure is None
                await scheduler.cancel_all()
            await asyncio.sleep(0)  # let the last events through
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow
    finally:
        idle.cancel()
        stop.cancel()
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)
        await events.aclose()


async def _follow(
    events: AsyncIterator[JobEvent],
    progress: Progress,
    overall: TaskID,
    per_node: dict[str, TaskID],
    outcome: BatchOutcome,
    recorder: SessionRecorder,
    interrupted: asyncio.Event,
) -> None:
    started: dict[str, float] = {}
    node_states = NodeStateLines(progress, per_node)
    async for event in events:
        if isinstance(event, JobStarted):
            started[event.job.job_id] = time.monotonic()
            progress.update(per_node[event.node_id], completed=0, total=event.job.spec.steps)
        elif isinstance(event, JobProgress):
            # A node's bar counts the steps of the job it runs; the note says so, so
            # "10/10" beside the overall bar's images is never read as images.
            eta = f", eta {event.eta_seconds:.0f}s" if event.eta_seconds is not None else ""
            progress.update(
                per_node[event.node_id],
                completed=event.step,
                total=event.total,
                note=f"steps{eta}",
            )
        elif isinstance(event, JobDone):
            outcome.done_by_node[event.node_id] += 1
            if event.job.started_at is not None and event.job.finished_at is not None:
                outcome.seconds_by_node[event.node_id].append(
                    event.job.finished_at - event.job.started_at
                )
            progress.advance(overall)
            progress.update(
                per_node[event.node_id],
                note=_images_made(outcome.done_by_node[event.node_id]),
            )
        elif isinstance(event, JobRetrying):
            outcome.retries_by_node[event.node_id] += 1
            if recorder.store_failure is not None:
                interrupted.set()  # the disk is full or read-only: stop, keep what we have
        elif isinstance(event, JobFailed):
            outcome.failures.append(event.reason)
            progress.advance(overall)
        elif isinstance(event, NodeStateChanged):
            node_states.show(event)


def _images_made(count: int) -> str:
    return f"steps; {count} image{'s' if count != 1 else ''} made here"


def _say_which_nodes_are_down(console: Console, scheduler: Scheduler, waiting: bool) -> None:
    """Name every node that did not answer at the start, and what happens to the jobs."""
    down = [runtime for runtime in scheduler.nodes.values() if runtime.state == "down"]
    for runtime in down:
        reason = runtime.state_reason  # the client's sentences name the node already
        named = reason if reason.startswith(runtime.id) else f"{runtime.id}: {reason}"
        console.print(f"[yellow]Down:[/] {named}")
    if down and len(down) == len(scheduler.nodes):
        if waiting:
            console.print("No node is up; waiting for one (--wait-for-nodes).")
        else:
            console.print(
                "No node is up; each job waits up to its --timeout for one, then fails "
                "(--wait-for-nodes waits for good)."
            )


class NodeStateLines:
    """A node going down or coming back, said where the reader will see it.

    On a terminal the node's bar says it; without one (a log, CI, a pipe)
    the bars are never drawn, so each change is one line of its own. A node's
    first "up" is the normal start and is not announced.
    """

    def __init__(self, progress: Progress, per_node: dict[str, TaskID]) -> None:
        self.progress = progress
        self.per_node = per_node
        self.last: dict[str, str] = {}

    def show(self, event: NodeStateChanged) -> None:
        previous = self.last.get(event.node_id)
        self.last[event.node_id] = event.state
        if previous == event.state or (previous is None and event.state == "up"):
            return
        reason = f" ({_clip(event.reason, 200)})" if event.reason and event.state != "up" else ""
        task = self.per_node.get(event.node_id)
        if task is not None:
            self.progress.update(task, note=event.state if event.state != "up" else "back up")
        console = self.progress.console
        if not console.is_terminal:
            stamp = time.strftime("%H:%M:%S")
            line = f"{stamp} {event.node_id}: {'back up' if event.state == 'up' else event.state}"
            console.print(Text(line + reason), soft_wrap=True)


def _print_plan(console: Console, request: BatchRequest, count: int, routes: RoutePlan) -> None:
    loras = "".join(f", LoRA {lora.name}:{lora.strength_model:g}" for lora in request.loras)
    console.print(
        f"{count} jobs with workflow [bold]{request.workflow}[/] "
        f"({len(request.prompts)} prompt(s) x {request.count}, seeds {request.seed_strategy}"
        f"{loras}); {routes.describe()}.",
        markup=True,
        highlight=False,
    )
    for prompt in request.prompts[:3]:
        console.print(f"  • {_clip(prompt)}", markup=False, highlight=False)
    if len(request.prompts) > 3:
        console.print(f"  … and {len(request.prompts) - 3} more prompts")


#: longer prompts are cut when shown: Rich wraps a long unbroken word in quadratic time
SHOWN_PROMPT_CHARACTERS = 300


def _clip(text: str, limit: int = SHOWN_PROMPT_CHARACTERS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters in all)"


def _print_summary(console: Console, outcome: BatchOutcome, folder: Path) -> None:
    table = Table(title="Batch summary", title_justify="left")
    table.add_column("node")
    table.add_column("images", justify="right")
    table.add_column("mean s/image", justify="right")
    table.add_column("retries", justify="right")
    nodes = sorted(set(outcome.done_by_node) | set(outcome.retries_by_node))
    for node_id in nodes:
        times = outcome.seconds_by_node.get(node_id, [])
        table.add_row(
            node_id,
            str(outcome.done_by_node[node_id]),
            f"{sum(times) / len(times):.1f}" if times else "-",
            str(outcome.retries_by_node[node_id]),
        )
    if outcome.already_done:
        table.add_row("(earlier run)", str(outcome.already_done), "", "")
    table.add_row("total", f"{outcome.done} of {outcome.total}", "", "", style="bold")
    console.print(table)
    console.print(f"Session {outcome.session.id} — images in {folder}")
    if outcome.store_failure is not None:
        console.print(f"[red]Stopped: {outcome.store_failure}[/]")
    for reason in outcome.failures[:5]:
        console.print(Text("failed: ", "red").append(_clip(reason)))
    if len(outcome.failures) > 5:
        console.print(f"[red]… and {len(outcome.failures) - 5} more failures[/]")
    if outcome.done < outcome.total:
        console.print(f"Resume with: imgen-tui batch --resume {outcome.session.id[:8]}")
