"""What the store hands out: plain, immutable rows with their meaning spelt out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Verdict = Literal["none", "picked", "rejected"]
JobRowState = Literal["queued", "submitted", "running", "done", "failed", "cancelled"]
# Posted or about to be: what reopening a session re-attaches to or runs.
IN_PROGRESS_STATES: tuple[JobRowState, ...] = ("queued", "submitted", "running")
# Everything without its image yet: what `batch --resume` runs again.
UNFINISHED_STATES: tuple[JobRowState, ...] = (*IN_PROGRESS_STATES, "failed", "cancelled")


@dataclass(frozen=True)
class SessionInfo:
    id: str
    flow: str
    title: str
    created_at: float
    updated_at: float
    state: dict[str, Any]
    image_count: int = 0
    job_count: int = 0
    jobs_done: int = 0
    disk_bytes: int = 0

    @property
    def finished(self) -> bool:
        return self.job_count == self.jobs_done


@dataclass(frozen=True)
class SessionDetails:
    """What the sessions screen shows and searches beyond `SessionInfo`: one query for all."""

    picks: int = 0
    prompts: str = ""  # every round's prompt, one per line: what a search looks through
    picked_thumbs: tuple[Path, ...] = ()  # the first few picks' thumbnails


@dataclass(frozen=True)
class GalleryImage:
    """A picked or final image with where it came from: the gallery's one cell."""

    image: ImageRecord
    session_id: str
    flow: str
    prompt: str


@dataclass(frozen=True)
class ImageLabel:
    """What the vision model said an image shows."""

    caption: str
    tags: tuple[str, ...]
    nsfw: bool
    model: str = ""

    def text(self) -> str:
        """The label as one searchable line."""
        flag = " nsfw" if self.nsfw else ""
        return f"{self.caption} [{', '.join(self.tags)}]{flag}"


@dataclass(frozen=True)
class RoundInfo:
    id: str
    session_id: str
    position: int
    stage: str
    prompt: str
    negative: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class JobRow:
    """A job as last recorded: enough to run it again or re-attach to its prompt."""

    id: str
    round_id: str
    position: int
    spec_json: str = field(repr=False)
    state: JobRowState
    node_id: str | None
    prompt_id: str | None
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class ImageRecord:
    id: str
    job_id: str
    round_id: str
    output_index: int
    path: Path
    thumb_path: Path
    sidecar_path: Path
    width: int
    height: int
    bytes: int
    seed: int | None
    node_id: str
    seconds: float | None
    parent_id: str | None
    verdict: Verdict
    locks: tuple[str, ...]
    created_at: float


@dataclass(frozen=True)
class NewImage:
    """A finished output on its way into the store: the bytes exactly as the node sent them."""

    data: bytes = field(repr=False)
    seed: int | None
    node_id: str
    seconds: float | None
    parent_id: str | None
    sidecar: dict[str, Any] = field(default_factory=dict, repr=False)


def loads_object(text: str | None) -> dict[str, Any]:
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {}
