"""The draft funnel (seed 000's Draft Grid) as a plain state machine over the shared rounds.

Drafts 20 → Refined 8 → Polished 3 → Final 1. Each stage after the first
carries the picks in by img2img, so the composition the operator chose
survives the change of model (the same seed on another model would not).
What is the funnel's own is only the stages: which one is next, what going
forward makes from the picks, which round is the final. A round's cells,
"again", more-like-this and upscaling are `flows.rounds` and
`flows.round_maker`, the same for every flow.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from imgen_tui.config import Tier
from imgen_tui.flows.round_maker import MoreLikeThisConfig, RoundMaker
from imgen_tui.flows.round_store import rounds_state
from imgen_tui.flows.rounds import Cell, Recipe, Round, RoundHistory
from imgen_tui.flows.stacks import stack_from_json, stack_to_json
from imgen_tui.graphs.templates import WorkflowLibrary
from imgen_tui.locations import bundled_dir, user_config_dir
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.store.records import ImageRecord, RoundInfo
from imgen_tui.yamlfile import StrictModel, load_yaml_model

FLOW = "funnel"  # the session kind in the store
CONFIG_NAME = "funnel.yaml"


class StageConfig(StrictModel):
    """One stage: a round recipe read from funnel.yaml."""

    name: str
    label: str
    count: int
    workflow: str
    min_tier: Tier = "draft"
    params: dict[str, Any] = Field(default_factory=dict)


class FunnelConfig(StrictModel):
    stages: list[StageConfig]
    more_like_this: MoreLikeThisConfig = MoreLikeThisConfig()
    upscale_workflow: str = "upscale_esrgan"


def load_funnel_config(path: Path | None = None) -> FunnelConfig:
    """The user's funnel.yaml if there is one, else the shipped one."""
    candidates = [path] if path else [user_config_dir() / CONFIG_NAME]
    candidates.append(bundled_dir("config") / CONFIG_NAME)
    chosen = next(p for p in candidates if p is not None and p.is_file())
    document = load_yaml_model(
        chosen.read_text(encoding="utf-8"), chosen, FunnelConfig, what="a 'stages:' list"
    )
    return document.value


class Funnel:
    """The stages over a `RoundHistory`: one round per stage reached on the path."""

    def __init__(
        self,
        config: FunnelConfig,
        library: WorkflowLibrary,
        models: Mapping[str, str],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.maker = RoundMaker(
            library,
            models,
            config_name=CONFIG_NAME,
            more_like_this=config.more_like_this,
            upscale_workflow=config.upscale_workflow,
            rng=rng,
        )
        self.history = RoundHistory()
        for stage in config.stages:
            self.maker.template(stage.workflow)  # a bad workflow name shows up now, not mid-funnel

    # -- where we are ----------------------------------------------------------------------------

    @property
    def position(self) -> int:
        return self.history.position

    @property
    def rounds(self) -> list[Round]:
        """The path: one round per stage reached; going back keeps them."""
        return self.history.rounds

    @property
    def stage(self) -> StageConfig:
        return self.config.stages[self.position]

    @property
    def current(self) -> Round | None:
        return self.history.current

    @property
    def can_advance(self) -> bool:
        current = self.current
        return current is not None and not self.at_last_stage and bool(current.picks)

    @property
    def at_last_stage(self) -> bool:
        return self.position + 1 >= len(self.config.stages)

    def is_final(self, stage_round: Round) -> bool:
        """A round of the last stage: what the funnel exists to make."""
        return stage_round.recipe.name == self.config.stages[-1].name

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

    def recipe_for(self, info: RoundInfo) -> Recipe | None:
        """A saved round's stage (None: a stage since removed from funnel.yaml)."""
        return next((s for s in self.config.stages if s.name == info.stage), None)

    def sampling_stages(self) -> list[tuple[str, str]]:
        """(label, family) of every stage that samples: what a carried LoRA can go into."""
        return [
            (stage.label, template.family)
            for stage in self.config.stages
            if (template := self.maker.template(stage.workflow)).task != "upscale"
        ]

    def state(self) -> dict[str, Any]:
        """The rounds and the carried LoRA stack: what reopening the funnel needs."""
        return {**rounds_state(self.history), "loras": stack_to_json(self.maker.stack)}

    def restore(self, state: dict[str, Any]) -> None:
        """The session's saved stack (its rounds are already back)."""
        self.maker.stack = stack_from_json(state.get("loras"))

    # -- making jobs -----------------------------------------------------------------------------

    def start(self, prompt: str, negative: str | None = None) -> list[JobSpec]:
        """A fresh funnel from a prompt: the first stage's jobs."""
        stage = self.config.stages[0]
        negative = negative if negative is not None else self.maker.default_negative(stage)
        self.history = RoundHistory()
        self.history.push(Round(stage, prompt.strip(), negative))
        return self.maker.first(self._require_current())

    def again(self, *, prompt: str | None = None, negative: str | None = None) -> list[JobSpec]:
        """The current stage once more (see `RoundMaker.again`); `undo_again` goes back."""
        self._require_current()
        return self.maker.again(self.history, prompt=prompt, negative=negative)

    def undo_again(self) -> Round | None:
        self._require_current()
        return self.history.undo_again()

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
            self.history.position += 1
            return []
        stage = self.config.stages[self.position + 1]
        sources: list[ImageRecord | None] = [picks[i % len(picks)] for i in range(stage.count)]
        sources.sort(key=lambda image: picks.index(image) if image else 0)
        following = Round(
            stage,
            current.prompt,
            current.negative,
            sources=list(sources),
            made_from=current.pick_ids,
        )
        self.history.push(following, after_current=True)
        return self.maker.first(following)

    def back(self) -> bool:
        if self.position == 0:
            return False
        self.history.position -= 1
        return True

    def more_like_this(self, cell: Cell, denoise: float) -> JobSpec:
        return self.maker.more_like_this(self._require_current(), cell, denoise)

    def upscale(self, cell: Cell) -> JobSpec:
        return self.maker.upscale(self._require_current(), cell)

    def is_upscaled(self, cell: Cell) -> bool:
        """Made by an upscale (the final, or `U`): not something to upscale again."""
        return self.maker.is_upscaled(self._require_current(), cell)

    def current_family(self) -> str:
        """The model family of the current stage (the refine pipeline writes for it)."""
        return self.maker.family(self._require_current())

    def _require_current(self) -> Round:
        if self.current is None:
            raise ValueError("type a prompt and press enter to start the funnel")
        return self.current
