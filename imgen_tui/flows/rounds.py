"""The loop every flow shares: a round of cells, judged, locked and made again.

Every flow is a sequence of rounds: the jobs of one step, whose images the
operator looks at and judges. Flows differ only in what a round is made of
(its `Recipe`: a workflow, a count, settings) and in what the next round is;
a cell's life (queued → running → done), verdicts, seed locks, "again",
more-like-this, nudging its denoise and upscaling are the same everywhere, so
they live here once. Plain Python: the screens and the tests drive it alike.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import Field

from imgen_tui.graphs.templates import WorkflowLibrary, WorkflowTemplate
from imgen_tui.scheduler.events import (
    JobAssigned,
    JobCancelled,
    JobDone,
    JobFailed,
    JobProgress,
    JobRetrying,
    JobStarted,
)
from imgen_tui.scheduler.jobs import JobSpec, Priority
from imgen_tui.scheduler.variations import MAX_SEED
from imgen_tui.store.records import ImageRecord, Verdict
from imgen_tui.yamlfile import ConfigError, StrictModel

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


class MoreLikeThisConfig(StrictModel):
    """`m`: img2img on the same seed at a low denoise, per family; `+`/`-` nudge it."""

    sd15: str = "sd15_img2img"
    sdxl: str = "sdxl_img2img"
    flux: str = "flux_img2img"
    denoise: float = Field(default=0.35, gt=0, lt=1)
    nudge: float = Field(default=0.05, gt=0, lt=1)


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

    @property
    def progress(self) -> float:
        return self.step / self.total if self.total else 0.0

    @property
    def unfinished(self) -> bool:
        return self.state in ("queued", "running")


def apply_event(cell: Cell, event: object) -> None:
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


class RoundMaker:
    """Turns rounds into job specs: the one place a cell's graph is rendered.

    `config_name` is the settings file errors should name (a workflow the
    library lacks is that file's mistake, reported when the flow is built).
    """

    def __init__(
        self,
        library: WorkflowLibrary,
        models: Mapping[str, str],
        *,
        config_name: str,
        more_like_this: MoreLikeThisConfig | None = None,
        upscale_workflow: str = "upscale_esrgan",
        rng: random.Random | None = None,
    ) -> None:
        self.library = library
        self.models = dict(models)
        self.config_name = config_name
        self.more_config = more_like_this or MoreLikeThisConfig()
        self.upscale_workflow = upscale_workflow
        self.rng = rng or random.Random()

    def template(self, name: str) -> WorkflowTemplate:
        try:
            return self.library[name]
        except KeyError as error:
            raise ConfigError(f"{self.config_name}: {error.args[0]}") from None

    def family(self, stage_round: Round) -> str:
        return self.template(stage_round.recipe.workflow).family

    def default_negative(self, recipe: Recipe) -> str:
        return str(self.template(recipe.workflow).defaults.get("negative", ""))

    def seeds(self, count: int) -> list[int]:
        return [self.rng.randint(0, MAX_SEED) for _ in range(max(0, count))]

    def fill(
        self,
        stage_round: Round,
        sources: list[ImageRecord | None],
        seeds: list[int],
        *,
        locked: bool = False,
    ) -> list[JobSpec]:
        """One new cell per (source, seed), appended to the round; their jobs."""
        template = self.template(stage_round.recipe.workflow)
        if not stage_round.sources:
            stage_round.sources = list(sources)
        specs = []
        for source, seed in zip(sources, seeds, strict=True):
            cell = Cell(job_id="", seed=seed, source=source, locked=locked)
            specs.append(self.spec(stage_round, template, stage_round.recipe.params, cell))
            stage_round.cells.append(cell)
        return specs

    def seeds_for(self, stage_round: Round, sources: list[ImageRecord | None]) -> list[int]:
        """New seeds, or, for a graph with no seed (an upscale), the seed of each source."""
        if "seed" in self.template(stage_round.recipe.workflow).placeholders:
            return self.seeds(len(sources))
        return [
            source.seed if source is not None and source.seed is not None else 0
            for source in sources
        ]

    def first(self, stage_round: Round, seeds: list[int] | None = None) -> list[JobSpec]:
        """A fresh round's jobs: `seeds` first (locked ones carried over), the rest new."""
        count = stage_round.recipe.count
        sources = stage_round.sources or [None] * count
        chosen = list(seeds or [])[:count]
        rest = sources[len(chosen) :]
        specs = self.fill(stage_round, sources[: len(chosen)], chosen, locked=bool(chosen))
        return specs + self.fill(stage_round, rest, self.seeds_for(stage_round, rest))

    def again(
        self, history: RoundHistory, *, prompt: str | None = None, negative: str | None = None
    ) -> list[JobSpec]:
        """The round on screen once more, as a new round; the one it replaces is kept.

        Nothing the operator chose is dropped: with the same prompt, picked and
        locked cells are kept as they are (a locked seed would make the very
        same picture) and only the rest is made again. With a new `prompt`,
        each locked seed is used again, still locked, so the picture keeps its
        composition; picks made under the old prompt stay in the replaced
        round (`history.undo_again` brings it back).
        """
        current = history.current
        if current is None:
            raise ValueError("there is no round to make again yet")
        sources = current.sources or [None] * current.recipe.count
        new_prompt = current.prompt if prompt is None else prompt.strip()
        fresh = Round(
            current.recipe,
            new_prompt,
            current.negative if negative is None else negative.strip(),
            sources=list(sources),
            meta=dict(current.meta),
            made_from=current.made_from,
            replaces=current,
        )
        history.replace_current(fresh)
        if new_prompt != current.prompt:
            locked = [cell for cell in current.cells if cell.locked][: len(sources)]
            specs = self.fill(
                fresh,
                [cell.source for cell in locked],
                [cell.seed for cell in locked],
                locked=True,
            )
            rest = sources[len(locked) :]
            return specs + self.fill(fresh, rest, self.seeds_for(fresh, rest))
        kept = [
            dataclasses.replace(cell)
            for cell in current.cells
            if cell.image is not None and (cell.locked or cell.verdict == "picked")
        ]
        fresh.cells.extend(kept)
        rest = sources[min(len(kept), len(sources)) :]
        return self.fill(fresh, rest, self.seeds_for(fresh, rest))

    def more_like_this(self, stage_round: Round, cell: Cell, denoise: float) -> JobSpec:
        """img2img on the same seed at low denoise: a close variation of one image."""
        if cell.image is None:
            raise ValueError("that image is not finished yet")
        template = self.template(stage_round.recipe.workflow)
        if template.task == "upscale":
            raise ValueError(
                f"{stage_round.recipe.label} is an upscale, so there is nothing to vary: "
                "b goes back to the stage it came from, where m works"
            )
        family = template.family
        workflow = getattr(self.more_config, family, None)
        if not isinstance(workflow, str):
            raise ValueError(
                f"{self.config_name} names no more-like-this workflow for {family} images: "
                f"add '{family}: <an img2img workflow>' under more_like_this"
            )
        params = {**stage_round.recipe.params, "denoise": round(denoise, 2)}
        new = Cell(job_id="", seed=cell.seed, source=cell.image)
        spec = self.spec(stage_round, self.template(workflow), params, new)
        stage_round.cells.append(new)
        return spec

    def is_upscaled(self, stage_round: Round, cell: Cell) -> bool:
        """Made by an upscale (an upscale round, or `U`): not something to upscale again."""
        return self.template(stage_round.recipe.workflow).task == "upscale" or cell.upscaled

    def upscale(self, stage_round: Round, cell: Cell) -> JobSpec:
        if cell.image is None:
            raise ValueError("that image is not finished yet")
        if self.is_upscaled(stage_round, cell):
            raise ValueError(
                f"that image is already upscaled ({cell.image.width} px); upscaling it again "
                f"would make {cell.image.width * 4} px: U works on the images before the final"
            )
        new = Cell(job_id="", seed=cell.seed, source=cell.image, upscaled=True)
        spec = self.spec(stage_round, self.template(self.upscale_workflow), {}, new)
        stage_round.cells.append(new)
        return dataclasses.replace(spec, min_tier="premium")

    def spec(
        self,
        stage_round: Round,
        template: WorkflowTemplate,
        params: Mapping[str, Any],
        cell: Cell,
    ) -> JobSpec:
        values = {**params, "seed": cell.seed}
        if "prompt" in template.placeholders:
            values["prompt"] = stage_round.prompt
        if "negative" in template.placeholders:
            values["negative"] = stage_round.negative
        if "image" in template.placeholders:
            values["image"] = SOURCE_PLACEHOLDER
        graph = template.render(values, self.models)
        spec = JobSpec.from_graph(
            graph,
            template.family,
            needs=frozenset(template.requires),
            min_tier=stage_round.recipe.min_tier,
            priority=Priority.INTERACTIVE,
            round_id=stage_round.round_id,
            parent_image_id=cell.source.id if cell.source else None,
            source_image=str(cell.source.path) if cell.source else None,
        )
        cell.job_id = spec.job_id
        return spec
