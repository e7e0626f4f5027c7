"""Rounds in the store and back, and the jobs they hand to the scheduler.

Saving: a round is a row (its recipe's name as the stage, the prompt, the
workflow settings and the flow's `meta` in the parameters), its jobs are rows
written before the scheduler sees them (so a crash loses nothing), and the
session's state says where the operator was and which cells each round shows
("again" replaces cells; their old jobs stay in the store but not on screen).
Resuming rebuilds the cells from the job and image rows — seed, source,
verdict, seed lock, state — and re-attaches to whatever was still running.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from imgen_tui.flows.recorder import SessionRecorder
from imgen_tui.flows.rounds import SEED_LOCK, Cell, Recipe, Round, judge, toggle_seed_lock
from imgen_tui.graphs.params import read_values
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.store import ImageRecord, SessionInfo, SessionStore
from imgen_tui.store.records import IN_PROGRESS_STATES, JobRow, RoundInfo, Verdict

LAYOUT_KEY = "cells"  # session state: round id → the job ids its grid shows, in order
META_KEY = "meta"  # round parameters: what the flow made the round from


def round_parameters(stage_round: Round) -> dict[str, Any]:
    parameters: dict[str, Any] = {"workflow": stage_round.recipe.workflow}
    parameters.update(stage_round.recipe.params)
    if stage_round.meta:
        parameters[META_KEY] = stage_round.meta
    return parameters


def layout_of(rounds: Iterable[Round]) -> dict[str, list[str]]:
    return {r.round_id: [c.job_id for c in r.cells] for r in rounds if r.round_id is not None}


async def save_round(
    store: SessionStore, session_id: str, stage_round: Round, specs: Sequence[JobSpec]
) -> list[JobSpec]:
    """The round's row (once) and these jobs' rows; returns the specs carrying its id."""
    if stage_round.round_id is None:
        info = await store.add_round(
            session_id,
            stage_round.recipe.name,
            prompt=stage_round.prompt,
            negative=stage_round.negative,
            parameters=round_parameters(stage_round),
        )
        stage_round.round_id = info.id
    placed = [dataclasses.replace(spec, round_id=stage_round.round_id) for spec in specs]
    await store.add_jobs(stage_round.round_id, [(spec.job_id, spec.to_json()) for spec in placed])
    return placed


@dataclass
class Resumed:
    rounds: list[Round]
    unfinished: list[JobRow] = field(default_factory=list)  # to re-attach or run


RecipeFinder = Callable[[RoundInfo], Recipe | None]


async def load_rounds(
    store: SessionStore,
    session_id: str,
    recipe_for: RecipeFinder,
    layout: Mapping[str, Sequence[str]] | None = None,
) -> Resumed:
    """The session's rounds as they were; a round whose recipe is gone is left out."""
    images = await store.images(session_id=session_id)
    by_job = {image.job_id: image for image in images}
    by_id = {image.id: image for image in images}
    jobs = await store.jobs(session_id)
    rounds = []
    shown_jobs: set[str] = set()
    for info in await store.rounds(session_id):
        recipe = recipe_for(info)
        if recipe is None:
            continue
        meta = info.parameters.get(META_KEY)
        stage_round = Round(
            recipe,
            info.prompt,
            info.negative,
            round_id=info.id,
            meta=dict(meta) if isinstance(meta, dict) else {},
        )
        rows = [job for job in jobs if job.round_id == info.id]
        wanted = (layout or {}).get(info.id)
        if wanted is not None:
            order = {job_id: index for index, job_id in enumerate(wanted)}
            rows = sorted((row for row in rows if row.id in order), key=lambda r: order[r.id])
        stage_round.cells = [cell_from_rows(row, by_job.get(row.id), by_id) for row in rows]
        stage_round.sources = [cell.source for cell in stage_round.cells[: recipe.count]]
        shown_jobs.update(row.id for row in rows)
        rounds.append(stage_round)
    unfinished = [row for row in jobs if row.state in IN_PROGRESS_STATES and row.id in shown_jobs]
    return Resumed(rounds, unfinished)


def cell_from_rows(
    row: JobRow, image: ImageRecord | None, images_by_id: Mapping[str, ImageRecord]
) -> Cell:
    spec = JobSpec.from_json(row.spec_json)
    seed = read_values(spec.graph).get("seed")
    cell = Cell(job_id=row.id, seed=seed if isinstance(seed, int) else 0)
    if spec.parent_image_id is not None:
        cell.source = images_by_id.get(spec.parent_image_id)
    if image is not None:
        cell.image, cell.state, cell.verdict = image, "done", image.verdict
        cell.node_id, cell.locked = image.node_id, SEED_LOCK in image.locks
    elif row.state in ("failed", "cancelled"):
        cell.state, cell.error = row.state, row.last_error
    elif row.state in ("submitted", "running"):
        cell.state, cell.node_id = "running" if row.state == "running" else "queued", row.node_id
    return cell


class RoundRunner:
    """A flow's rounds on the farm: saved, then submitted; cancelled; reopened.

    The screens and the tests use this one path, so what a test proves about
    saving, resuming and cancelling is what the operator gets.
    """

    def __init__(self, store: SessionStore, scheduler: Scheduler, flow: str) -> None:
        self.store = store
        self.scheduler = scheduler
        self.flow = flow
        self.session: SessionInfo | None = None

    async def launch(
        self,
        stage_round: Round,
        specs: Sequence[JobSpec],
        *,
        title: str,
        state: dict[str, Any],
    ) -> list[JobSpec]:
        """Write the round, its jobs and the flow's state, then hand the jobs to the scheduler."""
        if self.session is None:
            self.session = await self.store.create_session(self.flow, title[:80])
        placed = await save_round(self.store, self.session.id, stage_round, specs)
        await self.store.update_session(self.session.id, state=state)
        self.scheduler.submit_many(placed)
        return placed

    async def save_state(self, state: dict[str, Any]) -> None:
        if self.session is not None:
            await self.store.update_session(self.session.id, state=state)

    async def judge(self, cell: Cell, verdict: Verdict) -> Verdict:
        """Pick, reject or clear (the same verdict twice clears it), kept in the store."""
        new = judge(cell, verdict)
        if cell.image is not None:
            await self.store.set_verdict(cell.image.id, new)
        return new

    async def toggle_seed_lock(self, cell: Cell) -> bool:
        locks = toggle_seed_lock(cell)
        if cell.image is not None:
            await self.store.set_locks(cell.image.id, locks)
        return cell.locked

    async def cancel(self, job_ids: Iterable[str]) -> None:
        for job_id in list(job_ids):
            await self.scheduler.cancel(job_id)

    async def reopen(self, session_id: str, recipe_for: RecipeFinder) -> list[Round]:
        """The session's rounds, with unfinished jobs re-attached (finished ones not remade)."""
        self.session = await self.store.session(session_id)
        layout = self.session.state.get(LAYOUT_KEY)
        resumed = await load_rounds(
            self.store, session_id, recipe_for, layout if isinstance(layout, dict) else None
        )
        SessionRecorder.resume(self.scheduler, resumed.unfinished)
        return resumed.rounds


class RoundActions(Protocol):
    """What the shared round view asks of any flow's session (the concept's, the funnel's)."""

    @property
    def current(self) -> Round | None: ...

    async def judge(self, cell: Cell, verdict: Verdict) -> Verdict: ...

    async def toggle_seed_lock(self, cell: Cell) -> bool: ...

    async def more_like_this(self, cell: Cell, denoise: float) -> Round: ...

    async def upscale(self, cell: Cell) -> Round: ...

    async def again(self) -> Round: ...
