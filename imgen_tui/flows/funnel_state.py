"""A funnel as a JSON document in its session, so reopening puts back exactly what was left.

The store keeps rounds, jobs and images as rows; what those rows cannot say
is the operator's path through them: which round of a stage is current
(`g` and a refined prompt make new rounds and keep the old ones), where the
cursor of the funnel is, which cells were kept from an earlier round, and
which are locked before their image exists. That is this document, written
to the session's `state` after every change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from imgen_tui.flows.funnel import Cell, Funnel, StageRound
from imgen_tui.store.records import ImageRecord, JobRow, RoundInfo, Verdict

STATE_VERSION = 1
VERDICTS: tuple[Verdict, ...] = ("none", "picked", "rejected")


def funnel_state(funnel: Funnel) -> dict[str, Any]:
    """Every round made (superseded ones too), the path through them, and the position."""
    rounds = [r for r in funnel.history if r.round_id is not None]
    return {
        "funnel": STATE_VERSION,
        "position": funnel.position,
        "path": [r.round_id for r in funnel.rounds if r.round_id is not None],
        "rounds": [_round_state(r) for r in rounds],
    }


def _round_state(stage_round: StageRound) -> dict[str, Any]:
    return {
        "id": stage_round.round_id,
        "stage": stage_round.stage.name,
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


def restore_funnel(
    funnel: Funnel,
    state: Mapping[str, Any],
    images: Iterable[ImageRecord],
    jobs: Iterable[JobRow],
    rounds: Iterable[RoundInfo],
) -> bool:
    """Rebuild the funnel from its session; False when the session has no such document.

    Cells take their state from the job rows and their picture from the
    images; the document's verdict and lock win, since they are written on
    every key press (an image row only exists once the job is done).
    """
    if state.get("funnel") != STATE_VERSION or not isinstance(state.get("rounds"), list):
        _restore_from_rows(funnel, images, jobs, rounds)
        return False
    by_image = {image.id: image for image in images}
    by_job = {image.job_id: image for image in by_image.values()}
    rows = {row.id: row for row in jobs}
    stages = {stage.name: stage for stage in funnel.config.stages}
    made: dict[str, StageRound] = {}
    funnel.history = []
    for entry in state["rounds"]:
        stage = stages.get(str(entry.get("stage")))
        if stage is None or not isinstance(entry.get("id"), str):
            continue  # a stage since removed from funnel.yaml
        stage_round = StageRound(
            stage,
            str(entry.get("prompt", "")),
            str(entry.get("negative", "")),
            round_id=entry["id"],
            sources=[by_image.get(s) if isinstance(s, str) else None for s in entry["sources"]],
            made_from=tuple(str(i) for i in entry.get("made_from", [])),
            replaces=made.get(str(entry.get("replaces"))),
        )
        for saved in entry.get("cells", []):
            stage_round.cells.append(_cell(saved, by_image, by_job, rows))
        made[stage_round.round_id or ""] = stage_round
        funnel.history.append(stage_round)
    funnel.rounds = [made[i] for i in state.get("path", []) if i in made]
    funnel.position = min(int(state.get("position", 0)), max(0, len(funnel.rounds) - 1))
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
    elif row is not None and row.state in ("failed", "cancelled"):
        cell.state, cell.error = row.state, row.last_error
    elif row is not None and row.state == "done":
        cell.state = "done"  # done, but its image was deleted from disk
    return cell


def _restore_from_rows(
    funnel: Funnel,
    images: Iterable[ImageRecord],
    jobs: Iterable[JobRow],
    rounds: Iterable[RoundInfo],
) -> None:
    """A session written before the document existed: the latest round of each stage."""
    from imgen_tui.graphs.params import read_values
    from imgen_tui.scheduler.jobs import JobSpec

    by_job = {image.job_id: image for image in images}
    stages = {stage.name: stage for stage in funnel.config.stages}
    job_rows = list(jobs)
    latest: dict[str, StageRound] = {}
    funnel.history = []
    for info in rounds:
        stage = stages.get(info.stage)
        if stage is None:
            continue
        stage_round = StageRound(stage, info.prompt, info.negative, round_id=info.id)
        for row in (job for job in job_rows if job.round_id == info.id):
            seed = read_values(JobSpec.from_json(row.spec_json).graph).get("seed")
            cell = Cell(job_id=row.id, seed=seed if isinstance(seed, int) else 0)
            image = by_job.get(row.id)
            if image is not None:
                cell.image, cell.state, cell.verdict = image, "done", image.verdict
                cell.node_id, cell.locked = image.node_id, "seed" in image.locks
                cell.seed = image.seed if image.seed is not None else cell.seed
            elif row.state in ("failed", "cancelled"):
                cell.state = row.state
            stage_round.cells.append(cell)
        latest[stage.name] = stage_round
        funnel.history.append(stage_round)
    funnel.rounds = [latest[s.name] for s in funnel.config.stages if s.name in latest]
    funnel.position = max(0, len(funnel.rounds) - 1)
