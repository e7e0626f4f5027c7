"""The embedded scheduler: late binding, prefetch, speed-aware tail, retries, exactly once.

Jobs wait here, not on the nodes. A node takes a job only when it has a free
slot (one running prompt plus `prefetch` queued, so the GPU never waits for a
round trip). While many jobs wait, a free node takes the first one it can
run; near the end of a round the remaining jobs are planned by earliest
completion so a slow GPU does not finish last (`routing.plan_tail`), and when
nothing waits any more a node that frees up takes back a prompt still queued
on a slower node (`POST /queue` delete) if it would finish it sooner.
Work with a preferred tier (`min_tier`) goes below it only when routing's
estimate, which counts a lower node's run twice, says the preferred nodes are
that much busier; a retry goes to another node while one can run it.

A job never waits without an end: one that failed on (or is refused by) every
node fails with the nodes' reasons, and one that no live node can run fails
after its time limit naming the nodes that are down, unless `wait_for_nodes`.

Exactly once: a job leaves a node's `in_flight` map in exactly one place
(`_take_back`); whichever of completion, failure, timeout, node loss or
reconciliation gets there first decides, and late news about a prompt id that
was taken back is ignored, so no image is ever delivered twice.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Collection, Iterable, Mapping
from typing import Any, Protocol

from imgen_tui.comfy import ComfyError, GraphRejected, NodeUnreachable
from imgen_tui.comfy.client import ComfyClient, new_prompt_id
from imgen_tui.comfy.events import (
    Executed,
    Executing,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    ImageRef,
    Preview,
    Progress,
)
from imgen_tui.comfy.responses import HistoryEntry
from imgen_tui.comfy.run import execution_failed, history_outcome, no_saved_image
from imgen_tui.comfy.websocket import (
    Backoff,
    Connected,
    Disconnected,
    FrameSkipped,
    StreamEvent,
)
from imgen_tui.config import FarmConfig
from imgen_tui.graphs.graph import Graph, GraphError
from imgen_tui.graphs.inject import set_source_image
from imgen_tui.graphs.lora_stack import LoraStack
from imgen_tui.graphs.references import (
    ReferenceUnavailable,
    bind_references,
    map_outputs,
    set_reference_image,
)
from imgen_tui.graphs.ui_workflow import ui_workflow
from imgen_tui.scheduler.events import (
    JobAssigned,
    JobCancelled,
    JobDone,
    JobEvent,
    JobFailed,
    JobPreview,
    JobProgress,
    JobQueued,
    JobRetrying,
    JobStarted,
    NodeStateChanged,
)
from imgen_tui.scheduler.farm_stats import FarmStats
from imgen_tui.scheduler.jobs import Job, JobSpec, JobState
from imgen_tui.scheduler.mailbox import EventMailbox
from imgen_tui.scheduler.routing import (
    NodeState,
    NodeView,
    estimate,
    plan_tail,
    refusal,
    route,
)
from imgen_tui.scheduler.runtime import NodeRuntime

log = logging.getLogger(__name__)


class JobKeeper(Protocol):
    """Makes the scheduler's work durable before anyone hears of it (the store).

    `before_post` commits the prompt id before the prompt is sent, so a crash
    can always be reconciled; `keep_outputs` fetches and saves a finished
    job's images before `JobDone` is emitted. An exception from
    `keep_outputs` (a corrupt or truncated image) counts as a failed attempt.
    `record` sees every event before subscribers do; it must not block.
    """

    def record(self, event: JobEvent) -> None: ...

    async def before_post(self, job: Job) -> None: ...

    async def keep_outputs(
        self, job: Job, node_id: str, client: ComfyClient, images: tuple[ImageRef, ...]
    ) -> tuple[object, ...]: ...


#: how many runnable jobs a free node looks at for one whose checkpoint it has loaded
#: (jobs other nodes took in the same pass are skipped, not counted: a constant window
#: keeps a pass's cost flat as the farm grows)
AFFINITY_WINDOW = 16
#: a job that has waited this long is taken even if it costs a checkpoint switch
AFFINITY_MAX_WAIT = 10.0
#: below this many waiting jobs per live node, the end of the round is planned
TAIL_JOBS_PER_NODE = 2
#: how long `start` waits for the nodes' first health checks before dispatching anyway
FIRST_CHECK_WAIT = 2.0
#: a queued prompt moves to a free node only if that gains this much (two round trips and
#: the estimates' noise), in seconds plus a share of its run there
TAKE_BACK_MARGIN = (0.2, 0.1)


class Scheduler:
    def __init__(
        self,
        farm: FarmConfig,
        *,
        client_id: str | None = None,
        prefetch: int = 1,
        affinity: bool = True,
        tail: bool = True,
        learn_speed: bool = False,
        health_interval: float = 10.0,
        max_attempts: int = 3,
        retry_base: float = 0.5,
        keeper: JobKeeper | None = None,
        backoff: Backoff | None = None,
        wait_for_nodes: bool = False,
    ) -> None:
        """`wait_for_nodes`: a job no live node can run waits for one for good, instead
        of failing after its time limit with the nodes it was waiting for."""
        self.farm = farm
        self.wait_for_nodes = wait_for_nodes
        self.client_id = client_id or str(uuid.uuid4())
        self.affinity, self.tail = affinity, tail
        self.health_interval = health_interval
        self.max_attempts, self.retry_base = max_attempts, retry_base
        self.keeper = keeper
        self.nodes = {
            node.id: NodeRuntime.create(
                node, self.client_id, prefetch=prefetch, learn_speed=learn_speed, backoff=backoff
            )
            for node in farm.nodes
        }
        self.jobs: dict[str, Job] = {}
        self.dispatch_latencies: deque[float] = deque(maxlen=100_000)
        self._pending: list[tuple[int, int, Job]] = []  # (priority, seq, job), kept sorted
        self._seq = 0
        self._unfinished = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._subscribers: list[EventMailbox] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._taking_back: set[str] = set()  # free nodes waiting for a prompt taken back for them
        self.taken_back = 0  # prompts moved from a slow node's queue to a faster node
        self._stranded = False  # some waiting job has found no live node to run it
        self.stats = FarmStats(self.nodes)  # what the GPU dashboard draws

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Check every node once, waiting at most `FIRST_CHECK_WAIT` for the slow ones.

        Each node has its own health loop, so a node that answers slowly (or
        not at all) delays neither the start nor the checks of the others; it
        joins the farm whenever its first answer arrives.
        """
        first_checks = []
        for runtime in self.nodes.values():
            first = asyncio.create_task(self._check_health(runtime), name=f"check:{runtime.id}")
            first_checks.append(first)
            self._tasks.append(first)
            self._tasks.append(
                asyncio.create_task(self._health_loop(runtime, first), name=f"health:{runtime.id}")
            )
        if first_checks:
            await asyncio.wait(first_checks, timeout=FIRST_CHECK_WAIT)
        for runtime in self.nodes.values():
            runtime.stream.start()
            self._tasks.append(
                asyncio.create_task(self._consume(runtime), name=f"events:{runtime.id}")
            )
        self._tasks.append(asyncio.create_task(self._dispatch_loop(), name="dispatch"))
        self._tasks.append(asyncio.create_task(self._watchdog(), name="watchdog"))

    async def stop(self) -> None:
        for task in [*self._tasks, *self._background]:
            task.cancel()
        for task in [*self._tasks, *self._background]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await asyncio.gather(*(runtime.close() for runtime in self.nodes.values()))

    async def __aenter__(self) -> Scheduler:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the public surface ---------------------------------------------------------------

    def submit(self, spec: JobSpec) -> Job:
        """Queue a job; it goes to a node only when one can take it."""
        self._seq += 1
        job = Job(spec=spec, seq=self._seq, queued_at=time.monotonic())
        self.jobs[spec.job_id] = job
        self._unfinished += 1
        self._enqueue(job)
        self._emit(JobQueued(job))
        return job

    def submit_many(self, specs: Iterable[JobSpec]) -> list[Job]:
        return [self.submit(spec) for spec in specs]

    def adopt(self, spec: JobSpec, node_id: str, prompt_id: str, *, attempts: int = 1) -> Job:
        """Re-attach to a prompt an earlier run posted (the store finds them at start).

        The node is asked what became of it once it answers: finished → its
        images are kept; still queued or running → its events are followed;
        forgotten → the job is requeued. A node that is down now is asked when
        it comes back, so a finished image is never made twice. ComfyUI sends
        a prompt's events only to the client id that posted it, so unless this
        scheduler has that id, the node is asked again every second.
        """
        runtime = self.nodes.get(node_id)
        if runtime is None:  # the node left the config: run the job afresh
            return self.submit(spec)
        self._seq += 1
        now = time.monotonic()
        job = Job(spec=spec, seq=self._seq, queued_at=now, posted_at=now, attempts=attempts)
        job.state, job.node_id, job.prompt_id = JobState.ASSIGNED, node_id, prompt_id
        job.adopted = job.accepted = True
        self.jobs[spec.job_id] = job
        self._unfinished += 1
        self._idle.clear()
        runtime.in_flight[prompt_id] = job
        runtime.stream.watch(prompt_id)
        self._emit(JobAssigned(job, node_id, prompt_id))
        if runtime.state != "down":
            self._spawn(self._reconcile(runtime))
        return job

    def subscribe(self) -> AsyncGenerator[JobEvent, None]:
        """Every event from now on; a reader that falls behind gets progress coalesced."""
        mailbox = EventMailbox()
        self._subscribers.append(mailbox)

        async def iterate() -> AsyncGenerator[JobEvent, None]:
            try:
                while True:
                    yield await mailbox.get()
            finally:
                self._subscribers.remove(mailbox)

        return iterate()

    async def wait_idle(self) -> None:
        """Until every submitted job has finished one way or another."""
        while self._unfinished:
            self._idle.clear()
            await self._idle.wait()

    async def cancel(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.state.finished:
            return
        if job.state == JobState.QUEUED:
            self._remove_pending(job)
        elif job.node_id is not None and job.prompt_id is not None:
            runtime = self.nodes[job.node_id]
            prompt_id = job.prompt_id
            if self._take_back(runtime, prompt_id) is None:
                return
            await self._stop_prompt(runtime, prompt_id)
            self._spawn(self._confirm_stopped(runtime, prompt_id))
        self._finish(job, JobState.CANCELLED, JobCancelled(job))

    async def cancel_round(self, round_id: str) -> None:
        await asyncio.gather(
            *(
                self.cancel(job.job_id)
                for job in list(self.jobs.values())
                if job.spec.round_id == round_id
            )
        )

    async def cancel_all(self) -> None:
        await asyncio.gather(*(self.cancel(job_id) for job_id in list(self.jobs)))

    # -- queue -----------------------------------------------------------------------------

    def _enqueue(self, job: Job) -> None:
        job.state = JobState.QUEUED
        delay = job.not_before - time.monotonic()
        if delay > 0:  # a retry in backoff: look again when it is due
            asyncio.get_running_loop().call_later(delay, self._wake.set)
        bisect.insort(self._pending, (int(job.spec.priority), job.seq, job), key=lambda e: e[:2])
        self._idle.clear()
        self._wake.set()

    def _remove_pending(self, job: Job) -> None:
        index = bisect.bisect_left(
            self._pending, (int(job.spec.priority), job.seq), key=lambda e: e[:2]
        )
        if index < len(self._pending) and self._pending[index][2] is job:
            del self._pending[index]

    # -- dispatch -----------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._dispatch_once()

    def _dispatch_once(self) -> None:
        """Hand waiting jobs to free nodes.

        A pass looks only at the front of the queue, and builds node views
        only where a decision needs them, so its cost does not grow with the
        number of jobs waiting; only the end-of-round plan looks at every node.
        """
        free = [runtime for runtime in self.nodes.values() if runtime.can_take()]
        if not free:
            return
        now = time.monotonic()
        if not self._pending:
            if self.tail:
                self._take_back_for(free, now)
            return
        live_count = sum(1 for runtime in self.nodes.values() if runtime.state != "down")
        if self.tail and len(self._pending) <= TAIL_JOBS_PER_NODE * max(1, live_count):
            ready = [job for _, _, job in self._pending if job.not_before <= now]
            live = [runtime for runtime in self.nodes.values() if runtime.state != "down"]
            if ready:
                self._dispatch_tail(ready, free, {r.id: r.view(now) for r in live})
        else:
            self._dispatch_greedy(free, now)

    def _dispatch_greedy(self, free: list[NodeRuntime], now: float) -> None:
        """While many jobs wait, each free node takes the first job it can run.

        With model affinity it looks a little ahead for a job that needs no
        checkpoint switch or LoRA re-patch, unless the job at the head has waited
        too long; when it must switch, it leaves alone the models another node
        is about to have loaded (a sweep's seeds stay together on one node).
        """
        taken: set[int] = set()
        for runtime in free:
            view = runtime.view(now)
            while runtime.can_take():
                claimed = {
                    (other.checkpoint_after_queue(), other.loras_after_queue())
                    for other in self.nodes.values()
                    if other is not runtime and other.state != "down"
                }
                job = self._pick_for(view, taken, now, claimed)
                if job is None:
                    break
                taken.add(job.seq)
                self._assign(job, runtime)
                view = runtime.view(now)
        if len(taken) < len(free):  # a free node found nothing: is the front of the queue hopeless?
            views = {r.id: r.view(now) for r in self.nodes.values() if r.state != "down"}
            front = [job for _, _, job in self._pending[:AFFINITY_WINDOW] if job.not_before <= now]
            if any([self._failed_as_hopeless(job, views) for job in front]):
                self._wake.set()  # look again at the jobs behind them

    def _pick_for(
        self,
        view: NodeView,
        taken: set[int],
        now: float,
        claimed: Collection[tuple[str | None, LoraStack]] = (),
    ) -> Job | None:
        """The first job in the queue this node can run, preferring its loaded model.

        Without one, the first job whose model no other node has `claimed`
        (loaded, or queued last) goes before the plain first job.
        """
        fallback: Job | None = None
        unclaimed: Job | None = None
        looked = 0
        for _, _, job in self._pending:
            if looked >= AFFINITY_WINDOW:
                break
            if job.not_before > now or job.seq in taken:
                continue
            looked += 1
            if view.id in job.excluded or refusal(job.spec, view) is not None:
                continue
            if (job.avoided or view.below_tier(job.spec)) and not self._suits(job, view.id, now):
                continue
            if not self.affinity or view.load_cost(job.spec) == 0.0:
                return job
            if fallback is None:
                fallback = job
                if now - job.queued_at > AFFINITY_MAX_WAIT:
                    return job
            if unclaimed is None and (job.spec.checkpoint, job.spec.lora_stack) not in claimed:
                unclaimed = job
        return unclaimed or fallback

    def _dispatch_tail(
        self, ready: list[Job], free: list[NodeRuntime], views: dict[str, NodeView]
    ) -> None:
        # A job every remaining node refuses, or that failed on all of them, ends here:
        # left out of the plan, it would wait for ever.
        remaining = [job for job in ready if not self._failed_as_hopeless(job, views)]
        for runtime in sorted(free, key=lambda r: views[r.id].busy_seconds):
            while runtime.can_take() and remaining:
                pairs = [(job, self._shunned(job, views)) for job in remaining]
                eligible = [(job, shun) for job, shun in pairs if runtime.id not in shun]
                plan = plan_tail(
                    [job.spec for job, _ in eligible],
                    list(views.values()),
                    affinity=self.affinity,
                    excluded=[shun for _, shun in eligible],
                )
                index = plan.get(runtime.id)
                if index is None:
                    break
                job = eligible[index][0]
                remaining.remove(job)
                self._assign(job, runtime)
                views[runtime.id] = runtime.view(time.monotonic())

    def _take_back_for(self, free: list[NodeRuntime], now: float) -> None:
        """The last step of the tail: a free node takes a prompt a slower node has not started.

        With one prompt prefetched per node, the end of a round can leave a job
        queued behind a slow GPU's running one while a fast GPU sits idle. If
        the free node would finish it sooner by a clear margin, the prompt is
        deleted from the slow node's queue and dispatched again; a prompt the
        slow node started meanwhile stays where it is.
        """
        views = {r.id: r.view(now) for r in self.nodes.values() if r.state != "down"}
        for thief in free:
            if thief.id in self._taking_back or thief.id not in views:
                continue
            here_view = views[thief.id]
            best: tuple[float, NodeRuntime, str, Job] | None = None
            for victim in self.nodes.values():
                if victim is thief or victim.id not in views:
                    continue
                for prompt_id, job in victim.in_flight.items():
                    waiting = job.state == JobState.ASSIGNED and job.accepted
                    if not waiting or job.taken_back or job.adopted:
                        continue
                    if thief.id in job.excluded or thief.id in job.avoided:
                        continue
                    if refusal(job.spec, here_view) is not None:
                        continue
                    here = estimate(job.spec, here_view, affinity=self.affinity).finish_in
                    gain = views[victim.id].busy_seconds - here
                    margin = TAKE_BACK_MARGIN[0] + TAKE_BACK_MARGIN[1] * here
                    if gain > margin and (best is None or gain > best[0]):
                        best = (gain, victim, prompt_id, job)
            if best is not None:
                _, victim, prompt_id, job = best
                job.taken_back = True
                self._taking_back.add(thief.id)
                self._spawn(self._take_back_queued(thief, victim, prompt_id, job))

    async def _take_back_queued(
        self, thief: NodeRuntime, victim: NodeRuntime, prompt_id: str, job: Job
    ) -> None:
        try:
            await victim.client.delete_queued([prompt_id])  # our own prompt id, never others'
            state = await victim.client.prompt_state(prompt_id)
        except ComfyError:
            return
        finally:
            self._taking_back.discard(thief.id)
            self._wake.set()
        if state != "unknown":  # it started (or even finished) before the delete landed
            return
        if self._take_back(victim, prompt_id) is None:
            return
        job.attempts -= 1  # moving it is not a failed attempt
        self.taken_back += 1
        self._emit(
            JobRetrying(job, victim.id, f"taken back from {victim.id}: {thief.id} is faster now")
        )
        self._enqueue(job)

    def _fail_if_hopeless(self, job: Job, refused: Mapping[str, str]) -> None:
        """Fail fast when every node it may use has refused it for good.

        Down nodes are left out of routing, so they never appear in `refused`:
        a job they could run waits for them instead of failing.
        """
        if job.state.finished:
            return
        candidates = {node_id for node_id in self.nodes if node_id not in job.excluded}
        if candidates <= refused.keys():
            reasons = [refused[node_id] for node_id in sorted(candidates)]
            if job.excluded and job.last_error:  # what the nodes it ran on said, first
                tried = ", ".join(sorted(job.excluded))
                reasons.insert(0, f"{job.last_error} (it failed on {tried})")
            reason = "; ".join(reasons) or "every node refused it"
            self._remove_pending(job)
            failed = JobFailed(job, f"no node can run this job: {reason}")
            self._finish(job, JobState.FAILED, failed)

    def _failed_as_hopeless(self, job: Job, views: Mapping[str, NodeView]) -> bool:
        candidates = [view for view_id, view in views.items() if view_id not in job.excluded]
        routing = route(job.spec, candidates, affinity=self.affinity)
        if routing.best is None:
            self._fail_if_hopeless(job, routing.refused)
        return job.state.finished

    def _shunned(self, job: Job, views: Mapping[str, NodeView]) -> set[str]:
        """Nodes this job must not go to now: those it cannot run on, and those an
        attempt failed on while another live node can run it."""
        if not job.avoided:
            return job.excluded
        elsewhere = any(
            view_id not in job.excluded
            and view_id not in job.avoided
            and refusal(job.spec, view) is None
            for view_id, view in views.items()
        )
        return job.excluded | job.avoided if elsewhere else job.excluded

    def _suits(self, job: Job, node_id: str, now: float) -> bool:
        """Whether a node a job would rather not use (it failed there, or it is below the
        job's tier) is its best choice after all: every better node is busier or gone."""
        views = {r.id: r.view(now) for r in self.nodes.values() if r.state != "down"}
        shunned = self._shunned(job, views)
        if node_id in shunned:
            return False
        candidates = [view for view_id, view in views.items() if view_id not in shunned]
        ranked = route(job.spec, candidates, affinity=self.affinity).ranked
        mine = next((choice for choice in ranked if choice.node_id == node_id), None)
        others = [choice.finish_in for choice in ranked if choice.node_id != node_id]
        return mine is not None and mine.finish_in < min(others, default=float("inf"))

    def _assign(self, job: Job, runtime: NodeRuntime) -> None:
        self._remove_pending(job)
        job.state = JobState.ASSIGNED
        job.node_id = runtime.id
        job.prompt_id = new_prompt_id()
        job.attempts += 1
        job.posted_at = job.started_at = None  # this attempt's clock starts at its own POST
        job.first_step = job.last_step = None
        job.heard_outputs = None
        job.stranded_since = None
        job.accepted = False
        runtime.in_flight[job.prompt_id] = job
        runtime.stream.watch(job.prompt_id)
        self._emit(JobAssigned(job, runtime.id, job.prompt_id))
        self._spawn(self._post(runtime, job, job.prompt_id))

    async def _post(self, runtime: NodeRuntime, job: Job, prompt_id: str) -> None:
        if self.keeper is not None:
            await self.keeper.before_post(job)  # the prompt id is committed before it is sent
        now = time.monotonic()
        self.dispatch_latencies.append(now - max(runtime.slot_freed_at, job.queued_at))
        job.posted_at = now
        try:
            graph = job.spec.graph
            if job.spec.source_image is not None:
                name = await runtime.upload_source(job.spec.source_image)
                graph = set_source_image(graph, name)
            for load_id, path in job.spec.reference_images:
                graph = set_reference_image(graph, load_id, await runtime.upload_source(path))
            if job.spec.reference_images:
                graph = bind_references(graph, runtime.object_info, job.spec.family)
            job.graph_sent = graph  # the sidecar records what ran, not the template's name
            await runtime.client.submit(
                graph, prompt_id=prompt_id, extra_data=_png_info(graph, runtime)
            )
            job.accepted = True
        except GraphRejected as rejected:
            self._rejected(runtime, job, prompt_id, rejected)
        except (ComfyError, OSError) as error:  # OSError: the source image file is unreadable
            if isinstance(error, ComfyError) and not error.retryable:
                if self._take_back(runtime, prompt_id) is not None:
                    self._finish(job, JobState.FAILED, JobFailed(job, str(error)))
                return
            self._retry(runtime, prompt_id, str(error), exclude=False)
            if isinstance(error, NodeUnreachable):
                await self._node_lost(runtime, str(error))
        except ReferenceUnavailable as error:  # this node lacks the file: another may have it
            self._retry(runtime, prompt_id, f"{runtime.id}: {error}", exclude=True)
        except GraphError as error:  # the job itself is wrong: no node can help
            if self._take_back(runtime, prompt_id) is not None:
                self._finish(job, JobState.FAILED, JobFailed(job, str(error)))

    def _rejected(
        self, runtime: NodeRuntime, job: Job, prompt_id: str, rejected: GraphRejected
    ) -> None:
        if self._take_back(runtime, prompt_id) is None:
            return
        job.last_error = str(rejected)
        if rejected.missing_models:
            # Another node may have the model: try it there, without counting an attempt.
            job.attempts -= 1
            job.excluded.add(runtime.id)
            self._emit(JobRetrying(job, runtime.id, str(rejected)))
            self._enqueue(job)
        else:
            self._finish(job, JobState.FAILED, JobFailed(job, str(rejected)))

    # -- node events ---------------------------------------------------------------------------

    async def _consume(self, runtime: NodeRuntime) -> None:
        async for event in runtime.stream:
            try:
                await self._handle(runtime, event)
            except Exception:  # one bad event must not stop this node's stream
                log.exception("%s: could not handle %r", runtime.id, event)

    async def _handle(self, runtime: NodeRuntime, event: StreamEvent) -> None:
        if isinstance(event, Connected):
            self._wake.set()
            if event.reconnect or runtime.in_flight:  # events may have been missed
                self._spawn(self._reconcile(runtime))
            if runtime.state == "down":
                self._spawn(self._check_health(runtime))
            return
        if isinstance(event, Disconnected | FrameSkipped):  # what was said meanwhile is lost
            for unsure in runtime.in_flight.values():
                unsure.heard_outputs = None
            if isinstance(event, Disconnected):
                self._spawn(self._check_health(runtime))
            return
        prompt_id = getattr(event, "prompt_id", None)
        job = runtime.in_flight.get(prompt_id) if prompt_id else None
        if job is None:
            return
        if isinstance(event, Executed):
            if job.heard_outputs is not None:
                job.heard_outputs[event.node] = event.output
        elif isinstance(event, ExecutionSuccess):
            entry = _heard_entry(job)
            if entry is not None:  # else the end (`executing` None) asks /history
                await self._collect(runtime, event.prompt_id, entry)
        elif isinstance(event, ExecutionStart):
            job.heard_outputs = {}
            job.state = JobState.RUNNING
            job.started_at = time.monotonic()
            checkpoint = job.spec.checkpoint
            job.switched_model = checkpoint is not None and checkpoint != runtime.loaded_checkpoint
            runtime.mark_loaded(job.spec)
            self._emit(JobStarted(job, runtime.id))
        elif isinstance(event, Progress):
            now = time.monotonic()
            if job.last_step is None or event.value <= job.last_step[0]:  # a (next) sampler
                job.first_step = (event.value, now)
            job.last_step = (event.value, now)
            eta = self._eta(runtime, job, event)
            self._emit(JobProgress(job, runtime.id, event.value, event.max, eta))
        elif isinstance(event, Preview):
            self._emit(JobPreview(job, runtime.id, event.image, event.format))
        elif isinstance(event, ExecutionError):
            failure = execution_failed(event, runtime.id)
            self._retry(runtime, event.prompt_id, str(failure), exclude=not failure.out_of_memory)
        elif isinstance(event, ExecutionInterrupted):
            self._retry(runtime, event.prompt_id, f"{runtime.id}: interrupted", exclude=False)
        elif isinstance(event, Executing) and event.node is None and prompt_id is not None:
            await self._collect(runtime, prompt_id)

    def _eta(self, runtime: NodeRuntime, job: Job, event: Progress) -> float | None:
        """The steps left at this job's own pace, then what the node spends after sampling.

        Not the time since the start divided by the steps done: that counts text
        encoding and model loading as sampling and shows "111s" for a 3 s job.
        """
        sampling = job.sampling()
        if sampling is not None:
            per_step: float | None = sampling[1] / sampling[0]
        else:
            per_step = runtime.speed.step_seconds(job.spec)
        if per_step is None or event.value <= 0:
            return None
        after = runtime.speed.after_seconds.get(job.spec.family, 0.0)
        return per_step * max(0, event.max - event.value) + after

    async def _collect(
        self, runtime: NodeRuntime, prompt_id: str, heard: HistoryEntry | None = None
    ) -> None:
        """The prompt ended: take its outcome and settle the job once.

        `heard` is the outcome the `executed` messages told, when every frame
        since the prompt started was read: it saves a /history round trip on
        every finished picture (6 ms, 15 at p95 in `bench ui`). Otherwise
        (a reconnect, an adopted prompt, a frame that could not be read) the
        history, the record that survives a dropped WebSocket, says it.
        """
        try:
            entry = heard or await runtime.client.history(prompt_id)
        except ComfyError as error:
            self._retry(runtime, prompt_id, str(error), exclude=False)
            return
        if entry is None:
            self._retry(runtime, prompt_id, f"{runtime.id} lost prompt {prompt_id}", exclude=False)
            return
        try:
            history_outcome(entry, runtime.id)
        except ComfyError as error:
            self._retry(runtime, prompt_id, str(error), exclude=True)
            return
        if not entry.saved_images:  # a job is done only when its pictures are kept
            self._retry(runtime, prompt_id, no_saved_image(entry, runtime.id), exclude=True)
            return
        job = self._take_back(runtime, prompt_id)
        if job is None:
            return
        if job.started_at is not None:
            runtime.learn(job, time.monotonic() - job.started_at, switched_model=job.switched_model)
        runtime.mark_loaded(job.spec)
        self._dispatch_once()  # refill the freed slot now, while the outputs are fetched
        kept: tuple[object, ...] = ()
        if job.graph_sent is not None and job.spec.reference_images:
            job.reference_maps = map_outputs(job.graph_sent, entry.outputs)
        if self.keeper is not None:
            try:
                kept = await self.keeper.keep_outputs(
                    job, runtime.id, runtime.client, entry.saved_images
                )
            except Exception as error:  # a corrupt image fails this attempt, never the app
                log.warning(
                    "%s: could not keep the outputs of %s: %s", runtime.id, prompt_id, error
                )
                if not getattr(error, "retryable", True):  # e.g. an image over the download cap
                    self._finish(job, JobState.FAILED, JobFailed(job, str(error)))
                else:
                    self._requeue(job, runtime.id, str(error), exclude=False)
                return
        self._finish(job, JobState.DONE, JobDone(job, runtime.id, entry.saved_images, kept))

    async def _reconcile(self, runtime: NodeRuntime, *, adopted_only: bool = False) -> None:
        """After a reconnect or an adoption: settle what finished, requeue what was lost.

        A prompt whose POST has not been answered yet is left alone: the node
        may not know it *yet*, and requeueing it would run it twice.
        """
        for prompt_id, job in list(runtime.in_flight.items()):
            if not job.accepted or (adopted_only and not job.adopted):
                continue
            try:
                state = await runtime.client.prompt_state(prompt_id)
            except ComfyError:
                return
            if state == "done":
                await self._collect(runtime, prompt_id)
            elif state == "unknown":
                self._retry(
                    runtime, prompt_id, f"{runtime.id} forgot prompt {prompt_id}", exclude=False
                )

    # -- failure paths ---------------------------------------------------------------------------

    def _take_back(self, runtime: NodeRuntime, prompt_id: str) -> Job | None:
        """The single exit from a node: whoever takes the job back first settles it."""
        job = runtime.in_flight.pop(prompt_id, None)
        runtime.stream.forget(prompt_id)
        if job is not None:
            runtime.mark_slot_freed()
            self._wake.set()
        return job

    def _retry(self, runtime: NodeRuntime, prompt_id: str, reason: str, *, exclude: bool) -> None:
        job = self._take_back(runtime, prompt_id)
        if job is not None:
            self._requeue(job, runtime.id, reason, exclude=exclude)

    def _requeue(self, job: Job, node_id: str, reason: str, *, exclude: bool) -> None:
        """Another attempt after a backoff, or the end of the job after the last one."""
        if job.state.finished:
            return
        job.last_error = reason
        if job.attempts >= self.max_attempts:
            self._finish(
                job,
                JobState.FAILED,
                JobFailed(job, f"gave up after {job.attempts} attempts: {reason}"),
            )
            return
        if exclude:
            job.excluded.add(node_id)
        else:
            job.avoided.add(node_id)
        job.not_before = time.monotonic() + self.retry_base * 2 ** (job.attempts - 1)
        self._emit(JobRetrying(job, node_id, reason))
        self._enqueue(job)

    async def _node_lost(self, runtime: NodeRuntime, reason: str) -> None:
        self._set_state(runtime, "down", reason)
        for prompt_id in list(runtime.in_flight):
            self._retry(runtime, prompt_id, reason, exclude=False)

    def _finish(self, job: Job, state: JobState, event: JobEvent) -> None:
        if job.state.finished:
            return
        job.state = state
        job.finished_at = time.monotonic()
        self._unfinished -= 1
        self._emit(event)
        if not self._unfinished:
            self._idle.set()

    # -- health and time limits -------------------------------------------------------------------

    async def _health_loop(self, runtime: NodeRuntime, first: asyncio.Task[None]) -> None:
        """One node's checks, every `health_interval` after its first one ended."""
        await asyncio.wait([first])
        while True:
            await asyncio.sleep(self.health_interval)
            await self._check_health(runtime)

    async def _check_health(self, runtime: NodeRuntime) -> None:
        try:
            await self._check_health_once(runtime)
        except Exception as error:  # a bad answer marks the node down, never ends its checks
            log.exception("%s: health check failed", runtime.id)
            problem = f"{runtime.id}: its health check failed ({type(error).__name__}: {error})"
            if runtime.state != "down":
                await self._node_lost(runtime, problem)
            runtime.state_reason = problem

    async def _check_health_once(self, runtime: NodeRuntime) -> None:
        problem = await runtime.probe()
        if problem is not None:
            runtime.consecutive_failures += 1
            if runtime.state != "down":
                await self._node_lost(runtime, problem)
            else:
                runtime.state_reason = problem
            return
        runtime.consecutive_failures = 0
        state: NodeState = "up"
        reason = "answering"
        if not runtime.confirmed:
            try:
                await runtime.confirm(self.farm.models)
            except ComfyError as error:  # it runs prompts, but what it has is unknown
                log.warning("%s: object_info unreadable: %s", runtime.id, error)
                state, reason = "degraded", str(error)
        if runtime.state != state:
            self._set_state(runtime, state, reason)
            if runtime.in_flight:  # prompts adopted while it was down
                self._spawn(self._reconcile(runtime))
            self._wake.set()

    def _set_state(self, runtime: NodeRuntime, state: NodeState, reason: str) -> None:
        if runtime.state != state:
            runtime.state, runtime.state_reason = state, reason
            runtime.state_since = time.time()
            self._emit(NodeStateChanged(runtime.id, state, reason))

    async def _watchdog(self) -> None:
        """A job over its time limit is stopped (our prompt only) and retried elsewhere.

        It also asks after adopted prompts, whose events may go to another client id.
        """
        ticks = 0
        while True:
            await asyncio.sleep(0.25)
            ticks += 1
            now = time.monotonic()
            if ticks % 4 == 0:
                self._fail_stranded(now)
                self.stats.sample(
                    {r.id: len(r.in_flight) + r.others_queued() for r in self.nodes.values()}
                )
            for runtime in self.nodes.values():
                if ticks % 4 == 0 and runtime.state != "down" and _has_adopted(runtime):
                    self._spawn(self._reconcile(runtime, adopted_only=True))
                for prompt_id, job in list(runtime.in_flight.items()):
                    since = job.started_at if job.started_at is not None else job.posted_at
                    limit = job.spec.time_limit * (1 if job.started_at is not None else 2)
                    if since is None or now - since <= limit:
                        continue
                    self._retry(
                        runtime,
                        prompt_id,
                        f"{runtime.id}: timed out after {job.spec.time_limit:g} s",
                        exclude=True,
                    )
                    self._set_state(runtime, "degraded", "a job timed out")
                    self._spawn(self._stop_prompt(runtime, prompt_id))

    def _fail_stranded(self, now: float) -> None:
        """A waiting job no live node can run fails after its time limit, naming the nodes.

        Routing leaves down nodes out instead of refusing the job (they may come
        back), so with every node down a job would otherwise wait for ever with
        no word of why. Told to wait (`wait_for_nodes`), it does.
        """
        down = [r for r in self.nodes.values() if r.state == "down"]
        if self.wait_for_nodes or not self._pending or not down:
            for _, _, job in self._pending if self._stranded else ():
                job.stranded_since = None
            self._stranded = False
            return
        views = [r.view(now) for r in self.nodes.values() if r.state != "down"]
        runnable: dict[tuple[object, ...], bool] = {}  # a round's jobs share a few shapes
        expired: list[Job] = []
        for _, _, job in self._pending:
            spec = job.spec
            shape = (spec.family, spec.width, spec.height, spec.checkpoint, spec.needs)
            key = (*shape, frozenset(job.excluded))
            if key not in runnable:
                runnable[key] = any(
                    view.id not in job.excluded and refusal(spec, view) is None for view in views
                )
            if runnable[key]:
                job.stranded_since = None
            elif job.stranded_since is None:
                job.stranded_since = now
                self._stranded = True
            elif now - job.stranded_since > spec.time_limit:
                expired.append(job)
        for job in expired:
            waited = f"{job.spec.time_limit:g} s"
            nodes = "; ".join(
                r.state_reason if r.state_reason.startswith(r.id) else f"{r.id}: {r.state_reason}"
                for r in down
                if r.id not in job.excluded
            )
            self._remove_pending(job)
            self._finish(
                job,
                JobState.FAILED,
                JobFailed(job, f"no node was up to run this job for {waited}: {nodes}"),
            )

    async def _stop_prompt(self, runtime: NodeRuntime, prompt_id: str) -> None:
        """Only ever our own prompt id: delete it if still queued, interrupt it if running.

        Two requests, each tried on its own: a failed delete must not skip the interrupt.
        """
        with contextlib.suppress(ComfyError):
            await runtime.client.delete_queued([prompt_id])
        with contextlib.suppress(ComfyError):
            await runtime.client.interrupt(prompt_id)

    async def _confirm_stopped(
        self, runtime: NodeRuntime, prompt_id: str, *, checks: int = 40, interval: float = 0.25
    ) -> None:
        """Ask after a cancelled prompt until the node no longer has it, stopping it again.

        An interrupt that arrives between two of a node's steps, or before the
        prompt started, can be missed; a prompt left running would hold the
        GPU for nothing and show up as another client's work.
        """
        for _ in range(checks):
            try:
                state = await runtime.client.prompt_state(prompt_id)
            except ComfyError:
                return  # the node is gone or will not say; its queue dies with it
            if state in ("done", "unknown"):
                return
            await asyncio.sleep(interval)
            await self._stop_prompt(runtime, prompt_id)
        log.warning(
            "%s still has cancelled prompt %s after %d checks", runtime.id, prompt_id, checks
        )

    # -- plumbing ------------------------------------------------------------------------------

    def _emit(self, event: JobEvent) -> None:
        self.stats.record(event)
        if self.keeper is not None:
            self.keeper.record(event)
        for mailbox in self._subscribers:
            mailbox.put(event)

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _has_adopted(runtime: NodeRuntime) -> bool:
    return any(job.adopted for job in runtime.in_flight.values())


def _heard_entry(job: Job) -> HistoryEntry | None:
    """The outcome the job's `executed` messages told, if heard whole and it saved a picture.

    Nothing saved, or an output that does not parse: /history decides, and
    says why in its own words.
    """
    if job.heard_outputs is None or job.prompt_id is None:
        return None
    try:
        entry = HistoryEntry.from_outputs(job.prompt_id, job.heard_outputs)
    except ComfyError as error:
        log.warning("%s: asking /history: %s", job.node_id, error)
        return None
    return entry if entry.saved_images else None


def _png_info(graph: Graph, runtime: NodeRuntime) -> dict[str, Any]:
    """`extra_pnginfo`: SaveImage writes its `workflow` into the PNG for ComfyUI's editor."""
    classes = runtime.object_info.classes if runtime.object_info is not None else None
    try:
        return {"extra_pnginfo": {"workflow": ui_workflow(graph, classes)}}
    except Exception:  # a picture without a layout is still a picture
        log.exception("%s: could not lay out the graph for its PNG", runtime.id)
        return {}
