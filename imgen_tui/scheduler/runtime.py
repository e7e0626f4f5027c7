"""One node as the scheduler sees it: its connection, health, load and speed."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from imgen_tui.comfy import ComfyClient, ComfyError, NodeEventStream
from imgen_tui.comfy.capabilities import confirmed_capabilities, declared_capabilities
from imgen_tui.comfy.responses import ObjectInfo, SystemStats
from imgen_tui.comfy.websocket import Backoff
from imgen_tui.config import NodeConfig
from imgen_tui.graphs.lora_stack import LoraStack
from imgen_tui.scheduler.jobs import Job, JobSpec, JobState
from imgen_tui.scheduler.routing import NodeState, NodeView
from imgen_tui.scheduler.speed import SpeedModel

PROBE_TIMEOUT = httpx.Timeout(3.0, connect=2.0)
#: a health probe's whole answer must arrive within this, however it trickles in
PROBE_DEADLINE = 5.0
#: when others' prompts are queued, each is assumed to cost about this many steps
OTHERS_STEPS_GUESS = 20


@dataclass(eq=False)
class NodeRuntime:
    config: NodeConfig
    client: ComfyClient
    stream: NodeEventStream
    speed: SpeedModel
    capacity: int  # prompts on the node at once: one running plus the prefetched
    load_seconds: float = 5.0
    patch_seconds: float = 1.5
    state: NodeState = "down"
    state_reason: str = "not checked yet"
    capabilities: frozenset[str] = frozenset()
    checkpoints: frozenset[str] | None = None
    controlnets: tuple[str, ...] = ()  # ControlNet files, from /object_info
    loras: frozenset[str] | None = None  # installed LoRA files, from /object_info
    object_info: ObjectInfo | None = None  # its last answer: widget order for UI workflows
    loaded_checkpoint: str | None = None
    loaded_loras: LoraStack = ()  # the LoRA stack its model was last patched with
    in_flight: dict[str, Job] = field(default_factory=dict)  # prompt id -> job
    slot_freed_at: float = 0.0
    consecutive_failures: int = 0
    confirmed: bool = False  # object_info has been read at least once
    uploads: dict[str, asyncio.Future[str]] = field(default_factory=dict)  # source -> name here
    #: its last /system_stats answer (VRAM, RAM): the health check reads it anyway
    system_stats: SystemStats | None = None
    state_since: float = field(default_factory=time.time)  # wall clock of the last state change

    @classmethod
    def create(
        cls,
        config: NodeConfig,
        client_id: str,
        *,
        prefetch: int,
        learn_speed: bool,
        backoff: Backoff | None = None,
    ) -> NodeRuntime:
        client = ComfyClient(
            config.base_url, name=config.id, client_id=client_id, headers=config.headers
        )
        stream = NodeEventStream(
            config.base_url,
            client_id,
            name=config.id,
            headers=config.headers,
            backoff=backoff or Backoff(),
        )
        seed = None if learn_speed else config.seconds_per_step
        return cls(
            config=config,
            client=client,
            stream=stream,
            speed=SpeedModel(seed),
            capacity=1 + prefetch,
            capabilities=declared_capabilities(config.capabilities),
            load_seconds=config.load_seconds,
            patch_seconds=config.patch_seconds,
        )

    @property
    def id(self) -> str:
        return self.config.id

    async def upload_source(self, path: str) -> str:
        """Put a local image in this node's input folder once; its name there for LoadImage.

        The name is derived from the content, so a picture uploaded twice (or by
        an earlier run) overwrites itself instead of piling up copies. Jobs that
        need the same picture at the same time share one upload: ComfyUI writes
        an upload in place, so a second upload of the file would truncate it
        under a job that is reading it.
        """
        upload = self.uploads.get(path)
        if upload is None:
            upload = self.uploads[path] = asyncio.ensure_future(self._upload(path))
        try:
            return await asyncio.shield(upload)
        except Exception:
            if self.uploads.get(path) is upload:
                del self.uploads[path]  # the next job tries again
            raise

    async def _upload(self, path: str) -> str:
        data = await asyncio.to_thread(Path(path).read_bytes)
        name = f"imgen-{hashlib.sha256(data).hexdigest()[:20]}.png"
        ref = await self.client.upload_image(data, name, overwrite=True)
        return ref.filename

    def can_take(self) -> bool:
        """A free slot on a live node whose events we can hear (else progress is lost)."""
        return (
            self.state != "down" and self.stream.connected and len(self.in_flight) < self.capacity
        )

    def learn(self, job: Job, seconds: float, *, switched_model: bool) -> None:
        """Teach speed from a finished job; a model switch also teaches the load time."""
        sampling = job.sampling()
        if switched_model:
            self.speed.observe_sampling(job.spec, sampling)
            expected = self.speed.run_seconds(job.spec)
            measured = max(0.0, seconds - expected)
            self.load_seconds += 0.5 * (measured - self.load_seconds)
        else:
            after = None
            if job.last_step is not None and job.started_at is not None:
                after = job.started_at + seconds - job.last_step[1]
            self.speed.observe(job.spec, seconds, sampling=sampling, after=after)

    def checkpoint_after_queue(self) -> str | None:
        """The checkpoint this node will have loaded once its queued prompts have run."""
        for job in reversed(list(self.in_flight.values())):
            if job.spec.checkpoint is not None:
                return job.spec.checkpoint
        return self.loaded_checkpoint

    def loras_after_queue(self) -> LoraStack:
        """The LoRA stack this node's model will carry once its queued prompts have run."""
        for job in reversed(list(self.in_flight.values())):
            if job.spec.checkpoint is not None:
                return job.spec.lora_stack
        return self.loaded_loras

    def mark_loaded(self, spec: JobSpec) -> None:
        """A prompt with a model ran here: its checkpoint and LoRA stack are what is loaded."""
        if spec.checkpoint is not None:
            self.loaded_checkpoint, self.loaded_loras = spec.checkpoint, spec.lora_stack

    def others_queued(self) -> int:
        """Prompts on the node that are not ours: other people's load."""
        return max(0, self.stream.queue_remaining - len(self.in_flight))

    def view(self, now: float) -> NodeView:
        partial = NodeView(
            id=self.id,
            tier=self.config.tier,
            state=self.state,
            capabilities=self.capabilities,
            max_resolution=self.config.max_resolution,
            loaded_checkpoint=self.checkpoint_after_queue(),
            checkpoints=self.checkpoints,
            loras=self.loras,
            seconds_per_step=dict(self.speed.seconds_per_step),
            fixed_seconds=dict(self.speed.fixed_seconds),
            load_seconds=self.load_seconds,
            loaded_loras=self.loras_after_queue(),
            patch_seconds=self.patch_seconds,
        )
        busy = 0.0
        for job in self.in_flight.values():
            estimate = partial.run_seconds(job.spec)
            if job.state == JobState.RUNNING and job.started_at is not None:
                estimate = max(0.0, estimate - (now - job.started_at))
            busy += estimate
        if self.others_queued():
            per_step = max(self.speed.seconds_per_step.values(), default=1.0)
            busy += self.others_queued() * OTHERS_STEPS_GUESS * per_step
        return dataclasses.replace(partial, busy_seconds=busy)

    async def probe(self) -> str | None:
        """Check the node answers; returns why not, or None when it is healthy."""
        try:
            self.system_stats = await self.client.system_stats(
                http_timeout=PROBE_TIMEOUT, deadline=PROBE_DEADLINE
            )
        except ComfyError as error:
            return str(error)
        return None

    async def confirm(self, models: dict[str, str]) -> None:
        """Read /object_info: keep only the declared capabilities it backs up."""
        info = await self.client.object_info()
        self.capabilities = confirmed_capabilities(info, self.config.capabilities, models)
        self.checkpoints = frozenset(info.checkpoints) | frozenset(info.models("unet"))
        self.controlnets = info.controlnets
        self.loras = frozenset(info.loras)
        self.object_info = info
        self.confirmed = True

    def mark_slot_freed(self) -> None:
        self.slot_freed_at = time.monotonic()

    async def close(self) -> None:
        await self.stream.close()
        await self.client.close()
