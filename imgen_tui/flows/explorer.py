"""The LoRA explorer (seed 000, flow 3) as a plain state machine.

What the farm has (the catalog) → a showcase: one LoRA swept over strengths
on fixed seeds, always beside the no-LoRA baseline on the same seeds → A/B:
two marked LoRAs (or one at two strengths) as A, B, A+B and neither, again
on the same seeds → pick, reject, refine (the stack and its trigger words
kept) as on every flow.

Every cell of a round carries a label and its LoRA stack in the round's
`meta` (by job id), so a reopened session, more-like-this and refine know
what each picture was made with. Jobs are ordered stack by stack, seeds
together, so LoRA-stack affinity can keep a stack on one GPU.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imgen_tui.flows.explorer_config import ExplorerConfig
from imgen_tui.flows.lora_catalog import LoraEntry, nodes_for_stack, short_name
from imgen_tui.flows.round_maker import RoundMaker
from imgen_tui.flows.round_store import rounds_state
from imgen_tui.flows.rounds import Cell, Recipe, Round, RoundHistory, RoundRecipe
from imgen_tui.flows.stacks import (
    Stack,
    StackLora,
    describe_stack,
    stack_from_json,
    stack_to_json,
    with_stack,
)
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.variations import MAX_SEED
from imgen_tui.store.records import RoundInfo

FLOW = "explorer"
SHOWCASE, AB, REFINE = "showcase", "ab", "refine"
STAGE_LABELS = {SHOWCASE: "Showcase", AB: "A/B", REFINE: "Refined"}
BASELINE = "baseline"
CELLS_KEY = "cells"  # round meta: job id -> {"label", "stack"}


class ExplorerError(ValueError):
    """Something the operator asked for that cannot be done, said in one sentence."""


@dataclass(frozen=True, slots=True)
class CellPlan:
    """What one cell of a round is: its caption, its stack, its seed."""

    label: str
    stack: Stack
    seed: int


class LoraExplorer:
    def __init__(
        self,
        config: ExplorerConfig,
        library: Any,
        models: Mapping[str, str],
        *,
        catalog: Sequence[LoraEntry] = (),
        rng: random.Random | None = None,
        config_name: str = "explorer.yaml",
    ) -> None:
        self.config = config
        self.maker = RoundMaker(
            library,
            models,
            config_name=config_name,
            more_like_this=config.more_like_this,
            upscale_workflow=config.upscale_workflow,
            rng=rng,
        )
        for workflow in config.workflows.values():
            self.maker.template(workflow)  # a bad workflow name shows up now, not mid-round
        self.models = dict(models)
        self.catalog: list[LoraEntry] = list(catalog)
        self.family = config.family
        self.prompt = config.prompt
        self.seeds = list(config.seeds)
        self.model_strength = config.strength.model
        self.clip_strength = config.strength.clip
        self.marks: list[StackLora] = []
        self.history = RoundHistory()
        self.notice: str | None = None  # what the last round could not run where

    # -- the controls -----------------------------------------------------------------------------

    @property
    def families(self) -> list[str]:
        return list(self.config.workflows)

    @property
    def checkpoint(self) -> str:
        return self.models.get(self.family, "?")

    @property
    def current(self) -> Round | None:
        return self.history.current

    def entry(self, name: str) -> LoraEntry:
        found = next((e for e in self.catalog if e.name == name), None)
        if found is None:
            known = ", ".join(e.name for e in self.catalog) or "none (is any node up?)"
            raise ExplorerError(f"no node has a LoRA named '{name}'; the farm has {known}")
        return found

    def cycle_family(self) -> str:
        families = self.families
        self.family = families[(families.index(self.family) + 1) % len(families)]
        return self.family

    def nudge(self, which: str, direction: int) -> float:
        """`[`/`]` the model strength, `{`/`}` the clip strength, by the config's step."""
        step = self.config.nudge * direction
        if which == "clip":
            self.clip_strength = round(max(-4.0, min(4.0, self.clip_strength + step)), 2)
            return self.clip_strength
        self.model_strength = round(max(-4.0, min(4.0, self.model_strength + step)), 2)
        return self.model_strength

    def roll_seeds(self) -> list[int]:
        self.seeds = [self.maker.rng.randint(0, MAX_SEED) for _ in self.seeds]
        return self.seeds

    def insert_trigger_words(self, name: str) -> list[str]:
        """The LoRA's trigger words not yet in the prompt, put at its start; returns them."""
        entry = self.entry(name)
        lowered = self.prompt.lower()
        new = [word for word in entry.trigger_words if word.lower() not in lowered]
        if not entry.trigger_words:
            raise ExplorerError(
                f"{short_name(name)} names no trigger words (its file has no training tags)"
            )
        if new:
            self.prompt = ", ".join([*new, self.prompt.strip()]).strip(", ")
        return new

    def mark(self, name: str) -> str:
        """`a`: mark the LoRA at the current strengths as A, then B; a third mark starts over.

        Marking the same LoRA at another strength makes an A/B of one LoRA at
        two strengths; the very same LoRA and strengths twice is refused.
        """
        self.entry(name)
        lora = StackLora(name, self.model_strength, self.clip_strength)
        if len(self.marks) >= 2:
            self.marks = []
        if lora in self.marks:
            raise ExplorerError(
                f"{lora.describe()} is already A: change its strength ([ ]) or mark another LoRA"
            )
        self.marks.append(lora)
        return "AB"[len(self.marks) - 1]

    # -- rounds -----------------------------------------------------------------------------------

    def showcase(self, name: str) -> list[JobSpec]:
        """The strength sweep of one LoRA on the fixed seeds, the no-LoRA baseline first."""
        self.entry(name)
        ratio = self.clip_strength / self.model_strength if self.model_strength else 1.0
        plans = [CellPlan(BASELINE, (), seed) for seed in self.seeds]
        for strength in self.config.sweep:
            lora = StackLora(name, strength, round(strength * ratio, 4))
            plans += [CellPlan(lora.describe(), (lora,), seed) for seed in self.seeds]
        meta = {"lora": name, "stack": stack_to_json(())}
        return self._start(SHOWCASE, plans, meta)

    def ab(self) -> list[JobSpec]:
        """A, B, A+B and neither on the same seeds (one LoRA at two strengths: no A+B)."""
        if len(self.marks) < 2:
            raise ExplorerError("mark two LoRAs first (a on each), or one LoRA at two strengths")
        a, b = self.marks
        rows: list[tuple[str, Stack]] = [(f"A {a.describe()}", (a,)), (f"B {b.describe()}", (b,))]
        if a.name != b.name:
            rows.append(("A+B", (a, b)))
        rows.append(("neither", ()))
        plans = [CellPlan(label, stack, seed) for label, stack in rows for seed in self.seeds]
        meta = {"marks": stack_to_json((a, b))}
        return self._start(AB, plans, meta)

    def refined(self, prompt: str, negative: str, stack: Stack) -> list[JobSpec]:
        """The next round after feedback: the stack and the baseline, on the same seeds."""
        self.prompt = prompt
        plans = [CellPlan(describe_stack(stack), stack, seed) for seed in self.seeds]
        if stack:
            plans += [CellPlan(BASELINE, (), seed) for seed in self.seeds]
        return self._start(REFINE, plans, {"stack": stack_to_json(stack)}, negative=negative)

    def again(self) -> list[JobSpec]:
        """The round on screen once more on new seeds (locked seeds kept): same plan.

        The replaced round is kept (`undo_again` brings it back with its picks).
        """
        current = self._require_current()
        locked = list(dict.fromkeys(c.seed for c in current.cells if c.locked))
        old_seeds = list(dict.fromkeys(self.plan_of(current, c).seed for c in current.cells))
        fresh = [self.maker.rng.randint(0, MAX_SEED) for _ in old_seeds]
        new_seeds = (locked + [s for s in fresh if s not in locked])[: len(old_seeds)]
        mapping = dict(zip(old_seeds, new_seeds, strict=True))
        plans = [
            dataclasses.replace(plan, seed=mapping.get(plan.seed, plan.seed))
            for plan in (self.plan_of(current, c) for c in current.cells if not c.upscaled)
        ]
        fresh_round = Round(
            current.recipe,
            current.prompt,
            current.negative,
            meta={k: v for k, v in current.meta.items() if k != CELLS_KEY},
            replaces=current,
        )
        self.history.replace_current(fresh_round)
        return self._fill(fresh_round, plans, locked=set(locked))

    def undo_again(self) -> Round | None:
        return self.history.undo_again()

    def more_like_this(self, cell: Cell, denoise: float) -> JobSpec:
        """img2img on the same seed with the same LoRA stack."""
        current = self._require_current()
        plan = self.plan_of(current, cell)
        spec = with_stack(self.maker.more_like_this(current, cell, denoise), plan.stack)
        self._label(current, current.cells[-1], f"{plan.label} · more", plan.stack, spec)
        return spec

    def upscale(self, cell: Cell) -> JobSpec:
        current = self._require_current()
        plan = self.plan_of(current, cell)
        spec = self.maker.upscale(current, cell)
        self._label(current, current.cells[-1], f"{plan.label} · upscaled", plan.stack, spec)
        return spec

    def go_to(self, index: int) -> Round:
        return self.history.go_to(index)

    def back(self) -> Round | None:
        if self.history.position == 0:
            return None
        return self.go_to(self.history.position - 1)

    # -- what a cell is ---------------------------------------------------------------------------

    def plan_of(self, stage_round: Round, cell: Cell) -> CellPlan:
        saved = stage_round.meta.get(CELLS_KEY, {}).get(cell.job_id, {})
        label = str(saved.get("label", "")) if isinstance(saved, dict) else ""
        stack = stack_from_json(saved.get("stack")) if isinstance(saved, dict) else ()
        return CellPlan(label, stack, cell.seed)

    def refine_stack(self, cell: Cell | None, feedback: str) -> tuple[Stack, list[str]]:
        """The stack refine keeps: the first pick's, else the cell's, else the round's.

        "without film-grain" / "no film-grain" / "drop ..." / "remove ..." takes a
        LoRA out; returns the stack and the short names taken out.
        """
        current = self._require_current()
        picked = next((c for c in current.cells if c.verdict == "picked"), None)
        source = picked or cell
        if source is not None:
            stack = self.plan_of(current, source).stack
        else:
            stack = stack_from_json(current.meta.get("stack"))
        words = feedback.lower()
        dropped = [
            lora.short
            for lora in stack
            if any(f"{verb} {lora.short.lower()}" in words for verb in DROP_VERBS)
        ]
        return tuple(lora for lora in stack if lora.short not in dropped), dropped

    def trigger_words(self, stack: Stack) -> list[str]:
        """The trigger words of the stack's LoRAs that the prompt has: refine keeps them."""
        lowered = self.prompt.lower()
        words: list[str] = []
        for lora in stack:
            entry = next((e for e in self.catalog if e.name == lora.name), None)
            for word in entry.trigger_words if entry else ():
                if word.lower() in lowered and word not in words:
                    words.append(word)
        return words

    def recipe_for(self, info: RoundInfo) -> Recipe | None:
        if info.stage not in STAGE_LABELS:
            return None
        workflow = info.parameters.get("workflow")
        if not isinstance(workflow, str):
            workflow = self.config.workflows[self.family]
        return RoundRecipe(
            info.stage,
            STAGE_LABELS[info.stage],
            0,
            workflow,
            self.config.min_tier,
            dict(self.config.params),
        )

    # -- saving and resuming ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "family": self.family,
            "seeds": list(self.seeds),
            "strength": [self.model_strength, self.clip_strength],
            "marks": stack_to_json(tuple(self.marks)),
        }

    def state(self) -> dict[str, Any]:
        return {**rounds_state(self.history), **self.snapshot()}

    def restore(self, state: Mapping[str, Any]) -> None:
        if isinstance(state.get("prompt"), str):
            self.prompt = state["prompt"]
        if state.get("family") in self.config.workflows:
            self.family = str(state["family"])
        seeds = state.get("seeds")
        if isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds):
            self.seeds = list(seeds)
        strength = state.get("strength")
        if isinstance(strength, list) and len(strength) == 2:
            self.model_strength, self.clip_strength = float(strength[0]), float(strength[1])
        self.marks = list(stack_from_json(state.get("marks")))
        for stage_round in self.history.made or self.history.rounds:
            for cell in stage_round.cells:
                cell.label = self.plan_of(stage_round, cell).label

    # -- plumbing ---------------------------------------------------------------------------------

    def _start(
        self,
        stage: str,
        plans: list[CellPlan],
        meta: dict[str, Any],
        *,
        negative: str | None = None,
    ) -> list[JobSpec]:
        if not self.prompt.strip():
            raise ExplorerError("The prompt is empty: type what the picture is of, then try again.")
        self._check_nodes(plans)
        workflow = self.config.workflows[self.family]
        recipe = RoundRecipe(
            stage,
            STAGE_LABELS[stage],
            len(plans),
            workflow,
            self.config.min_tier,
            dict(self.config.params),
        )
        if negative is None:
            negative = self.maker.default_negative(recipe)
        new = Round(recipe, self.prompt.strip(), negative, meta={**meta, "family": self.family})
        self.history.push(new)
        return self._fill(new, plans)

    def _fill(
        self, stage_round: Round, plans: list[CellPlan], locked: Iterable[int] = ()
    ) -> list[JobSpec]:
        """Cells and jobs stack by stack (seeds together): what affinity keeps on one GPU."""
        locked = set(locked)
        template = self.maker.template(stage_round.recipe.workflow)
        specs = []
        for plan in plans:
            cell = Cell(job_id="", seed=plan.seed, locked=plan.seed in locked)
            base = self.maker.spec(stage_round, template, stage_round.recipe.params, cell)
            spec = with_stack(base, plan.stack)
            stage_round.cells.append(cell)
            self._label(stage_round, cell, plan.label, plan.stack, spec)
            specs.append(spec)
        return specs

    def _label(
        self, stage_round: Round, cell: Cell, label: str, stack: Stack, spec: JobSpec
    ) -> None:
        cell.job_id, cell.label = spec.job_id, label
        cells = stage_round.meta.setdefault(CELLS_KEY, {})
        cells[spec.job_id] = {"label": label, "stack": stack_to_json(stack)}

    def _check_nodes(self, plans: Iterable[CellPlan]) -> None:
        """Refuse a stack no node has in full; note which nodes cannot take the others."""
        notes: list[str] = []
        for stack in dict.fromkeys(plan.stack for plan in plans):
            if not stack:
                continue
            having, lacking = nodes_for_stack(self.catalog, [lora.name for lora in stack])
            if not having:
                where = "; ".join(lacking.values()) or "no node has answered"
                raise ExplorerError(
                    f"no node has every LoRA of {describe_stack(stack)} ({where}); "
                    "copy the files onto one node or mark others"
                )
            notes.extend(reason for reason in lacking.values() if reason not in notes)
        self.notice = ("not on " + "; ".join(notes)) if notes else None

    def _require_current(self) -> Round:
        if self.current is None:
            raise ExplorerError("make a showcase first: s on a LoRA in the browser")
        return self.current


DROP_VERBS = ("without", "no", "drop", "remove", "lose")
