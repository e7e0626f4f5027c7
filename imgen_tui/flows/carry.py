"""What a picture carries into another flow: one value object every screen hands on.

The gallery and the LoRA explorer make a `Carried` from the picture under the
cursor; the chooser says where it goes; the target screen takes the prompt
and the LoRA stack. One mechanism for every source and target, so carrying
means the same everywhere.

What becomes of the stack in the target (`settle_stack`) is decided once,
against the farm's LoRA catalog:

- a LoRA no node of the farm has is left out, with a sentence naming the file
  (a carry that refused the whole pick over one missing file would lose the
  prompt too, and routing could never run such a job anyway);
- a LoRA made for another family than any stage of the target is left out the
  same way; one that fits some stages only (an SD1.5 LoRA in the funnel) is
  kept for those stages and the sentence names them — the round maker never
  patches it into a graph of another family;
- when no node answered, nothing can be checked: the stack is kept as it is
  (and routing holds its jobs until a node that has the files is back).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from imgen_tui.comfy.lora_answers import NodeLoras
from imgen_tui.flows.lora_catalog import FAMILY_LABELS, build_catalog
from imgen_tui.flows.stacks import Stack, StackLora, stack_of_graph
from imgen_tui.store.records import GalleryImage

#: The flows a picture can be carried into, as (key, what the chooser shows).
CARRY_TARGETS: tuple[tuple[str, str], ...] = (
    ("funnel", "the funnel"),
    ("concept", "the concept builder"),
    ("explorer", "the LoRA explorer"),
    ("keyframes", "a keyframe video"),
)


@dataclass(frozen=True)
class Carried:
    """A picture's prompt and LoRA stack (and where it came from) on its way into a new flow."""

    prompt: str
    negative: str
    image_id: str
    stack: Stack = ()
    picture: Path | None = None  # the stored file: a keyframe video starts from the picture itself


def carried_from_gallery(found: GalleryImage) -> Carried:
    """The gallery cell's prompt and the stack its sidecar's graph applied.

    Reads the sidecar file: call it in a thread. A sidecar that is missing or
    unreadable carries the prompt alone (the picture is still worth carrying).
    """
    sidecar = _read_sidecar(found)
    family = sidecar.get("family")
    stack = stack_of_graph(sidecar.get("graph"), family if isinstance(family, str) else None)
    return Carried(
        prompt=found.prompt,
        negative="",
        image_id=str(found.image.id),
        stack=stack,
        picture=found.image.path,
    )


def _read_sidecar(found: GalleryImage) -> dict[str, Any]:
    try:
        document = json.loads(found.image.sidecar_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def target_title(key: str) -> str:
    """The words the notification uses for a carry target."""
    return dict(CARRY_TARGETS).get(key, key)


def settle_stack(
    stack: Stack,
    found: Sequence[NodeLoras],
    stages: Sequence[tuple[str, str]],
    target: str,
) -> tuple[Stack, list[str]]:
    """The part of a carried stack the target can use, and one sentence per change.

    `found` is what each node of the farm said it has (`discover_farm`);
    `stages` are the target's sampling stages as (label, family).
    """
    down = [node.node for node in found if node.error is not None]
    if stack and len(down) == len(found):
        return stack, [
            "No node answered about its LoRAs, so the carried stack could not be checked: "
            "jobs will go only to nodes that have every file of it."
        ]
    catalog = build_catalog(found)
    by_name = {entry.name: entry for entry in catalog}
    kept: list[StackLora] = []
    said: list[str] = []
    for lora in stack:
        entry = by_name.get(lora.name)
        if entry is None or not entry.nodes:
            answered = f" that answered ({', '.join(down)} did not)" if down else ""
            said.append(
                f"{lora.name} is on no node of the farm{answered}, so it was left out of the stack."
            )
            continue
        lora = replace(lora, family=entry.family or lora.family)
        fit = [label for label, family in stages if lora.fits(family)]
        if not fit:
            makes = " and ".join(dict.fromkeys(_label(family) for _, family in stages))
            said.append(
                f"{lora.name} is {_a(lora.family_label)} LoRA and {target_title(target)} makes "
                f"{makes} pictures, so it was left out of the stack."
            )
            continue
        if len(fit) < len(stages):
            others = [label for label, family in stages if label not in fit]
            said.append(
                f"{lora.name} is {_a(lora.family_label)} LoRA: only {', '.join(fit)} get it, "
                f"not {', '.join(others)}."
            )
        if entry.missing_on:
            said.append(f"{lora.name} is only on {', '.join(entry.nodes)}: its jobs go there only.")
        kept.append(lora)
    return tuple(kept), said


def _label(family: str) -> str:
    return FAMILY_LABELS.get(family, family)


def _a(label: str | None) -> str:
    """'an SD1.5', 'an SDXL', 'a Flux': the article as the label is spoken."""
    text = label or "unknown"
    return f"{'an' if text[:1] in 'AEIOSU' else 'a'} {text}"
