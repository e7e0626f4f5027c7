"""Feedback → changes per field → new field texts → composed prompt → check.

The concept builder's refinement. Only unlocked fields change: stage 1's
changes to a locked field are refused (and the refusal reported), the
engineer never sees a locked field, and `settle` — deterministic, whoever
proposed the texts — puts every locked field back exactly as it was, checks
each changed field like a prompt (keeps kept, removals gone, nothing
invented; repaired otherwise), composes, and proves with `check_locks` that
each locked field is identical and its terms are in the prompt. Pinned
traits of the session's intent document are kept in whichever field has them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from imgen_tui.llm.changes import Changes
from imgen_tui.llm.check import check, check_locks, repair
from imgen_tui.llm.families import uses_weights
from imgen_tui.llm.field_changes import FieldChanges, is_empty, refuse_locked, route
from imgen_tui.llm.field_stages import FieldStages
from imgen_tui.llm.fields import ConceptField, compose, texts
from imgen_tui.llm.ollama_stages import LlmUnavailable, OllamaStages
from imgen_tui.llm.pipeline import Intent, StageListener, StageLog, look, negative_for
from imgen_tui.llm.rules import engineer, interpret
from imgen_tui.llm.terms import mentions


@dataclass
class FieldRefineRequest:
    feedback: str
    fields: list[ConceptField]
    family: str
    catch_all: str  # the field an added phrase goes to when it names no field
    negative: str = ""
    pinned: list[str] = field(default_factory=list)
    picked: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    picture: bytes | None = None
    rejected_picture: bytes | None = None


@dataclass
class Settled:
    texts: dict[str, str]
    prompt: str
    notes: list[str] = field(default_factory=list)  # what was repaired, and why


@dataclass
class FieldRefinement:
    path: Literal["llm", "rules"]
    texts: dict[str, str]  # every field's new text
    old_texts: dict[str, str]
    changes: FieldChanges
    prompt: str
    negative: str
    refusals: list[str] = field(default_factory=list)
    stages: list[tuple[str, str]] = field(default_factory=list)
    notice: str | None = None
    not_understood: list[str] = field(default_factory=list)

    @property
    def changed(self) -> list[str]:
        return [name for name, text in self.texts.items() if text != self.old_texts.get(name)]


def engineer_field(name: str, text: str, changes: Changes, *, weights: bool) -> str:
    """Stage 2 by rules for one field; `modify[name]` replaces the field's text first."""
    start = changes.modify.get(name, text)
    rest = changes.model_copy(
        update={"modify": {k: v for k, v in changes.modify.items() if k != name}}
    )
    return engineer(start, rest, weights=weights)


def keep_pins(found: FieldChanges, fields: Sequence[ConceptField], pinned: Sequence[str]) -> None:
    """A pinned trait is a keep for every field whose text has it."""
    for each in fields:
        for pin in pinned:
            if pin.strip() and mentions(each.text, pin):
                changes = found.of(each.name)
                if pin not in changes.keep:
                    changes.keep.append(pin)


def settle(
    fields: Sequence[ConceptField],
    proposed: Mapping[str, str],
    changes: FieldChanges,
    *,
    family: str,
    avoid: Sequence[str] = (),
) -> Settled:
    """The texts every field ends with, whatever the engineer proposed, and the checked prompt."""
    notes: list[str] = []
    settled: dict[str, str] = {}
    for each in fields:
        wanted = proposed.get(each.name, each.text)
        own = changes.fields.get(each.name, Changes())
        if each.locked or is_empty(own, counting_keep=False):
            if wanted != each.text:
                why = "is locked" if each.locked else "had no changes"
                notes.append(f"{each.name} {why}: its text was put back")
            settled[each.name] = each.text
            continue
        violations = check(each.text, wanted, own, avoid=avoid)
        if violations:
            wanted = repair(each.text, wanted, own, avoid=avoid)
            notes.append(f"{each.name}: the engineer {violations.describe()} (repaired)")
        settled[each.name] = wanted
    final = [replace(each, text=settled[each.name]) for each in fields]
    prompt = compose(final, family)
    locked = [each.name for each in fields if each.locked]
    proof = check_locks(texts(fields), settled, locked, prompt, weights=uses_weights(family))
    if proof:  # cannot happen while compose keeps every term; said, never hidden
        notes.append(f"lock check failed: {proof.describe()}")
    return Settled(settled, prompt, notes)


async def refine_fields(
    request: FieldRefineRequest,
    intent: Intent,
    stages: OllamaStages | None,
    on_stage: StageListener | None = None,
) -> FieldRefinement:
    log = StageLog(on_stage)
    notice = None if stages is not None else "offline rules (no LLM configured)"
    path: Literal["llm", "rules"] = "rules"
    proposed: dict[str, str] | None = None
    not_understood: list[str] = []
    refusals: list[str] = []
    found = FieldChanges()
    if stages is not None:
        try:
            found, refusals, proposed, vision_problem = await _by_llm(request, intent, stages, log)
            path, notice = "llm", vision_problem
        except LlmUnavailable as error:
            notice = f"{error}: used the offline rules"
    if proposed is None:
        found, refusals, proposed, not_understood = _by_rules(request, log)
    log.running("check")
    settled = settle(request.fields, proposed, found, family=request.family, avoid=intent.avoid)
    locked = [f.name for f in request.fields if f.locked]
    passed = "passed: locked fields identical and in the prompt" if locked else "passed"
    log.finished("check", "; ".join(settled.notes) or passed)
    if settled.notes:
        repaired = "; ".join(settled.notes)
        notice = f"{notice}; {repaired}" if notice else repaired
    merged = found.merged()
    intent.learn(request.feedback, merged)
    keep = [*merged.keep, *(t.text for f in request.fields if f.locked for t in f.terms)]
    negative = negative_for(request.negative, intent.avoid, keep, request.family)
    return FieldRefinement(
        path,
        settled.texts,
        texts(request.fields),
        found,
        settled.prompt,
        negative,
        refusals=refusals,
        stages=log.done,
        notice=notice,
        not_understood=not_understood,
    )


def rules_proposal(
    changes: Changes,
    fields: Sequence[ConceptField],
    *,
    family: str,
    catch_all: str,
    pinned: Sequence[str] = (),
) -> tuple[FieldChanges, list[str], dict[str, str]]:
    """Stage 1's changes routed to fields, locked ones refused, stage 2 by rules.

    Returns the field changes, the refusals and the proposed texts (for `settle`).
    """
    found = route(changes, fields, catch_all)
    keep_pins(found, fields, pinned)
    refusals = refuse_locked(found, fields, pinned)
    weights = uses_weights(family)
    proposed = {
        f.name: engineer_field(f.name, f.text, found.fields[f.name], weights=weights)
        for f in fields
        if f.name in found.fields and not f.locked
    }
    return found, refusals, proposed


def _by_rules(
    request: FieldRefineRequest, log: StageLog
) -> tuple[FieldChanges, list[str], dict[str, str], list[str]]:
    if request.picture is not None:
        log.finished("vision (rules)", "skipped: the offline rules cannot look at images")
    log.running("interpret (rules)")
    understood = interpret(request.feedback)
    found, refusals, proposed = rules_proposal(
        understood.changes,
        request.fields,
        family=request.family,
        catch_all=request.catch_all,
        pinned=request.pinned,
    )
    log.finished("interpret (rules)", _describe(found, refusals))
    log.running("engineer (rules)")
    log.finished("engineer (rules)", _describe_texts(proposed))
    return found, refusals, proposed, understood.not_understood


async def _by_llm(
    request: FieldRefineRequest, intent: Intent, stages: OllamaStages, log: StageLog
) -> tuple[FieldChanges, list[str], dict[str, str], str | None]:
    per_field = FieldStages(stages)
    notes, vision_problem = await look(request.picture, request.rejected_picture, stages, log)
    log.running("interpret")
    found = await per_field.interpret(
        request.feedback,
        request.fields,
        history=intent.feedback,
        picked=request.picked,
        rejected=request.rejected,
        picture_notes=notes,
    )
    keep_pins(found, request.fields, request.pinned)
    refusals = refuse_locked(found, request.fields, request.pinned)
    log.finished("interpret", _describe(found, refusals))
    log.running("engineer")
    work = {
        f.name: (f.text, found.fields[f.name])
        for f in request.fields
        if not f.locked and not is_empty(found.fields.get(f.name, Changes()), counting_keep=False)
    }
    proposed = await per_field.engineer(
        work, family=request.family, avoid=intent.avoid, picture_notes=notes
    )
    log.finished("engineer", _describe_texts(proposed))
    return found, refusals, proposed, vision_problem


def _describe(found: FieldChanges, refusals: list[str]) -> str:
    parts = [
        f"{name}: {changes.model_dump_json(exclude_defaults=True)}"
        for name, changes in found.fields.items()
        if not is_empty(changes)
    ]
    return "; ".join([*parts, *(f"refused: {r}" for r in refusals)]) or "no changes"


def _describe_texts(proposed: Mapping[str, str]) -> str:
    return "; ".join(f"{name}: {text}" for name, text in proposed.items()) or "nothing to rewrite"
