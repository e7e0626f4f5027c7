"""Rounds in the store and back, and the jobs they hand to the scheduler.

Saving: a round is a row (its recipe's name as the stage, the prompt, the
workflow settings and the flow's `meta` in the parameters), its jobs are rows
written before the scheduler sees them (so a crash loses nothing), and the
session's `state` holds the rounds document: what the rows cannot say — the
path through the rounds ("again" makes new rounds and keeps the old ones),
the position, which cells each round shows (kept ones included), verdicts
and locks given before an image exists. It is written after every change.
Resuming rebuilds the cells from the document, their state and picture from
the job and image rows, and re-attaches to whatever was still running; a
session without the document is rebuilt from the rows alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from imgen_tui.flows.recorder import SessionRecorder
from imgen_tui.flows.rounds import (
    SEED_LOCK,
    Cell,
    Recipe,
    Round,
    RoundHistory,
    judge,
    toggle_seed_lock,
)
from imgen_tui.graphs.params import read_values
from imgen_tui.scheduler.jobs import JobSpec, UnreadableSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.store import ImageRecord, SessionInfo, SessionStore
from imgen_tui.store.records import IN_PROGRESS_STATES, JobRow, RoundInfo, Verdict

STATE_VERSION = 1
VERDICTS: tuple[Verdict, ...] = ("none", "picked", "rejected")
META_KEY = "meta"  # round parameters: what the flow made the round from
RecipeFinder = Callable[[RoundInfo], Recipe | None]


def round_parameters(stage_round: Round) -> dict[str, Any]:
    parameters: dict[str, Any] = {"workflow": stage_round.recipe.workflow}
    parameters.update(stage_round.recipe.params)
    if stage_round.meta:
        parameters[META_KEY] = stage_round.meta
    return parameters


def rounds_state(history: RoundHistory) -> dict[str, Any]:
    """Every round made (superseded ones too), the path through them, and the position."""
    made = [r for r in history.made or history.rounds if r.round_id is not None]
    return {
        "version": STATE_VERSION,
        "position": history.position,
        "path": [r.round_id for r in history.rounds if r.round_id is not None],
        "rounds": [_round_state(r) for r in made],
    }


def _round_state(stage_round: Round) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": stage_round.round_id,
        "stage": stage_round.recipe.name,
        "prompt": stage_round.prompt,
        "negative": stage_round.negative,
        "made_from": list(stage_round.made_from),
        "replaces": stage_round.replaces.round_id if stage_round.replaces else None,
        "sources": [s.id if s is not None else None for s in stage_round.sources],
        "cells": [
            {
                "job": cell.job_id,
                "seed": cell.seed,
                "source": cell.source.id if cell.source else None,
                "verdict": cell.verdict,
                "locked": cell.locked,
                "upscaled": cell.upscaled,
            }
            for cell in stage_round.cells
        ],
    }
    if stage_round.meta:
        entry[META_KEY] = stage_round.meta
    return entry


def has_rounds_document(state: Mapping[str, Any]) -> bool:
    """Written by this module (or by the funnel before it moved here: `funnel: 1`)."""
    version = state.get("version", state.get("funnel"))
    return version == STATE_VERSION and isinstance(state.get("rounds"), list)


def restore_rounds(
    history: RoundHistory,
    state: Mapping[str, Any],
    images: Iterable[ImageRecord],
    jobs: Iterable[JobRow],
    infos: Iterable[RoundInfo],
    recipe_for: RecipeFinder,
) -> bool:
    """Rebuild the rounds from the session; False when it had no document (rebuilt from rows).

    The document's verdict and lock win over the image rows': they are
    written on every key press, and an image row exists only once its job
    is done. A round whose recipe is gone (a stage removed from the config)
    is left out.
    """
    images = list(images)
    jobs = list(jobs)
    infos = list(infos)
    if not has_rounds_document(state):
        _restore_from_rows(history, images, jobs, infos, recipe_for)
        return False
    by_image = {image.id: image for image in images}
    by_job = {image.job_id: image for image in images}
    rows = {row.id: row for row in jobs}
    info_of = {info.id: info for info in infos}
    made: dict[str, Round] = {}
    history.made = []
    for entry in state["rounds"]:
        round_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(round_id, str):
            continue
        info = info_of.get(round_id) or RoundInfo(
            round_id, "", 0, str(entry.get("stage")), "", "", {}
        )
        recipe = recipe_for(dataclasses.replace(info, stage=str(entry.get("stage"))))
        if recipe is None:
            continue
        meta = entry.get(META_KEY)
        stage_round = Round(
            recipe,
            str(entry.get("prompt", "")),
            str(entry.get("negative", "")),
            round_id=round_id,
            sources=[by_image.get(s) if isinstance(s, str) else None for s in entry["sources"]],
            meta=dict(meta) if isinstance(meta, dict) else {},
            made_from=tuple(str(i) for i in entry.get("made_from", [])),
            replaces=made.get(str(entry.get("replaces"))),
        )
        for saved in entry.get("cells", []):
            stage_round.cells.append(_cell(saved, by_image, by_job, rows))
        made[round_id] = stage_round
        history.made.append(stage_round)
    history.rounds = [made[i] for i in state.get("path", []) if i in made]
    position = state.get("position", 0)
    history.position = min(
        position if isinstance(position, int) else 0, max(0, len(history.rounds) - 1)
    )
    return True


def _cell(
    saved: Mapping[str, Any],
    by_image: Mapping[str, ImageRecord],
    by_job: Mapping[str, ImageRecord],
    rows: Mapping[str, JobRow],
) -> Cell:
    job_id = str(saved.get("job"))
    source = saved.get("source")
    verdict = saved.get("verdict")
    cell = Cell(
        job_id=job_id,
        seed=int(saved.get("seed") or 0),
        source=by_image.get(source) if isinstance(source, str) else None,
        verdict=verdict if verdict in VERDICTS else "none",
        locked=bool(saved.get("locked")),
        upscaled=bool(saved.get("upscaled")),
    )
    image, row = by_job.get(job_id), rows.get(job_id)
    if image is not None:
        cell.image, cell.state, cell.node_id = image, "done", image.node_id
    elif row is not None:
        _state_from_row(cell, row)
        if cell.state in ("queued", "running"):  # it will be run again: can it be?
            try:
                JobSpec.from_json(row.spec_json)
            except UnreadableSpec as error:
                cell.state, cell.error = "failed", f"{error}; press g to make the round again"
    return cell


def _state_from_row(cell: Cell, row: JobRow) -> None:
    if row.state in ("failed", "cancelled"):
        cell.state, cell.error = row.state, row.last_error
    elif row.state == "done":
        cell.state = "done"  # done, but its image was deleted from disk
    elif row.state in ("submitted", "running"):
        cell.state = "running" if row.state == "running" else "queued"
        cell.node_id = row.node_id


def _restore_from_rows(
    history: RoundHistory,
    images: list[ImageRecord],
    jobs: list[JobRow],
    infos: list[RoundInfo],
    recipe_for: RecipeFinder,
) -> None:
    """A session written before the document existed: the latest round of each stage."""
    by_job = {image.job_id: image for image in images}
    by_id = {image.id: image for image in images}
    latest: dict[str, Round] = {}
    history.made = []
    for info in infos:
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
        stage_round.cells = [cell_from_rows(row, by_job.get(row.id), by_id) for row in rows]
        stage_round.sources = [cell.source for cell in stage_round.cells[: recipe.count]]
        latest[recipe.name] = stage_round
        history.made.append(stage_round)
    order = list(dict.fromkeys(r.recipe.name for r in history.made))
    history.rounds = [latest[name] for name in order]
    history.position = max(0, len(history.rounds) - 1)


def cell_from_rows(
    row: JobRow, image: ImageRecord | None, images_by_id: Mapping[str, ImageRecord]
) -> Cell:
    try:
        spec: JobSpec | None = JobSpec.from_json(row.spec_json)
    except UnreadableSpec as error:
        spec, unreadable = None, str(error)
    seed = read_values(spec.graph).get("seed") if spec is not None else None
    cell = Cell(job_id=row.id, seed=seed if isinstance(seed, int) else 0)
    if spec is not None and spec.parent_image_id is not None:
        cell.source = images_by_id.get(spec.parent_image_id)
    if spec is None and image is None:  # nothing to show and nothing to run again
        cell.state, cell.error = "failed", f"{unreadable}; press g to make the round again"
    elif image is not None:
        cell.image, cell.state, cell.verdict = image, "done", image.verdict
        cell.node_id, cell.locked = image.node_id, SEED_LOCK in image.locks
        cell.seed = image.seed if image.seed is not None else cell.seed
    else:
        _state_from_row(cell, row)
    return cell


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
        session = await self.open_session(title)
        placed = await save_round(self.store, session.id, stage_round, specs)
        await self.store.update_session(session.id, state=state)
        self.scheduler.submit_many(placed)
        return placed

    async def open_session(self, title: str) -> SessionInfo:
        """The flow's session in the store, made now if nothing was saved yet."""
        if self.session is None:
            self.session = await self.store.create_session(self.flow, title[:80])
        return self.session

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

    async def image_arrived(self, cell: Cell) -> None:
        """A verdict or lock given before the image existed goes on its row."""
        if cell.image is None:
            return
        if cell.locked:
            await self.store.set_locks(cell.image.id, [SEED_LOCK])
        if cell.verdict != "none":
            await self.store.set_verdict(cell.image.id, cell.verdict)

    async def reopen(
        self, session_id: str, history: RoundHistory, recipe_for: RecipeFinder
    ) -> dict[str, Any]:
        """The session's rounds into `history`, unfinished jobs re-attached; returns its state.

        Only the jobs of cells the rounds show are put back to work: a job
        "again" replaced was cancelled and stays so.
        """
        self.session = await self.store.session(session_id)
        images = await self.store.images(session_id=session_id)
        jobs = await self.store.jobs(session_id)
        infos = await self.store.rounds(session_id)
        restore_rounds(history, self.session.state, images, jobs, infos, recipe_for)
        wanted = {cell.job_id for r in history.made for cell in r.cells}
        unfinished = [row for row in jobs if row.state in IN_PROGRESS_STATES and row.id in wanted]
        SessionRecorder.resume(self.scheduler, unfinished)
        return dict(self.session.state)


class RoundActions(Protocol):
    """What the shared round view asks of any flow's session (the concept's, the funnel's)."""

    @property
    def current(self) -> Round | None: ...

    @property
    def history(self) -> RoundHistory: ...

    async def judge(self, cell: Cell, verdict: Verdict) -> Verdict: ...

    async def toggle_seed_lock(self, cell: Cell) -> bool: ...

    async def more_like_this(self, cell: Cell, denoise: float) -> Round: ...

    async def upscale(self, cell: Cell) -> Round: ...

    async def again(self) -> Round: ...

    async def undo_again(self) -> Round | None: ...

    async def image_arrived(self, cell: Cell) -> None: ...
