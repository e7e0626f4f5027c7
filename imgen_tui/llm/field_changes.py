"""Stage 1 at the field level: the Changes contract, once per field.

The LLM interpreter answers one `Changes` per field it means to touch
(constrained to the field names there are); the offline rules interpret the
feedback as one `Changes` and `route` sends each phrase to the field it is
about. Either way a change aimed at a locked field is refused here, before
any engineer sees it, and the refusal is said in words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from imgen_tui.llm.changes import Changes
from imgen_tui.llm.fields import ConceptField
from imgen_tui.llm.terms import mentions


@dataclass
class FieldChanges:
    """Changes per field name, and what applies to no field (removals still join the avoid list)."""

    fields: dict[str, Changes] = field(default_factory=dict)
    general: Changes = field(default_factory=Changes)

    def of(self, name: str) -> Changes:
        return self.fields.setdefault(name, Changes())

    def merged(self) -> Changes:
        """All of it as one `Changes`, for the session's intent document."""
        every = [*self.fields.values(), self.general]
        return Changes(
            keep=[p for c in every for p in c.keep],
            remove=[p for c in every for p in c.remove],
            add=[p for c in every for p in c.add],
            modify={k: v for c in every for k, v in c.modify.items()},
            emphasis_up=[p for c in every for p in c.emphasis_up],
            emphasis_down=[p for c in every for p in c.emphasis_down],
        )


def is_empty(changes: Changes, *, counting_keep: bool = True) -> bool:
    parts: list[object] = [changes.remove, changes.add, changes.modify]
    parts += [changes.emphasis_up, changes.emphasis_down]
    if counting_keep:
        parts.append(changes.keep)
    return not any(parts)


def asked(changes: Changes) -> list[str]:
    """What a change would do, in the operator's words (for a refusal)."""
    said = [f"'{v}'" for v in changes.modify.values()]
    said += [f"adding '{p}'" for p in changes.add]
    said += [f"removing '{p}'" for p in changes.remove]
    said += [f"more '{p}'" for p in changes.emphasis_up]
    said += [f"less '{p}'" for p in changes.emphasis_down]
    return said


def field_changes_model(names: Sequence[str]) -> type[BaseModel]:
    """Stage 1's answer schema: an optional `Changes` per field name, nothing else."""
    definitions: dict[str, Any] = {name: (Changes | None, None) for name in names}
    model: type[BaseModel] = create_model(
        "FieldChangesAnswer",
        __config__=ConfigDict(extra="forbid"),
        **definitions,
    )
    return model


def from_answer(answer: BaseModel) -> FieldChanges:
    found = FieldChanges()
    for name, value in answer:
        if isinstance(value, Changes) and not is_empty(value):
            found.fields[name] = value
    return found


def refuse_locked(
    found: FieldChanges, fields: Sequence[ConceptField], pinned: Iterable[str] = ()
) -> list[str]:
    """Drop every change to a locked field or a pinned phrase; returns the refusals, in words.

    A `keep` on a locked field is no change and is not refused.
    """
    refusals = []
    pins = [p for p in pinned if p.strip()]
    for each in fields:
        changes = found.fields.get(each.name)
        if changes is None:
            continue
        if each.locked and not is_empty(changes, counting_keep=False):
            refusals.append(
                f"{each.name} is locked: did not apply {', '.join(asked(changes))} "
                f"(unlock it to change it)"
            )
            found.fields[each.name] = Changes(keep=changes.keep)
            continue
        blocked = [p for p in changes.remove if any(mentions(pin, p) for pin in pins)]
        if blocked:
            refusals.append(f"pinned in the intent: kept {', '.join(blocked)} in {each.name}")
            found.fields[each.name] = changes.model_copy(
                update={"remove": [p for p in changes.remove if p not in blocked]}
            )
    return refusals


def _home_for_new(phrase: str, fields: Sequence[ConceptField], catch_all: str) -> ConceptField:
    """Where a phrase no field's text mentions goes: the field it names, else the catch-all."""
    named = next((f for f in fields if f.mentioned_in(phrase)), None)
    if named is not None:
        return named
    wanted = next((f for f in fields if f.name == catch_all), None)
    if wanted is not None and not wanted.locked:
        return wanted
    unlocked = [f for f in fields if not f.locked]
    return unlocked[-1] if unlocked else (wanted or fields[-1])


def route(changes: Changes, fields: Sequence[ConceptField], catch_all: str) -> FieldChanges:
    """The offline path: each phrase of one `Changes` to the field it is about.

    modify: the field the aspect names ("background", or "it" for the
    subject), or a new phrase "<value> <aspect>" for the catch-all field;
    keep, remove, emphasis: every field whose text mentions the phrase;
    add, and more of something no field has: the field the phrase names,
    else the catch-all (or the last unlocked field if that one is locked).
    """
    found = FieldChanges()
    if not fields:
        found.general = changes
        return found
    for aspect, value in changes.modify.items():
        target = next((f for f in fields if f.named_by(aspect)), None)
        if target is not None:
            found.of(target.name).modify[target.name] = value
        else:
            phrase = value if mentions(value, aspect) else f"{value} {aspect}"
            found.of(_home_for_new(phrase, fields, catch_all).name).add.append(phrase)
    for kind in ("keep", "remove", "emphasis_up", "emphasis_down"):
        for phrase in getattr(changes, kind):
            holders = [f for f in fields if mentions(f.text, phrase)]
            for holder in holders:
                getattr(found.of(holder.name), kind).append(phrase)
            if holders:
                continue
            if kind == "emphasis_up":
                home = _home_for_new(phrase, fields, catch_all)
                found.of(home.name).emphasis_up.append(phrase)
            else:
                getattr(found.general, kind).append(phrase)  # nothing has it: avoid list only
    for phrase in changes.add:
        found.of(_home_for_new(phrase, fields, catch_all).name).add.append(phrase)
    found.fields = {name: c for name, c in found.fields.items() if not is_empty(c)}
    return found
