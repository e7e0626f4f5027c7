"""What the scheduler tells its subscribers (the UI, the store) about jobs and nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from imgen_tui.comfy.events import ImageRef
from imgen_tui.scheduler.jobs import Job


@dataclass(frozen=True)
class JobQueued:
    job: Job


@dataclass(frozen=True)
class JobAssigned:
    job: Job
    node_id: str
    prompt_id: str


@dataclass(frozen=True)
class JobStarted:
    job: Job
    node_id: str


@dataclass(frozen=True)
class JobProgress:
    """May be coalesced: a subscriber that falls behind sees only the latest step."""

    job: Job
    node_id: str
    step: int
    total: int
    eta_seconds: float | None


@dataclass(frozen=True)
class JobPreview:
    job: Job
    node_id: str
    image: bytes = field(repr=False)
    format: Literal["jpeg", "png"] = "jpeg"


@dataclass(frozen=True)
class JobDone:
    """`kept` is what the scheduler's keeper saved (the store's image records)."""

    job: Job
    node_id: str
    images: tuple[ImageRef, ...]
    kept: tuple[object, ...] = ()


@dataclass(frozen=True)
class JobRetrying:
    job: Job
    node_id: str
    reason: str


@dataclass(frozen=True)
class JobFailed:
    job: Job
    reason: str


@dataclass(frozen=True)
class JobCancelled:
    job: Job


@dataclass(frozen=True)
class NodeStateChanged:
    node_id: str
    state: Literal["up", "degraded", "down"]
    reason: str = ""


JobEvent = (
    JobQueued
    | JobAssigned
    | JobStarted
    | JobProgress
    | JobPreview
    | JobDone
    | JobRetrying
    | JobFailed
    | JobCancelled
    | NodeStateChanged
)
