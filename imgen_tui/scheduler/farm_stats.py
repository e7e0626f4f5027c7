"""What the GPU dashboard shows, as plain numbers: the TUI's F2 and `nodes --watch` draw it.

The scheduler feeds `FarmStats` every event it emits and a queue-depth sample
once a second; `farm_snapshot` then reads the nodes and the waiting jobs at one
moment into rows that only need drawing. Keeping the arithmetic here (not in
a screen) lets it be tested without a terminal and shared by two front ends.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from imgen_tui.scheduler.events import (
    JobCancelled,
    JobDone,
    JobEvent,
    JobFailed,
    JobRetrying,
    JobStarted,
    NodeStateChanged,
)
from imgen_tui.scheduler.jobs import Job, JobState
from imgen_tui.scheduler.routing import refusal
from imgen_tui.scheduler.runtime import NodeRuntime

#: one sparkline bar covers this many seconds
BUCKET_SECONDS = 10.0
#: bars per sparkline: five minutes of history
BUCKETS = 30
#: "images in the last ten minutes"
RECENT_SECONDS = 600.0
#: how the scheduler's reason starts when a faster node takes a queued prompt over
TAKEN_BACK = "taken back from"
#: at most this many refusal reasons are named per idle node (the rest are counted)
MAX_REASONS = 3


@dataclass
class NodeHistory:
    """One node's past as the dashboard needs it (the runtime knows only its present)."""

    finished: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    queue_samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=2_000))
    busy_seconds: float = 0.0
    last_error: str | None = None
    last_error_at: float | None = None  # wall clock


@dataclass(frozen=True)
class NodeRow:
    id: str
    tier: str
    health: str  # up, degraded, down
    since: float  # wall clock of the last change of health
    reason: str  # why it is degraded or down ("answering" when up)
    last_error: str | None
    ours: int
    others: int
    running: str | None  # "job 1a2b3c 12/20" while it runs one of ours
    progress: float | None  # 0..1 of the running job
    vram_used: int | None  # bytes; None before /system_stats has answered
    vram_total: int | None
    ram_used: int | None
    ram_total: int | None
    seconds_per_step: dict[str, float]
    images_recent: int  # in the last RECENT_SECONDS
    throughput: tuple[float, ...]  # images per bucket, oldest first
    queue_depth: tuple[float, ...]  # ours + others, the highest sample of each bucket
    checkpoint: str | None
    busy_share: float  # of the session so far, 0..1
    idle_reasons: tuple[str, ...]  # why it runs nothing while jobs wait; () otherwise


@dataclass(frozen=True)
class FarmSnapshot:
    nodes: tuple[NodeRow, ...]
    waiting: int  # jobs waiting in the app for a node
    images_per_minute: float  # over the last minute, the whole farm
    images_total: int
    session_seconds: float


class FarmStats:
    def __init__(self, node_ids: Iterable[str], *, now: float | None = None) -> None:
        self.started_at = time.monotonic() if now is None else now
        self.history = {node_id: NodeHistory() for node_id in node_ids}
        self._running: dict[str, tuple[str, float]] = {}  # job id -> (node, since)

    def record(self, event: JobEvent, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if isinstance(event, NodeStateChanged):
            if event.state != "up" and event.node_id in self.history:
                history = self.history[event.node_id]
                history.last_error, history.last_error_at = event.reason, time.time()
        elif isinstance(event, JobStarted):
            self._running[event.job.job_id] = (event.node_id, now)
        elif isinstance(event, JobDone | JobRetrying | JobFailed | JobCancelled):
            self._stop_running(event.job.job_id, now)
            if isinstance(event, JobDone) and event.node_id in self.history:
                count = max(1, len(event.images))
                self.history[event.node_id].finished.extend([now] * count)
            if (
                isinstance(event, JobRetrying)
                and event.node_id in self.history
                and not event.reason.startswith(TAKEN_BACK)  # a faster node took it: no fault
            ):
                history = self.history[event.node_id]
                history.last_error, history.last_error_at = event.reason, time.time()

    def sample(self, depths: Mapping[str, int], now: float | None = None) -> None:
        """Queue depth per node at this moment; called once a second by the scheduler."""
        now = time.monotonic() if now is None else now
        for node_id, depth in depths.items():
            if node_id in self.history:
                self.history[node_id].queue_samples.append((now, depth))

    def busy_seconds(self, node_id: str, now: float) -> float:
        """Seconds the node ran our jobs this session, counting the one running now."""
        total = self.history[node_id].busy_seconds
        for running_on, since in self._running.values():
            if running_on == node_id:
                total += now - since
        return total

    def _stop_running(self, job_id: str, now: float) -> None:
        running = self._running.pop(job_id, None)
        if running is not None and running[0] in self.history:
            self.history[running[0]].busy_seconds += now - running[1]


def buckets(
    moments: Iterable[tuple[float, float]], now: float, *, combine: str = "sum"
) -> tuple[float, ...]:
    """(time, value) pairs into BUCKETS bars of BUCKET_SECONDS ending at `now`, oldest first."""
    bars = [0.0] * BUCKETS
    start = now - BUCKETS * BUCKET_SECONDS
    for moment, value in moments:
        if moment < start or moment > now:
            continue
        index = min(BUCKETS - 1, int((moment - start) / BUCKET_SECONDS))
        bars[index] = bars[index] + value if combine == "sum" else max(bars[index], value)
    return tuple(bars)


def idle_reasons(runtime: NodeRuntime, waiting: Sequence[Job], now: float) -> tuple[str, ...]:
    """Why a node with nothing of ours runs none of the waiting jobs, most common first.

    Empty when the node is busy or nothing waits: only an idle node beside a
    queue needs explaining.
    """
    if runtime.in_flight or not waiting:
        return ()
    if runtime.state == "down":
        return (f"down: {runtime.state_reason}",)
    if not runtime.stream.connected:
        return ("its event stream is not connected (progress would be lost)",)
    view = runtime.view(now)
    reasons: Counter[str] = Counter()
    for job in waiting:
        refused = refusal(job.spec, view)
        if refused is not None:
            reasons[refused.removeprefix(f"{runtime.id}: ")] += 1
        elif runtime.id in job.excluded:
            reasons["the job failed here before"] += 1
        elif job.not_before > now:
            reasons["the job waits out a retry pause"] += 1
        else:
            reasons["none: it takes a job at the next dispatch"] += 1
    named = [
        f"{count} job{'s' if count > 1 else ''}: {why}"
        for why, count in reasons.most_common(MAX_REASONS)
    ]
    rest = sum(reasons.values()) - sum(count for _, count in reasons.most_common(MAX_REASONS))
    if rest:
        named.append(f"{rest} more for other reasons")
    return tuple(named)


def farm_snapshot(
    nodes: Mapping[str, NodeRuntime], jobs: Iterable[Job], stats: FarmStats, now: float
) -> FarmSnapshot:
    """The dashboard at `now` (monotonic): every node's row and the farm line."""
    waiting = [job for job in jobs if job.state == JobState.QUEUED]
    elapsed = max(1e-9, now - stats.started_at)
    rows = []
    last_minute = 0
    total = 0
    for runtime in nodes.values():
        history = stats.history.get(runtime.id) or NodeHistory()
        finished = list(history.finished)
        total += len(finished)
        last_minute += sum(1 for moment in finished if now - moment <= 60.0)
        running = next(
            (job for job in runtime.in_flight.values() if job.state == JobState.RUNNING), None
        )
        label = progress = None
        if running is not None:
            step = running.last_step[0] if running.last_step else 0
            label = f"job {running.job_id[:6]} {step}/{running.spec.steps}"
            progress = min(1.0, step / running.spec.steps) if running.spec.steps else None
        system = runtime.system_stats
        rows.append(
            NodeRow(
                id=runtime.id,
                tier=runtime.config.tier,
                health=runtime.state,
                since=runtime.state_since,
                reason=runtime.state_reason,
                last_error=history.last_error,
                ours=len(runtime.in_flight),
                others=runtime.others_queued(),
                running=label,
                progress=progress,
                vram_used=None if system is None else system.vram_total - system.vram_free,
                vram_total=None if system is None else system.vram_total,
                ram_used=None if system is None else system.ram_total - system.ram_free,
                ram_total=None if system is None else system.ram_total,
                seconds_per_step=dict(runtime.speed.seconds_per_step),
                images_recent=sum(1 for moment in finished if now - moment <= RECENT_SECONDS),
                throughput=buckets(((moment, 1.0) for moment in finished), now),
                queue_depth=buckets(
                    ((moment, float(depth)) for moment, depth in history.queue_samples),
                    now,
                    combine="max",
                ),
                checkpoint=runtime.loaded_checkpoint,
                busy_share=min(1.0, stats.busy_seconds(runtime.id, now) / elapsed)
                if runtime.id in stats.history
                else 0.0,
                idle_reasons=idle_reasons(runtime, waiting, now),
            )
        )
    return FarmSnapshot(
        nodes=tuple(rows),
        waiting=len(waiting),
        images_per_minute=float(last_minute),
        images_total=total,
        session_seconds=elapsed,
    )


def size_text(count: int | None) -> str:
    """Bytes as a person reads them: 7.2 GB."""
    if count is None:
        return "-"
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def since_text(moment: float, now: float | None = None) -> str:
    """How long ago a wall-clock moment was: 42 s, 3 min, 2 h."""
    seconds = max(0.0, (time.time() if now is None else now) - moment)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


SPARK_BARS = "▁▂▃▄▅▆▇█"


def spark_text(values: Sequence[float]) -> str:
    """A sparkline in block characters, for Rich (Textual has its own Sparkline widget)."""
    top = max(values, default=0.0)
    if top <= 0:
        return SPARK_BARS[0] * len(values)
    return "".join(SPARK_BARS[round(value / top * (len(SPARK_BARS) - 1))] for value in values)


def now_text(row: NodeRow) -> str:
    """What the node does: its job and progress, or why it is idle while jobs wait."""
    if row.running is not None:
        percent = "" if row.progress is None else f" {row.progress:.0%}"
        return f"job {row.running.split(' ')[1]}{percent}"
    if row.idle_reasons:
        return f"idle: {row.idle_reasons[0].split(': ', 1)[-1]}"
    return "idle"


def memory_text(used: int | None, total: int | None) -> str:
    """7.2/16G: used of total in gigabytes."""
    if used is None or total is None or total <= 0:
        return "-"
    return f"{used / 1024**3:.1f}/{total / 1024**3:.0f}G"


def speed_text(row: NodeRow) -> str:
    """Learnt seconds per step, per family: sd15 0.040, sdxl 0.160."""
    if not row.seconds_per_step:
        return "not learnt yet"
    return ", ".join(
        f"{family} {value:.3f}" for family, value in sorted(row.seconds_per_step.items())
    )


def farm_line(snapshot: FarmSnapshot) -> str:
    """The farm at a glance: its pace, what waits, and how busy each GPU was this session."""
    busy = "  ".join(f"{row.id} {row.busy_share:.0%}" for row in snapshot.nodes)
    return (
        f"farm: {snapshot.images_per_minute:.0f} images/min, {snapshot.images_total} this "
        f"session, {snapshot.waiting} waiting · busy this session: {busy}"
    )
