"""Running any workflow from the browser's form: values + variations → jobs → a round.

The form edits the workflow's typed parameters (graphs/typed_params.py); the
variation settings (count, seed mode, prompts one per line, sweeps) are the
plan flows/variations.py already knows how to expand and order. `plan_run`
turns both into job specs and says what is wrong in one sentence naming the
parameter; `WorkflowRun` is the session: every run is a round in the store
(flow `workflow`), judged with the shared round view like every other flow.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgen_tui.flows.round_store import RoundRunner, rounds_state
from imgen_tui.flows.rounds import SOURCE_PLACEHOLDER, Cell, Round, RoundHistory, RoundRecipe
from imgen_tui.flows.variations import (
    FarmEstimate,
    Sweep,
    SweepMode,
    VariationError,
    VariationPlan,
    apply_variation,
    estimate_on_views,
    plan_variations,
    prompt_lines,
    sweep_values,
)
from imgen_tui.flows.workflow_catalog import WorkflowCard
from imgen_tui.graphs.params import read_values
from imgen_tui.graphs.typed_params import TypedParameter, typed_parameters
from imgen_tui.scheduler.jobs import JobSpec, Priority
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.scheduler.variations import SeedStrategy
from imgen_tui.store import SessionStore
from imgen_tui.store.records import RoundInfo, Verdict

FLOW = "workflow"
SEED_MODES: tuple[SeedStrategy, ...] = ("random", "increment", "fixed")
SWEEP_MODES: tuple[SweepMode, ...] = ("cartesian", "zip")
MAX_JOBS = 500  # a typo in a sweep must not queue ten thousand images


class WorkflowRunError(ValueError):
    """A form or plan the run cannot use: one sentence naming the parameter and the fix."""


ParameterKey = tuple[str, str]  # (node id, input name)


def key_text(key: ParameterKey) -> str:
    return f"{key[0]}.{key[1]}"


@dataclass(frozen=True)
class RunSettings:
    """The variation half of the form."""

    count: int = 1
    seed_mode: SeedStrategy = "random"
    prompts: str = ""  # one per line, cycled; empty: the form's own prompt
    sweeps: str = ""  # one per line: `NAME = VALUES` (NAME a role like steps, or NODE.INPUT)
    sweep_mode: SweepMode = "cartesian"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSettings:
        count = data.get("count")
        seed_mode = data.get("seed_mode")
        sweep_mode = data.get("sweep_mode")
        return cls(
            count=count if isinstance(count, int) and count >= 1 else 1,
            seed_mode=seed_mode if seed_mode in SEED_MODES else "random",
            prompts=str(data.get("prompts") or ""),
            sweeps=str(data.get("sweeps") or ""),
            sweep_mode=sweep_mode if sweep_mode in SWEEP_MODES else "cartesian",
        )


#: a saved workflow's "control after generate" -> the form's seed mode
CONTROL_SEED_MODES: dict[str, SeedStrategy] = {
    "randomize": "random",
    "increment": "increment",
    "decrement": "increment",
    "fixed": "fixed",
}


def saved_seed_mode(parameters: Sequence[TypedParameter]) -> SeedStrategy:
    """The seed mode the workflow was saved with (ComfyUI's control after generate)."""
    seed = next((p for p in parameters if p.role == "seed"), None)
    control = seed.control if seed is not None else None
    return CONTROL_SEED_MODES.get(control or "", "random")


def form_parameters(
    card: WorkflowCard, object_info: Mapping[str, Any] | None
) -> list[TypedParameter]:
    """One parameter per literal input, important ones first (a primitive feeding two roles
    is shown once, under its first role)."""
    seen: set[ParameterKey] = set()
    found = []
    for parameter in typed_parameters(card.graph, object_info, card.controls):
        key = (parameter.node, parameter.input)
        if key not in seen:
            seen.add(key)
            found.append(parameter)
    return found


def parse_value(parameter: TypedParameter, text: str) -> Any:
    """What a person typed, as the parameter's type, checked against its bounds."""
    label = f"{parameter.input} of node {parameter.node}"
    value: Any = text
    if parameter.kind == "int":
        try:
            value = int(text.strip())
        except ValueError:
            raise WorkflowRunError(f"{label} takes a whole number, not {text!r}") from None
    elif parameter.kind == "float":
        try:
            value = float(text.strip())
        except ValueError:
            raise WorkflowRunError(f"{label} takes a number, not {text!r}") from None
    elif parameter.kind == "boolean":
        value = text.strip().lower() in ("true", "yes", "1", "on")
    elif parameter.kind == "combo":
        value = next((option for option in parameter.options if str(option) == text), text)
    elif parameter.kind == "unknown":
        return parameter.value  # not editable: kept as the workflow has it
    problem = parameter.check(value)
    if problem is not None:
        raise WorkflowRunError(f"{problem}; the form keeps the last good value")
    return value


def parse_sweeps(text: str, parameters: Sequence[TypedParameter]) -> tuple[Sweep, ...]:
    """`steps = 10..30 step 10`, `sampler = euler, dpmpp_2m`, `3.cfg = 5, 7` — one per line."""
    sweeps = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, equals, values = line.partition("=")
        if not equals:
            raise WorkflowRunError(
                f"the sweep {line.strip()!r} needs NAME = VALUES, e.g. 'steps = 10..30 step 10'"
            )
        parameter = _sweep_target(name.strip(), parameters)
        if parameter.kind not in ("int", "float", "combo"):
            raise WorkflowRunError(
                f"{parameter.input} of node {parameter.node} is a {parameter.kind}; "
                "sweeps go over numbers and choices"
            )
        try:
            sweeps.append(Sweep(parameter, sweep_values(parameter, values)))
        except VariationError as error:
            raise WorkflowRunError(str(error)) from None
    return tuple(sweeps)


def _sweep_target(name: str, parameters: Sequence[TypedParameter]) -> TypedParameter:
    node_id, dot, input_name = name.partition(".")
    if dot:
        found = [p for p in parameters if p.node == node_id and p.input == input_name]
    else:
        found = [p for p in parameters if name in (p.role, p.input)]
    if len(found) == 1:
        return found[0]
    if found:
        where = ", ".join(f"{p.node}.{p.input}" for p in found)
        raise WorkflowRunError(
            f"the sweep over {name!r} could mean {where}; name one as NODE.INPUT"
        )
    known = sorted({p.role for p in parameters if p.role} | {p.input for p in parameters})
    raise WorkflowRunError(
        f"the workflow has no parameter {name!r} to sweep; it has {', '.join(known[:12])}"
    )


@dataclass(frozen=True)
class RunPlan:
    specs: list[JobSpec] = field(repr=False)
    seeds: list[int]
    prompt: str  # the first job's prompt: the round's title


def plan_run(
    card: WorkflowCard,
    parameters: Sequence[TypedParameter],
    values: Mapping[ParameterKey, Any],
    settings: RunSettings,
    *,
    rng: random.Random | None = None,
) -> RunPlan:
    """Every job of one run, ordered so model switches are fewest; reads the source image's
    path from disk, so callers run it in a thread."""
    problem = card.runnable_problem()
    if problem is not None:
        raise WorkflowRunError(problem)
    assert card.info is not None
    graph = copy.deepcopy(card.graph)
    for (node_id, input_name), value in values.items():
        if node_id in graph:
            graph[node_id]["inputs"][input_name] = value
    seed_parameter = next((p for p in parameters if p.role == "seed"), None)
    if settings.count < 1:
        raise WorkflowRunError("the count is at least 1 image per point")
    if settings.count > 1 and seed_parameter is None:
        raise WorkflowRunError(
            f"{card.name} has no seed to vary, so a count of {settings.count} would make the "
            "same picture again; use a count of 1 or sweep a parameter"
        )
    if settings.seed_mode == "fixed" and settings.count > 1:
        raise WorkflowRunError(
            f"a fixed seed with a count of {settings.count} makes the same picture "
            f"{settings.count} times; choose increment or random"
        )
    prompts = prompt_lines(settings.prompts)
    if prompts and not any(p.role == "prompt" for p in parameters):
        raise WorkflowRunError(f"{card.name} has no prompt text to cycle; clear the prompt lines")
    base_seed = values.get((seed_parameter.node, seed_parameter.input)) if seed_parameter else 0
    plan = VariationPlan(
        count=settings.count,
        seed=settings.seed_mode,
        base_seed=base_seed if isinstance(base_seed, int) else 0,
        prompts=prompts,
        sweeps=parse_sweeps(settings.sweeps, parameters),
        mode=settings.sweep_mode,
    )
    try:
        jobs = plan_variations(plan, rng=rng)
    except VariationError as error:
        raise WorkflowRunError(str(error)) from None
    if len(jobs) > MAX_JOBS:
        raise WorkflowRunError(
            f"that plan makes {len(jobs)} jobs; {MAX_JOBS} at most: narrow a sweep or the count"
        )
    source = _source_image(card, parameters, values)
    specs = []
    for job in jobs:
        job_graph = apply_variation(graph, parameters, job if seed_parameter else _no_seed(job))
        if source is not None:
            for parameter in parameters:
                if parameter.role == "image":
                    job_graph[parameter.node]["inputs"][parameter.input] = SOURCE_PLACEHOLDER
        specs.append(
            JobSpec.from_graph(
                job_graph,
                card.info.family,
                needs=card.info.needs,
                priority=Priority.INTERACTIVE,
                source_image=str(source) if source is not None else None,
            )
        )
    first_prompt = jobs[0].prompt if jobs and jobs[0].prompt else _form_prompt(parameters, values)
    return RunPlan(specs, [_seed_of(spec) for spec in specs], first_prompt)


def _no_seed(job: Any) -> Any:
    return dataclasses.replace(job, seed=None)


def _source_image(
    card: WorkflowCard, parameters: Sequence[TypedParameter], values: Mapping[ParameterKey, Any]
) -> Path | None:
    """The picture an image-taking workflow starts from: a path typed in its image field."""
    image = next((p for p in parameters if p.role == "image"), None)
    if image is None:
        return None
    typed = values.get((image.node, image.input), image.value)
    if not isinstance(typed, str) or typed in ("", SOURCE_PLACEHOLDER):
        raise WorkflowRunError(
            f"{card.name} starts from a picture: type its path in '{image.input}' "
            f"(node {image.node})"
        )
    path = Path(typed).expanduser()
    if path.is_file():
        return path
    if image.options and typed in image.options:
        return None  # a file already in the node's input folder
    raise WorkflowRunError(f"{typed}: no such picture for '{image.input}' (node {image.node})")


def _form_prompt(parameters: Sequence[TypedParameter], values: Mapping[ParameterKey, Any]) -> str:
    prompt = next((p for p in parameters if p.role == "prompt"), None)
    if prompt is None:
        return ""
    value = values.get((prompt.node, prompt.input), prompt.value)
    return value if isinstance(value, str) else ""


def _seed_of(spec: JobSpec) -> int:
    seed = read_values(spec.graph).get("seed")
    return seed if isinstance(seed, int) else 0


def estimate(specs: Sequence[JobSpec], scheduler: Scheduler | None) -> FarmEstimate:
    """How long the farm would take now: the scheduler's learned speeds and current load."""
    if scheduler is None:
        return FarmEstimate(0.0, {}, len(specs), "the farm is not running")
    now = time.monotonic()
    views = [r.view(now) for r in scheduler.nodes.values() if r.state != "down"]
    return estimate_on_views(specs, views)


def session_workflow(state: Mapping[str, Any]) -> str | None:
    """Which workflow (card key) a saved session ran: the first round's meta says."""
    rounds = state.get("rounds")
    first = rounds[0] if isinstance(rounds, list) and rounds else None
    meta = first.get("meta") if isinstance(first, dict) else None
    key = meta.get("workflow") if isinstance(meta, dict) else None
    return key if isinstance(key, str) else None


async def latest_session(store: SessionStore, card_key: str) -> str | None:
    """The newest session that ran this workflow, to reopen it as it was left."""
    for session in await store.sessions(disk_use=False):  # newest first
        if session.flow == FLOW and session_workflow(session.state) == card_key:
            return session.id
    return None


def _key_of(text: str) -> ParameterKey:
    node_id, _, input_name = text.rpartition(".")
    return (node_id, input_name)


class WorkflowRun:
    """One workflow's session: each run a round, judged as everywhere, kept in the store."""

    def __init__(self, card: WorkflowCard, store: SessionStore, scheduler: Scheduler) -> None:
        self.card = card
        self.runner = RoundRunner(store, scheduler, FLOW)
        self._history = RoundHistory()
        self.last: tuple[Sequence[TypedParameter], dict[ParameterKey, Any], RunSettings] | None
        self.last = None

    @property
    def history(self) -> RoundHistory:
        return self._history

    @property
    def current(self) -> Round | None:
        return self._history.current

    @property
    def session_id(self) -> str | None:
        return self.runner.session.id if self.runner.session else None

    def _round(
        self, plan: RunPlan, settings: RunSettings, values: Mapping[ParameterKey, Any]
    ) -> Round:
        recipe = RoundRecipe(
            name=f"run {len(self._history.rounds) + 1}",
            label=self.card.name,
            count=len(plan.specs),
            workflow=self.card.name,
        )
        meta = {
            "workflow": self.card.key,
            "values": {key_text(key): value for key, value in values.items()},
            "variations": settings.to_json(),
        }
        return Round(recipe, plan.prompt, "", meta=meta)

    async def run(
        self,
        plan: RunPlan,
        parameters: Sequence[TypedParameter],
        values: Mapping[ParameterKey, Any],
        settings: RunSettings,
    ) -> Round:
        """A new round with the plan's jobs: saved, then sent to the scheduler."""
        stage_round = self._round(plan, settings, values)
        stage_round.cells = [
            Cell(job_id=spec.job_id, seed=seed)
            for spec, seed in zip(plan.specs, plan.seeds, strict=True)
        ]
        self._history.push(stage_round)
        self.last = (parameters, dict(values), settings)
        await self._launch(stage_round, plan.specs)
        return stage_round

    async def _launch(self, stage_round: Round, specs: Sequence[JobSpec]) -> None:
        title = f"{self.card.name}: {stage_round.prompt}" if stage_round.prompt else self.card.name
        placed = await self.runner.launch(
            stage_round, specs, title=title, state=rounds_state(self._history)
        )
        for cell, spec in zip(stage_round.cells[-len(placed) :], placed, strict=True):
            cell.job_id = spec.job_id

    async def reopen(self, session_id: str, parameters: Sequence[TypedParameter]) -> None:
        """The session's rounds as they were left (verdicts, locks, the round looked at);
        what was still running is put back to work, and `again` knows the last plan."""

        def recipe_for(info: RoundInfo) -> RoundRecipe:
            return RoundRecipe(info.stage, self.card.name, 0, self.card.name)

        await self.runner.reopen(session_id, self._history, recipe_for)
        current = self.current
        if current is None:
            return
        saved = current.meta.get("values")
        variations = current.meta.get("variations")
        values = (
            {_key_of(text): value for text, value in saved.items()}
            if isinstance(saved, dict)
            else {}
        )
        settings = (
            RunSettings.from_json(variations) if isinstance(variations, dict) else RunSettings()
        )
        self.last = (parameters, values, settings)

    async def save(self) -> None:
        await self.runner.save_state(rounds_state(self._history))

    async def judge(self, cell: Cell, verdict: Verdict) -> Verdict:
        new = await self.runner.judge(cell, verdict)
        await self.save()
        return new

    async def toggle_seed_lock(self, cell: Cell) -> bool:
        locked = await self.runner.toggle_seed_lock(cell)
        await self.save()
        return locked

    async def again(self) -> Round:
        """The round on screen once more with new random seeds; picked and locked cells stay."""
        current = self.current
        if current is None or self.last is None:
            raise ValueError("run the workflow first (ctrl+r)")
        parameters, values, settings = self.last
        if not any(p.role == "seed" for p in parameters):
            raise ValueError(f"{self.card.name} has no seed, so again would make the same pictures")
        await self.runner.cancel(current.unfinished_jobs())
        kept = [
            dataclasses.replace(cell)
            for cell in current.cells
            if cell.image is not None and (cell.locked or cell.verdict == "picked")
        ]
        plan = await asyncio.to_thread(
            plan_run,
            self.card,
            parameters,
            values,
            dataclasses.replace(settings, seed_mode="random"),
        )
        fresh = Round(current.recipe, current.prompt, "", meta=dict(current.meta), replaces=current)
        fresh.cells = kept + [
            Cell(job_id=spec.job_id, seed=seed)
            for spec, seed in zip(plan.specs, plan.seeds, strict=True)
        ]
        self._history.replace_current(fresh)
        await self._launch(fresh, plan.specs)
        return fresh

    async def undo_again(self) -> Round | None:
        undone = self._history.undo_again()
        if undone is not None:
            await self.runner.cancel(undone.unfinished_jobs())
            await self.save()
        return undone

    async def more_like_this(self, cell: Cell, denoise: float) -> Round:
        raise ValueError(
            "more-like-this belongs to the funnel and the concept builder; here, change the "
            "form (or lock this seed with l) and run again"
        )

    async def upscale(self, cell: Cell) -> Round:
        raise ValueError(
            "to upscale from the browser, open an upscale workflow and give it this picture's path"
        )

    async def image_arrived(self, cell: Cell) -> None:
        await self.runner.image_arrived(cell)

    async def cancel_all(self) -> None:
        await self.runner.cancel(self._history.unfinished_jobs())
