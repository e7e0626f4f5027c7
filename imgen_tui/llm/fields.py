"""Structured fields (subject, pose, background…) and the prompt they compose into.

A field's text is itself a small prompt (terms, maybe weighted). Composing
puts the fields in their configured order (the subject first, where CLIP
reads most closely), gives a field its noun when the text does not already
say it ("rainy city" → "rainy city background"), and follows the family's
syntax from `families.py`: tags and ComfyUI weights for the SD families (with
Pony's and Illustrious's quality tags in front), one plain sentence without
weights for Flux. Every term of every field survives composition, which is
what lets the check prove that a locked field's terms are in the prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from imgen_tui.llm.families import quality_tags, uses_weights
from imgen_tui.llm.terms import Term, mentions, normalise, parse_prompt, render_prompt


@dataclass(frozen=True)
class ConceptField:
    """One field as the refinement sees it: its words, whether it is locked, what names it."""

    name: str
    text: str = ""
    locked: bool = False
    noun: str | None = None  # "background": appended when the text does not say it
    aliases: tuple[str, ...] = ()  # other words feedback uses for it ("it" for the subject)

    def named_by(self, aspect: str) -> bool:
        """Does feedback about `aspect` ("the background", "it") mean this field?"""
        wanted = normalise(aspect).removeprefix("the ")
        names = {self.name, self.name.replace("_", " "), self.noun or "", *self.aliases}
        return wanted in {normalise(name) for name in names if name}

    def mentioned_in(self, phrase: str) -> bool:
        """Does a phrase name this field ("rim lighting" names the lighting field)?"""
        names = [self.name.replace("_", " "), self.noun or "", *self.aliases]
        return any(len(n) > 2 and mentions(phrase, n) for n in names if n)

    @property
    def terms(self) -> list[Term]:
        return parse_prompt(self.text)


def with_noun(field: ConceptField) -> list[Term]:
    """The field's terms, the first given the noun when no term says it already."""
    terms = field.terms
    if field.noun and terms and not any(mentions(t.text, field.noun) for t in terms):
        terms[0] = Term(f"{terms[0].text} {field.noun}", terms[0].weight)
    return terms


def compose(fields: Sequence[ConceptField], family: str) -> str:
    """The prompt for `family` from the fields, in order; empty fields are left out."""
    terms = [term for field in fields if field.text.strip() for term in with_noun(field)]
    if not uses_weights(family):
        words = [term.text for term in terms]
        if not words:
            return ""
        sentence = ", ".join(words)
        return sentence[0].upper() + sentence[1:] + "."
    tags = [Term(tag) for tag in quality_tags(family)]
    return render_prompt([*tags, *terms])


def locked_terms(fields: Iterable[ConceptField]) -> list[tuple[str, Term]]:
    """(field name, term) for every term of every locked field: what the check looks for."""
    return [(field.name, term) for field in fields if field.locked for term in field.terms]


def texts(fields: Iterable[ConceptField]) -> dict[str, str]:
    return {field.name: field.text for field in fields}
