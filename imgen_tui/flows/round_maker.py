"""Rounds into job specs: the one place a cell's graph is rendered, for every flow.

A round's recipe names a workflow, a count and settings; the maker turns it
into jobs, and makes a round again (keeping picks and locks), a variation of
one image (more like this) or an upscale. Which workflows those use is the
flow's config (`more_like_this:`, `upscale_workflow:`), so errors name it.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from imgen_tui.flows.rounds import SOURCE_PLACEHOLDER, Cell, Recipe, Round, RoundHistory
from imgen_tui.flows.stacks import Stack, fitting, with_stack
from imgen_tui.graphs.reference_pin import PinnedReference
from imgen_tui.graphs.references import with_pinned_references
from imgen_tui.graphs.templates import WorkflowLibrary, WorkflowTemplate
from imgen_tui.scheduler.jobs import JobSpec, Priority
from imgen_tui.scheduler.variations import MAX_SEED
from imgen_tui.store.records import ImageRecord
from imgen_tui.yamlfile import ConfigError, StrictModel


class MoreLikeThisConfig(StrictModel):
    """`m`: img2img on the same seed at a low denoise, per family; `+`/`-` nudge it."""

    sd15: str = "sd15_img2img"
    sdxl: str = "sdxl_img2img"
    flux: str = "flux_img2img"
    denoise: float = Field(default=0.35, gt=0, lt=1)
    nudge: float = Field(default=0.05, gt=0, lt=1)


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
        #: the session's pinned references (intent document): every new job is made with them
        self.references: list[PinnedReference] = []
        #: a LoRA stack carried in from a pick: every new job whose graph samples is made with
        #: the LoRAs of it that fit the graph's family (an SD1.5 LoRA never in an SDXL graph)
        self.stack: Stack = ()

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
        same picture) and only the rest is made again. With a new `prompt`
        (or negative), each locked seed is used again, still locked, so the picture keeps its
        composition; picks made under the old prompt stay in the replaced
        round (`history.undo_again` brings it back).
        """
        current = history.current
        if current is None:
            raise ValueError("there is no round to make again yet")
        sources = current.sources or [None] * current.recipe.count
        new_prompt = current.prompt if prompt is None else prompt.strip()
        new_negative = current.negative if negative is None else negative.strip()
        fresh = Round(
            current.recipe,
            new_prompt,
            new_negative,
            sources=list(sources),
            meta=dict(current.meta),
            made_from=current.made_from,
            replaces=current,
        )
        history.replace_current(fresh)
        if (new_prompt, new_negative) != (current.prompt, current.negative):
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
        graph, images, needs = with_pinned_references(graph, template, self.references)
        spec = JobSpec.from_graph(
            graph,
            template.family,
            needs=frozenset(template.requires) | needs,
            reference_images=images,
            min_tier=stage_round.recipe.min_tier,
            priority=Priority.INTERACTIVE,
            round_id=stage_round.round_id,
            parent_image_id=cell.source.id if cell.source else None,
            source_image=str(cell.source.path) if cell.source else None,
        )
        if self.stack and template.task != "upscale":
            spec = with_stack(spec, fitting(self.stack, template.family))
        cell.job_id = spec.job_id
        return spec
