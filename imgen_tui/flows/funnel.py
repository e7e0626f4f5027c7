"""The draft funnel (seed 000's Draft Grid) as a plain state machine.

Drafts 20 → Refined 8 → Polished 3 → Final 1. Each stage after the first
carries the picks in by img2img, so the composition the operator chose
survives the change of model (the same seed on another model would not).
The funnel only decides *what* to make; the screen submits the jobs and feeds
the results back with `job_changed`/`job_done`.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from imgen_tui.config import Tier
from imgen_tui.flows.rounds import CellState
from imgen_tui.graphs.templates import WorkflowLibrary, WorkflowTemplate
from imgen_tui.locations import bundled_dir, user_config_dir
from imgen_tui.scheduler.jobs import JobSpec, Priority
from imgen_tui.scheduler.variations import MAX_SEED
from imgen_tui.store.records import ImageRecord, Verdict
from imgen_tui.yamlfile import ConfigError, StrictModel, load_yaml_model

SOURCE_PLACEHOLDER = "source.png"  # replaced by the uploaded name on whichever node runs it


class StageConfig(StrictModel):
    name: str
    label: str
    count: int
    workflow: str
    min_tier: Tier = "draft"
    params: dict[str, Any] = Field(default_factory=dict)


class MoreLikeThisConfig(StrictModel):
    sd15: str = "sd15_img2img"
    sdxl: str = "sdxl_img2img"
    denoise: float = 0.35
    nudge: float = 0.05


class FunnelConfig(StrictModel):
    stages: list[StageConfig]
    more_like_this: MoreLikeThisConfig = MoreLikeThisConfig()
    upscale_workflow: str = "upscale_esrgan"


def load_funnel_config(path: Path | None = None) -> FunnelConfig:
    """The user's funnel.yaml if there is one, else the shipped one."""
    candidates = [path] if path else [user_config_dir() / "funnel.yaml"]
    candidates.append(bundled_dir("config") / "funnel.yaml")
    chosen = next(p for p in candidates if p is not None and p.is_file())
    document = load_yaml_model(
        chosen.read_text(encoding="utf-8"), chosen, FunnelConfig, what="a 'stages:' list"
    )
    return document.value


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

    @property
    def progress(self) -> float:
        return self.step / self.total if self.total else 0.0


@dataclass(eq=False)
class StageRound:
    """One round of one stage. Making a stage again makes a new round; the old one is kept."""

    stage: StageConfig
    prompt: str
    negative: str
    cells: list[Cell] = field(default_factory=list)
    round_id: str | None = None
    sources: list[ImageRecord | None] = field(default_factory=list)  # one per standard slot
    made_from: tuple[str, ...] = ()  # the picks (image ids) of the round before it
    replaces: StageRound | None = field(default=None, repr=False)  # the round `g`/`r` superseded

    @property
    def picks(self) -> list[ImageRecord]:
        return [c.image for c in self.cells if c.verdict == "picked" and c.image is not None]

    @property
    def pick_ids(self) -> tuple[str, ...]:
        return tuple(image.id for image in self.picks)


class Funnel:
    def __init__(
        self,
        config: FunnelConfig,
        library: WorkflowLibrary,
        models: Mapping[str, str],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.library = library
        self.models = dict(models)
        self.rng = rng or random.Random()
        self.rounds: list[StageRound] = []  # the path: one per stage reached; going back keeps them
        self.history: list[StageRound] = []  # every round ever made, superseded ones too
        self.position = 0
        for stage in config.stages:
            self._template(stage.workflow)  # a bad workflow name shows up now, not mid-funnel

    # -- where we are ----------------------------------------------------------------------------

    @property
    def stage(self) -> StageConfig:
        return self.config.stages[self.position]

    @property
    def current(self) -> StageRound | None:
        return self.rounds[self.position] if self.position < len(self.rounds) else None

    @property
    def can_advance(self) -> bool:
        current = self.current
        return current is not None and not self.at_last_stage and bool(current.picks)

    @property
    def at_last_stage(self) -> bool:
        return self.position + 1 >= len(self.config.stages)

    def is_final(self, stage_round: StageRound) -> bool:
        """A round of the last stage: what the funnel exists to make."""
        return stage_round.stage is self.config.stages[-1]

    def next_is_made(self) -> bool:
        """The next stage was already made from exactly these picks and this prompt.

        Going forward to it then shows what was made instead of making it again.
        """
        current = self.current
        if current is None or self.position + 1 >= len(self.rounds):
            return False
        following = self.rounds[self.position + 1]
        return (
            following.made_from == current.pick_ids
            and following.prompt == current.prompt
            and following.negative == current.negative
        )

    def breadcrumb(self) -> list[tuple[str, int, bool]]:
        """(label, count, is current) per stage: `Drafts 20 → Refined 8 → …`."""
        return [
            (stage.label, stage.count, index == self.position)
            for index, stage in enumerate(self.config.stages)
        ]

    def cell_for(self, job_id: str) -> Cell | None:
        for stage_round in self.rounds:
            for cell in stage_round.cells:
                if cell.job_id == job_id:
                    return cell
        return None

    # -- making jobs -----------------------------------------------------------------------------

    def start(self, prompt: str, negative: str | None = None) -> list[JobSpec]:
        """A fresh funnel from a prompt: the first stage's jobs."""
        stage = self.config.stages[0]
        negative = negative if negative is not None else self._default_negative(stage)
        self.rounds = [StageRound(stage, prompt.strip(), negative)]
        self.history = list(self.rounds)
        self.position = 0
        return self._fill(self.rounds[0], [None] * stage.count, self._seeds(stage.count))

    def again(self, *, prompt_changed: bool = False) -> list[JobSpec]:
        """The current stage once more, as a new round; the one it replaces is kept.

        Nothing the operator chose is dropped: with the same prompt, picked and
        locked cells are kept as they are (a locked seed would make the very
        same picture) and only the rest is made again. After the prompt
        changed, each locked seed is used again, still locked, so the picture
        keeps its composition; picks made under the old prompt stay in the
        replaced round (`undo_again` brings it back).
        """
        current = self._require_current()
        sources = current.sources or [None] * current.stage.count
        fresh = StageRound(
            current.stage,
            current.prompt,
            current.negative,
            sources=list(sources),
            made_from=current.made_from,
            replaces=current,
        )
        self._replace_current(fresh)
        if prompt_changed:
            locked = [cell for cell in current.cells if cell.locked][: len(sources)]
            specs = self._fill(
                fresh,
                [cell.source for cell in locked],
                [cell.seed for cell in locked],
                locked=True,
            )
            rest = sources[len(locked) :]
            return specs + self._fill(fresh, rest, self._seeds_for(fresh, rest))
        kept = [
            dataclasses.replace(cell)
            for cell in current.cells
            if cell.image is not None and (cell.locked or cell.verdict == "picked")
        ]
        fresh.cells.extend(kept)
        rest = sources[min(len(kept), len(sources)) :]
        return self._fill(fresh, rest, self._seeds_for(fresh, rest))

    def undo_again(self) -> StageRound | None:
        """Back to the round that `again` (or a refined prompt) replaced; None if there is none."""
        current = self._require_current()
        previous = current.replaces
        if previous is None:
            return None
        self.rounds[self.position] = previous
        return current

    def advance(self) -> list[JobSpec]:
        """The next stage from the picks: slots spread over them, each with its own seed.

        When the next stage was already made from the same picks and prompt,
        this only moves there (no jobs): what was made is shown, not made again.
        """
        current = self._require_current()
        picks = current.picks
        if not picks:
            raise ValueError("pick at least one image (space or p) before advancing")
        if self.at_last_stage:
            raise ValueError("this is the last stage")
        if self.next_is_made():
            self.position += 1
            return []
        stage = self.config.stages[self.position + 1]
        self.rounds = self.rounds[: self.position + 1]
        following = StageRound(stage, current.prompt, current.negative, made_from=current.pick_ids)
        self.rounds.append(following)
        self.history.append(following)
        self.position += 1
        sources: list[ImageRecord | None] = [picks[i % len(picks)] for i in range(stage.count)]
        sources.sort(key=lambda image: picks.index(image) if image else 0)
        following.sources = list(sources)
        return self._fill(following, sources, self._seeds_for(following, sources))

    def back(self) -> bool:
        if self.position == 0:
            return False
        self.position -= 1
        return True

    def more_like_this(self, cell: Cell, denoise: float) -> JobSpec:
        """img2img on the same seed at low denoise: a close variation of one image."""
        current = self._require_current()
        if cell.image is None:
            raise ValueError("that image is not finished yet")
        template = self._template(current.stage.workflow)
        if template.task == "upscale":
            raise ValueError(
                f"{current.stage.label} is an upscale, so there is nothing to vary: "
                "b goes back to the stage it came from, where m works"
            )
        family = template.family
        workflow = getattr(self.config.more_like_this, family, None)
        if not isinstance(workflow, str):
            raise ValueError(
                f"funnel.yaml names no more-like-this workflow for {family} images: "
                f"add '{family}: <an img2img workflow>' under more_like_this"
            )
        params = {**current.stage.params, "denoise": round(denoise, 2)}
        new = Cell(job_id="", seed=cell.seed, source=cell.image)
        spec = self._spec(current, self._template(workflow), params, new)
        current.cells.append(new)
        return spec

    def upscale(self, cell: Cell) -> JobSpec:
        current = self._require_current()
        if cell.image is None:
            raise ValueError("that image is not finished yet")
        if self.is_upscaled(cell):
            raise ValueError(
                f"that image is already upscaled ({cell.image.width} px); upscaling it again "
                f"would make {cell.image.width * 4} px: U works on the images before the final"
            )
        new = Cell(job_id="", seed=cell.seed, source=cell.image, upscaled=True)
        spec = self._spec(current, self._template(self.config.upscale_workflow), {}, new)
        current.cells.append(new)
        return dataclasses.replace(spec, min_tier="premium")

    def mark_for_compare(self, cell: Cell) -> None:
        """Mark A, then B; a third mark moves B to A; marking a marked cell unmarks it."""
        current = self._require_current()
        if cell.compare is not None:
            cell.compare = None
            for other in current.cells:
                if other.compare == "B":
                    other.compare = "A"
            return
        marked = {c.compare: c for c in current.cells if c.compare is not None}
        if "A" in marked and "B" in marked:
            marked["A"].compare = None
            marked["B"].compare = "A"
            cell.compare = "B"
        elif "A" in marked:
            cell.compare = "B"
        else:
            cell.compare = "A"

    def compare_pair(self) -> tuple[ImageRecord, ImageRecord] | None:
        """The cells marked A and B, or else the first two picks; None if there are not two."""
        current = self._require_current()
        marked = {c.compare: c.image for c in current.cells if c.compare and c.image is not None}
        if "A" in marked and "B" in marked:
            a, b = marked["A"], marked["B"]
            assert a is not None and b is not None
            return a, b
        picks = current.picks
        return (picks[0], picks[1]) if len(picks) >= 2 else None

    def is_upscaled(self, cell: Cell) -> bool:
        """Made by an upscale (the final, or `U`): not something to upscale again."""
        current = self._require_current()
        if self._template(current.stage.workflow).task == "upscale":
            return True
        return cell.upscaled

    def rewrite_prompt(self, prompt: str, negative: str | None = None) -> None:
        current = self._require_current()
        current.prompt = prompt.strip()
        if negative is not None:
            current.negative = negative.strip()

    def current_family(self) -> str:
        """The model family of the current stage (the refine pipeline writes for it)."""
        return self._template(self._require_current().stage.workflow).family

    # -- results ---------------------------------------------------------------------------------

    def unfinished_jobs(self, stage_round: StageRound | None = None) -> list[str]:
        rounds: Iterable[StageRound] = [stage_round] if stage_round else self.rounds
        return [
            cell.job_id for r in rounds for cell in r.cells if cell.state in ("queued", "running")
        ]

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
                if cell.state in ("queued", "running"):
                    state, reason = nodes.get(cell.node_id or "", ("", ""))
                    if cell.node_id and state == "down":
                        notice = f"{cell.node_id} down" + (f": {reason}" if reason else "")
                    elif not up:
                        notice = waiting
                if notice != cell.notice:
                    cell.notice, changed = notice, True
        return changed

    # -- plumbing --------------------------------------------------------------------------------

    def _replace_current(self, fresh: StageRound) -> None:
        self.rounds[self.position] = fresh
        self.history.append(fresh)

    def _require_current(self) -> StageRound:
        if self.current is None:
            raise ValueError("type a prompt and press enter to start the funnel")
        return self.current

    def _fill(
        self,
        stage_round: StageRound,
        sources: list[ImageRecord | None],
        seeds: list[int],
        *,
        locked: bool = False,
    ) -> list[JobSpec]:
        template = self._template(stage_round.stage.workflow)
        if not stage_round.sources:
            stage_round.sources = list(sources)
        specs = []
        for source, seed in zip(sources, seeds, strict=True):
            cell = Cell(job_id="", seed=seed, source=source, locked=locked)
            specs.append(self._spec(stage_round, template, stage_round.stage.params, cell))
            stage_round.cells.append(cell)
        return specs

    def _spec(
        self,
        stage_round: StageRound,
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
            min_tier=stage_round.stage.min_tier,
            priority=Priority.INTERACTIVE,
            round_id=stage_round.round_id,
            parent_image_id=cell.source.id if cell.source else None,
            source_image=str(cell.source.path) if cell.source else None,
        )
        cell.job_id = spec.job_id
        return spec

    def _template(self, name: str) -> WorkflowTemplate:
        try:
            return self.library[name]
        except KeyError as error:
            raise ConfigError(f"funnel.yaml: {error.args[0]}") from None

    def _default_negative(self, stage: StageConfig) -> str:
        return str(self._template(stage.workflow).defaults.get("negative", ""))

    def _seeds(self, count: int) -> list[int]:
        return [self.rng.randint(0, MAX_SEED) for _ in range(count)]

    def _seeds_for(self, stage_round: StageRound, sources: list[ImageRecord | None]) -> list[int]:
        """New seeds, or, for a graph with no seed (an upscale), the seed of each source."""
        if "seed" in self._template(stage_round.stage.workflow).placeholders:
            return self._seeds(len(sources))
        return [
            source.seed if source is not None and source.seed is not None else 0
            for source in sources
        ]
