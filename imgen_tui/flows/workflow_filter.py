"""The browser's search box and its intent bar ("I want to… upscale"), by pattern matching.

Seed 004 asks for intent matching that is fast and predictable, no language
model: a phrase is matched against a short list of patterns, each naming the
media a workflow must take and give ("image to video": image in, video out).
A phrase no pattern knows is not an error: it falls back to a word search, so
typing "flux" or "lora" in the intent bar still narrows the list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

MEDIA = ("text", "image", "video", "audio")


class WorkflowFacts(Protocol):
    """What the filters read from a card; `WorkflowCard` has it, tests may build their own."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def inputs(self) -> tuple[str, ...]: ...
    @property
    def outputs(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Intent:
    """What the person wants, as media in and out (and a task where media cannot say it)."""

    label: str
    takes: str | None = None  # the medium the workflow must take besides text (None: only text)
    gives: str | None = None
    task: str | None = None

    def fits(self, facts: WorkflowFacts) -> bool:
        if self.task is not None and facts.task != self.task:
            return False
        if self.gives is not None and self.gives not in facts.outputs:
            return False
        if self.takes is None:
            return not set(facts.inputs) - {"text"}
        return self.takes in facts.inputs


#: (pattern, intent): the first pattern that matches wins, so the specific ones come first
_PATTERNS: tuple[tuple[str, Intent], ...] = (
    (
        r"\b(upscal\w*|enlarge|bigger|higher res\w*|hi-?res|super.?res\w*|sharpen)\b",
        Intent("upscale", takes="image", gives="image", task="upscale"),
    ),
    (
        r"\b(image|picture|photo|still)s?\s*(to|2|->|→|into)\s*(video|movie|clip|animation)\b"
        r"|\banimate\b|\bbring .* to life\b",
        Intent("image to video", takes="image", gives="video"),
    ),
    (
        r"\b(text|prompt)\s*(to|2|->|→)\s*(video|movie|clip)\b|\bvideo from (a )?(text|prompt)\b"
        r"|\b(make|generate|create) an? (video|clip|animation)\b",
        Intent("text to video", gives="video"),
    ),
    (
        r"\b(text|prompt)\s*(to|2|->|→)\s*(audio|music|speech|sound)\b|\b(music|song|speech|sound)\b",
        Intent("text to audio", gives="audio"),
    ),
    (
        r"\b(image|picture|photo)\s*(to|2|->|→)\s*(image|picture|photo)\b|\bimg2img\b"
        r"|\b(edit|restyle|repaint|change|vary|variations? of) (an? |my |this )?"
        r"(image|picture|photo)\b",
        Intent("image to image", takes="image", gives="image", task="img2img"),
    ),
    (
        r"\b(text|prompt)\s*(to|2|->|→)\s*(image|picture|photo)\b|\btxt2img\b"
        r"|\b(make|generate|create|draw|paint) an? (image|picture|photo|illustration)\b",
        Intent("text to image", gives="image", task="txt2img"),
    ),
)
#: the intent bar's ready-made choices, shown as chips
SUGGESTIONS = ("text to image", "image to image", "upscale", "image to video", "text to video")


def parse_intent(text: str) -> Intent | None:
    """The intent a phrase names, or None when no pattern knows it."""
    phrase = " ".join(text.lower().replace("i want to", " ").split())
    if not phrase:
        return None
    for pattern, intent in _PATTERNS:
        if re.search(pattern, phrase):
            return intent
    return None


def matches_search(query: str, facts: WorkflowFacts) -> bool:
    """Every word of the query is somewhere in the card (name, description, folder, family...)."""
    haystack = " ".join(
        [
            facts.name,
            facts.description,
            facts.category,
            facts.family,
            facts.task,
            *facts.inputs,
            *facts.outputs,
        ]
    ).lower()
    haystack += " " + haystack.replace("_", " ")
    return all(word in haystack for word in query.lower().split())


F = TypeVar("F", bound=WorkflowFacts)


def filter_workflows(
    cards: Iterable[F], *, search: str = "", intent_text: str = ""
) -> tuple[list[F], Intent | None]:
    """The cards both boxes let through, and the intent understood (None: word search)."""
    intent = parse_intent(intent_text)
    kept: list[F] = []
    for card in cards:
        if search.strip() and not matches_search(search, card):
            continue
        if intent is not None:
            if not intent.fits(card):
                continue
        elif intent_text.strip() and not matches_search(
            intent_text.lower().replace("i want to", ""), card
        ):
            continue
        kept.append(card)
    return kept, intent


def describe_intent(intent: Intent | None, intent_text: str, shown: Sequence[object]) -> str:
    """The line under the intent bar: what it understood and how many workflows fit."""
    count = f"{len(shown)} workflow{'' if len(shown) == 1 else 's'}"
    if intent is not None:
        return f"I want to… {intent.label}: {count}"
    if intent_text.strip():
        return f"no intent recognised in {intent_text.strip()!r}; searching for its words: {count}"
    return f"{count} (try: {', '.join(SUGGESTIONS)})"
