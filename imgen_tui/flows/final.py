"""The end of the funnel: where the final image came from, written down, and exported.

The final is an upscale, so its graph has no prompt and no seed: its
sidecar would say `"prompt": ""`. The funnel knows the rest of the story
(which draft, which pick at each stage, under which prompt), and this
module writes that story into the final's sidecar and copies both files to
a folder the operator can find. File work runs in a thread (the callers
use `asyncio.to_thread`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imgen_tui.flows.funnel import Cell, Funnel, StageRound
from imgen_tui.store.files import safe_name, write_atomic, write_json_atomic
from imgen_tui.store.records import ImageRecord


def lineage(funnel: Funnel, cell: Cell) -> list[dict[str, Any]]:
    """Oldest first: each image this one was made from, with its stage, prompt and seed."""
    owners: dict[str, tuple[StageRound, Cell]] = {}
    for stage_round in funnel.history:
        for each in stage_round.cells:
            if each.image is not None:
                owners[each.image.id] = (stage_round, each)
    chain: list[dict[str, Any]] = []
    source = cell.source
    seen: set[str] = set()
    while source is not None and source.id not in seen:
        seen.add(source.id)
        found = owners.get(source.id)
        owner = found[0] if found else None
        parent = found[1] if found else None
        chain.append(
            {
                "stage": owner.stage.name if owner else None,
                "image": source.id,
                "file": source.path.name,
                "seed": source.seed,
                "prompt": owner.prompt if owner else None,
                "picked": parent.verdict == "picked" if parent else None,
            }
        )
        source = parent.source if parent else None
    chain.reverse()
    return chain


def final_story(funnel: Funnel, stage_round: StageRound, cell: Cell) -> dict[str, Any]:
    """What the final's sidecar gains: its prompt, seed and lineage, and the picks of each stage."""
    prompt_round = _last_prompted(funnel, cell) or stage_round
    return {
        "prompt": prompt_round.prompt,
        "negative": prompt_round.negative,
        "seed": cell.seed,
        "stage": stage_round.stage.name,
        "lineage": lineage(funnel, cell),
        "picks": {
            r.stage.name: [image.path.name for image in r.picks]
            for r in funnel.rounds
            if r is not stage_round
        },
    }


def _last_prompted(funnel: Funnel, cell: Cell) -> StageRound | None:
    """The round the prompt really came from: the last one in the lineage (an upscale has none)."""
    chain = lineage(funnel, cell)
    for link in reversed(chain):
        for stage_round in funnel.history:
            if any(c.image is not None and c.image.id == link["image"] for c in stage_round.cells):
                return stage_round
    return None


def write_story(image: ImageRecord, story: dict[str, Any]) -> None:
    """Merge the story into the image's sidecar (blocking: run it in a thread)."""
    try:
        sidecar = json.loads(image.sidecar_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        sidecar = {}
    if not isinstance(sidecar, dict):
        sidecar = {}
    sidecar.update(story)
    write_json_atomic(image.sidecar_path, sidecar)


def export_folder(base: Path, title: str, session_id: str) -> Path:
    """`<base>/<session title>-<id>`: one folder per session, named so a person finds it."""
    return base / f"{safe_name(title.lower()) or 'funnel'}-{session_id[:8]}"


def export_final(image: ImageRecord, story: dict[str, Any], folder: Path) -> list[Path]:
    """Copy the final and its (story-filled) sidecar into `folder` (blocking: use a thread)."""
    write_story(image, story)
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for source in (image.path, image.sidecar_path):
        target = folder / source.name
        write_atomic(target, source.read_bytes())
        copies.append(target)
    return copies
