"""Feedback → changes → prompt → check: the refinement the `r` key runs.

The LLM path (stages 1-3 on Ollama) is tried when configured; when nothing
answers it falls back to the offline rules and says so. Either way the new
prompt goes through the deterministic check, and is repaired (with the
repair reported) if the engineer kept what should go, lost a keep or
invented something. The session's intent document grows with each round:
the feedback, and an avoid list from what was removed, which later rounds
must respect.

Stage 3 (vision) runs first when a picture comes with the request, and its
description goes to stage 1 as well as stage 2: only stage 1's changes may
bring new words in (the check allows nothing else), so a trait of the picked
image reaches the prompt by being named as a change, visibly, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from imgen_tui.graphs.reference_pin import PinnedReference
from imgen_tui.llm.changes import Changes
from imgen_tui.llm.check import check, repair
from imgen_tui.llm.config import EnhancementStyle
from imgen_tui.llm.families import quality_tags, uses_weights
from imgen_tui.llm.ollama_stages import LlmError, LlmUnavailable, OllamaStages
from imgen_tui.llm.rules import engineer, interpret
from imgen_tui.llm.terms import Term, mentions, parse_prompt, render_prompt


class Intent(BaseModel):
    """The session's intent document (stored with the session, editable in the TUI)."""

    feedback: list[str] = Field(default_factory=list)
    preferences: list[str] = Field(default_factory=list)
    avoid: list[str] = Field(default_factory=list)
    pinned: list[str] = Field(default_factory=list)  # traits every refinement must keep
    #: pose / face / style references every round of the session is made with
    references: list[PinnedReference] = Field(default_factory=list)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Intent:
        return cls.model_validate(document) if document else cls()

    def learn(self, feedback: str, changes: Changes) -> None:
        self.feedback.append(feedback)
        kept = {phrase.lower() for phrase in changes.keep}
        for phrase in changes.remove:
            if phrase.lower() not in kept and phrase not in self.avoid:
                self.avoid.append(phrase)
        self.preferences = [p for p in self.preferences if p not in changes.remove]
        for phrase in changes.add:
            if phrase not in self.preferences:
                self.preferences.append(phrase)


@dataclass
class Refinement:
    path: Literal["llm", "rules"]
    prompt: str
    negative: str
    changes: Changes
    stages: list[tuple[str, str]] = field(default_factory=list)  # (stage, what it produced)
    notice: str | None = None  # why the rules ran, or what was repaired
    not_understood: list[str] = field(default_factory=list)


@dataclass
class RefineRequest:
    feedback: str
    prompt: str
    family: str
    negative: str = ""
    pinned: list[str] = field(default_factory=list)  # locked traits: must survive
    picked: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    style: EnhancementStyle | None = None
    picture: bytes | None = None  # the picked image (or the one looked at), for stage 3
    rejected_picture: bytes | None = None  # one rejected: stage 3 says what differs


StageListener = Callable[[str, str | None], None]
"""Told `(stage, None)` when a stage starts and `(stage, output)` when it is done."""


class StageLog:
    def __init__(self, listener: StageListener | None) -> None:
        self.done: list[tuple[str, str]] = []
        self.listener = listener

    def running(self, stage: str) -> None:
        if self.listener is not None:
            self.listener(stage, None)

    def finished(self, stage: str, output: str) -> None:
        self.done.append((stage, output))
        if self.listener is not None:
            self.listener(stage, output)


def _with_pins(changes: Changes, pinned: list[str]) -> Changes:
    keep = [*changes.keep, *(p for p in pinned if p not in changes.keep)]
    remove = [p for p in changes.remove if not any(mentions(pin, p) for pin in pinned)]
    return changes.model_copy(update={"keep": keep, "remove": remove})


def negative_for(negative: str, avoid: list[str], keep: list[str], family: str) -> str:
    """The avoid list joins the negative; nothing to keep may sit in it (an LLM put one there)."""
    if not uses_weights(family):
        return ""  # Flux has no negative prompt
    terms = [t for t in parse_prompt(negative) if not any(mentions(t.text, k) for k in keep)]
    terms += [Term(p) for p in avoid if not any(mentions(t.text, p) for t in terms)]
    return render_prompt(terms)


async def refine(
    request: RefineRequest,
    intent: Intent,
    stages: OllamaStages | None,
    on_stage: StageListener | None = None,
) -> Refinement:
    extra = [*quality_tags(request.family), *(request.style.tags if request.style else ())]
    log = StageLog(on_stage)
    result: Refinement | None = None
    notice = None if stages is not None else "offline rules (no LLM configured)"
    if stages is not None:
        try:
            result = await _by_llm(request, intent, stages, log)
        except LlmUnavailable as error:
            notice = f"{error}: used the offline rules"
    if result is None:
        result = _by_rules(request, log)
        result.notice = notice
    log.running("check")
    violations = check(
        request.prompt, result.prompt, result.changes, avoid=intent.avoid, extra_allowed=extra
    )
    if violations:
        result.prompt = repair(
            request.prompt, result.prompt, result.changes, avoid=intent.avoid, extra_allowed=extra
        )
        repaired = f"repaired: the engineer {violations.describe()}"
        result.notice = f"{result.notice}; {repaired}" if result.notice else repaired
        log.finished("check", repaired)
    else:
        log.finished("check", "passed: nothing invented, keeps kept, removals gone")
    result.stages = log.done
    intent.learn(request.feedback, result.changes)  # this round's removals are avoided too
    result.negative = negative_for(
        result.negative, intent.avoid, result.changes.keep, request.family
    )
    return result


def _by_rules(request: RefineRequest, log: StageLog) -> Refinement:
    if request.picture is not None:
        log.finished("vision (rules)", "skipped: the offline rules cannot look at images")
    log.running("interpret (rules)")
    understood = interpret(request.feedback)
    changes = _with_pins(understood.changes, request.pinned)
    log.finished("interpret (rules)", changes.model_dump_json())
    log.running("engineer (rules)")
    styled = changes.model_copy(  # the style's tags are added like any asked-for phrase
        update={"add": [*changes.add, *(request.style.tags if request.style else ())]}
    )
    new_prompt = engineer(request.prompt, styled, weights=uses_weights(request.family))
    log.finished("engineer (rules)", new_prompt)
    return Refinement(
        "rules",
        new_prompt,
        request.negative,
        changes,
        not_understood=understood.not_understood,
    )


async def _by_llm(
    request: RefineRequest, intent: Intent, stages: OllamaStages, log: StageLog
) -> Refinement:
    notes, vision_problem = await look(request.picture, request.rejected_picture, stages, log)
    log.running("interpret")
    found = await stages.interpret(
        request.feedback,
        request.prompt,
        history=intent.feedback,
        picked=request.picked,
        rejected=request.rejected,
        picture_notes=notes,
    )
    changes = _with_pins(found, request.pinned)
    log.finished("interpret", changes.model_dump_json())
    log.running("engineer")
    engineered = await stages.engineer(
        request.prompt,
        changes,
        family=request.family,
        avoid=intent.avoid,
        style=request.style.instructions if request.style else None,
        picture_notes=notes,
    )
    log.finished("engineer", engineered.prompt)
    negative = engineered.negative or request.negative
    return Refinement("llm", engineered.prompt, negative, changes, notice=vision_problem)


async def look(
    picture: bytes | None, rejected_picture: bytes | None, stages: OllamaStages, log: StageLog
) -> tuple[str | None, str | None]:
    """Stage 3 on the picked picture, and on a rejected one for the difference.

    Vision is optional: a model that cannot see is reported and the other
    stages run without it rather than the whole refinement failing.
    """
    if picture is None or not stages.config.vision.enabled:
        return None, None
    log.running("vision")
    try:
        notes = "the picked image: " + await stages.describe(
            picture, "What does this picture show?"
        )
        if rejected_picture is not None:
            notes += "; the rejected image: " + await stages.describe(
                rejected_picture, "What does this picture show?"
            )
    except LlmUnavailable:
        raise
    except LlmError as error:
        log.finished("vision", f"skipped: {error}")
        return None, f"vision skipped: {error}"
    log.finished("vision", notes)
    return notes, None
