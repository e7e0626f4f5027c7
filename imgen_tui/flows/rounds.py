"""The loop every flow shares: a round of cells, judged, locked and made again.

Every flow is a sequence of rounds: the jobs of one step, whose images the
operator looks at and judges. Flows differ only in what a round is made of
(its `Recipe`: a workflow, a count, settings) and in what the next round is;
a cell's life (queued → running → done), verdicts, seed locks, "again",
more-like-this, nudging its denoise and upscaling are the same everywhere, so
they live here once. Plain Python: the screens and the tests drive it alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from imgen_tui.scheduler.events import (
    JobAssigned,
    JobCancelled,
    JobDone,
    JobFailed,
    JobProgress,
    JobRetrying,
    JobStarted,
)
from imgen_tui.store.records import ImageRecord, Verdict

CellState = Literal["queued", "running", "done", "failed", "cancelled"]
SOURCE_PLACEHOLDER = "source.png"  # replaced by the uploaded name on whichever node runs it
SEED_LOCK = "seed"  # what an image's `locks` column holds when its seed is locked


class Recipe(Protocol):
    """What a round is made of. The funnel's stages and the concept builder's settings fit it."""

    @property
    def name(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def workflow(self) -> str: ...
    @property
    def min_tier(self) -> str: ...
    @property
    def params(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class RoundRecipe:
    """A recipe built in code (the concept builder's), rather than read from a stage list."""

    name: str
    label: str
    count: int
    workflow: str
    min_tier: str = "draft"
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Cell:
    """One slot of the grid: a job on its way to an image, then the image."""

    job_id: str
    seed: int
    source: ImageRecord | None = None
    state: CellState = "queued"
    node_id: str | None = None
    step: int = 0
    total: int = 0
    eta: float | None = None
    image: ImageRecord | None = None
    verdict: Verdict = "none"
    locked: bool = False
    error: str | None = None
    notice: str | None = None  # why it is not moving: its node is down, no node is up
    upscaled: bool = False  # made by `U`
    compare: str | None = None  # "A" or "B": marked to be compared
    label: str = ""  # what a flow says the cell is ("baseline", "A+B"): shown in its caption

    @property
    def progress(self) -> float:
        return self.step / self.total if self.total else 0.0

    @property
    def unfinished(self) -> bool:
        return self.state in ("queued", "running")


class LiveCell(Protocol):
    """What a scheduler event changes on a cell, in any flow's model."""

    state: CellState
    node_id: str | None
    step: int
    total: int
    eta: float | None
    image: ImageRecord | None
    error: str | None


def apply_event(cell: LiveCell, event: object) -> None:
    """Bring a cell up to date with one scheduler event (previews only repaint: no state)."""
    if isinstance(event, JobAssigned):
        cell.node_id = event.node_id
    elif isinstance(event, JobStarted):
        cell.state, cell.node_id = "running", event.node_id
    elif isinstance(event, JobProgress):
        cell.state, cell.step, cell.total, cell.eta = (
            "running",
            event.step,
            event.total,
            event.eta_seconds,
        )
    elif isinstance(event, JobRetrying):
        cell.state, cell.node_id, cell.step = "queued", None, 0
    elif isinstance(event, JobDone):
        cell.state = "done"
        kept = [record for record in event.kept if isinstance(record, ImageRecord)]
        cell.image = kept[0] if kept else None
    elif isinstance(event, JobFailed):
        cell.state, cell.error = "failed", event.reason
    elif isinstance(event, JobCancelled):
        cell.state = "cancelled"


def judge(cell: Cell, verdict: Verdict) -> Verdict:
    """The same verdict twice clears it (space on a pick un-picks); returns the new one."""
    cell.verdict = "none" if verdict == cell.verdict and verdict != "none" else verdict
    return cell.verdict


def toggle_seed_lock(cell: Cell) -> tuple[str, ...]:
    """Lock or unlock the cell's seed; returns what the image's `locks` column should hold."""
    cell.locked = not cell.locked
    return (SEED_LOCK,) if cell.locked else ()


def mark_for_compare(cells: Iterable[Cell], cell: Cell) -> None:
    """Mark A, then B; a third mark moves B to A; marking a marked cell unmarks it."""
    cells = list(cells)
    if cell.compare is not None:
        cell.compare = None
        for other in cells:
            if other.compare == "B":
                other.compare = "A"
        return
    marked = {c.compare: c for c in cells if c.compare is not None}
    if "A" in marked and "B" in marked:
        marked["A"].compare = None
        marked["B"].compare = "A"
        cell.compare = "B"
    elif "A" in marked:
        cell.compare = "B"
    else:
        cell.compare = "A"


@dataclass(eq=False)
class Round:
    """One round. Making it again makes a new round that `replaces` it; the old one is kept."""

    recipe: Recipe
    prompt: str
    negative: str
    cells: list[Cell] = field(default_factory=list)
    round_id: str | None = None
    sources: list[ImageRecord | None] = field(default_factory=list)  # one per standard slot
    meta: dict[str, Any] = field(default_factory=dict)  # what the flow made it from
    made_from: tuple[str, ...] = ()  # the picks (image ids) of the round before it
    replaces: Round | None = field(default=None, repr=False)  # the round `g`/refine superseded

    @property
    def picks(self) -> list[ImageRecord]:
        return [c.image for c in self.cells if c.verdict == "picked" and c.image is not None]

    @property
    def pick_ids(self) -> tuple[str, ...]:
        return tuple(image.id for image in self.picks)

    @property
    def rejects(self) -> list[ImageRecord]:
        return [c.image for c in self.cells if c.verdict == "rejected" and c.image is not None]

    @property
    def done(self) -> int:
        return sum(cell.state == "done" for cell in self.cells)

    def cell_for(self, job_id: str) -> Cell | None:
        return next((cell for cell in self.cells if cell.job_id == job_id), None)

    def compare_pair(self) -> tuple[ImageRecord, ImageRecord] | None:
        """The cells marked A and B, or else the first two picks; None if there are not two."""
        marked = {c.compare: c.image for c in self.cells if c.compare and c.image is not None}
        a, b = marked.get("A"), marked.get("B")
        if a is not None and b is not None:
            return a, b
        picks = self.picks
        return (picks[0], picks[1]) if len(picks) >= 2 else None

    def unfinished_jobs(self) -> list[str]:
        return [cell.job_id for cell in self.cells if cell.unfinished]


class RoundHistory:
    """A flow's path of rounds, every round ever made, and which one the operator looks at.

    `rounds` is the path (one per step reached); `made` also keeps the rounds
    that "again" superseded, so their pictures and picks are never lost and
    events for their jobs still find their cells.
    """

    def __init__(self) -> None:
        self.rounds: list[Round] = []
        self.made: list[Round] = []
        self.position = 0

    @property
    def current(self) -> Round | None:
        return self.rounds[self.position] if self.position < len(self.rounds) else None

    def push(self, new: Round, *, after_current: bool = False) -> None:
        """Append a round and look at it; `after_current` first drops the path past this one."""
        if after_current and self.rounds:
            self.rounds = self.rounds[: self.position + 1]
        self.rounds.append(new)
        self.made.append(new)
        self.position = len(self.rounds) - 1

    def replace_current(self, fresh: Round) -> None:
        self.rounds[self.position] = fresh
        self.made.append(fresh)

    def undo_again(self) -> Round | None:
        """Back to the round "again" replaced; returns the undone round (None: nothing to undo)."""
        current = self.current
        if current is None or current.replaces is None:
            return None
        self.rounds[self.position] = current.replaces
        return current

    def go_to(self, index: int) -> Round:
        if not 0 <= index < len(self.rounds):
            raise ValueError(f"there is no round {index + 1}; there are {len(self.rounds)}")
        self.position = index
        return self.rounds[index]

    def cell_for(self, job_id: str) -> Cell | None:
        for each in self.made or self.rounds:
            cell = each.cell_for(job_id)
            if cell is not None:
                return cell
        return None

    def owner_of(self, cell: Cell) -> Round | None:
        return next((r for r in self.made or self.rounds if cell in r.cells), None)

    def apply(self, event: object) -> Cell | None:
        """The cell a scheduler event is about, updated; None if no round of ours has the job."""
        job = getattr(event, "job", None)
        cell = self.cell_for(job.job_id) if job is not None else None
        if cell is not None:
            apply_event(cell, event)
        return cell

    def unfinished_jobs(self, only: Round | None = None) -> list[str]:
        rounds: Iterable[Round] = [only] if only is not None else (self.made or self.rounds)
        return [job_id for each in rounds for job_id in each.unfinished_jobs()]

    def note_farm(self, nodes: Mapping[str, tuple[str, str]]) -> bool:
        """Say on each unfinished cell why it is not moving; True if any cell's note changed.

        `nodes` is node id → (state, reason). A cell on a node that is down
        says so; a waiting cell says so when no node is up at all (the
        scheduler keeps it until a node comes back or its time limit).
        """
        up = [node for node, (state, _) in nodes.items() if state != "down"]
        waiting = "no node is up: waiting for one"
        if nodes and not up:
            first, (_, why) = next(iter(nodes.items()))
            waiting = f"waiting: all {len(nodes)} nodes are down ({first}: {why})"
        changed = False
        for stage_round in self.rounds:
            for cell in stage_round.cells:
                notice = None
                if cell.unfinished:
                    state, reason = nodes.get(cell.node_id or "", ("", ""))
                    if cell.node_id and state == "down":
                        notice = f"{cell.node_id} down" + (f": {reason}" if reason else "")
                    elif not up:
                        notice = waiting
                if notice != cell.notice:
                    cell.notice, changed = notice, True
        return changed


@dataclass
class Denoise:
    """How far more-like-this may stray; `+`/`-` nudge it by `step`, kept inside (0, 1)."""

    value: float = 0.35
    step: float = 0.05

    def nudge(self, direction: int) -> float:
        self.value = round(min(0.95, max(0.05, self.value + direction * self.step)), 2)
        return self.value
