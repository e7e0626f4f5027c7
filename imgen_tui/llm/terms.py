"""SD prompts as a list of weighted terms, in ComfyUI's syntax.

ComfyUI reads `(words:1.2)` as a weight and `(words)` as 1.1; it has no
`[words]` de-emphasis and no BREAK in core, so a weight below 1 is written
`(words:0.9)`. Commas separate terms; commas inside brackets do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WEIGHTED = re.compile(r"^\((?P<text>.+):(?P<weight>\d+(?:\.\d+)?)\)$", re.S)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Term:
    text: str
    weight: float = 1.0

    @property
    def key(self) -> str:
        return normalise(self.text)

    def render(self) -> str:
        if abs(self.weight - 1.0) < 1e-9:
            return self.text
        weight = f"{self.weight:.2f}".rstrip("0").rstrip(".")
        return f"({self.text}:{weight})"


def normalise(text: str) -> str:
    """How two phrases are compared: case, spacing and escaped brackets do not matter."""
    return _SPACES.sub(" ", text.replace("\\(", "(").replace("\\)", ")")).strip().lower()


def _split_top_level(prompt: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in prompt:
        if char in "([":
            depth += 1
        elif char in ")]" and depth:
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def parse_prompt(prompt: str) -> list[Term]:
    terms = []
    for part in _split_top_level(prompt):
        match = _WEIGHTED.match(part)
        if match:
            terms.append(Term(match["text"].strip(), float(match["weight"])))
        elif part.startswith("(") and part.endswith(")") and part.count("(") == 1:
            terms.append(Term(part[1:-1].strip(), 1.1))
        else:
            terms.append(Term(part))
    return terms


def render_prompt(terms: list[Term]) -> str:
    return ", ".join(term.render() for term in terms)


def mentions(haystack: str, needle: str) -> bool:
    """`needle` appears in `haystack` as whole words (both normalised)."""
    needle, haystack = normalise(needle), normalise(haystack)
    if not needle:
        return False
    return re.search(rf"(?<![\w]){re.escape(needle)}(?![\w])", haystack) is not None


_CONNECTORS = frozenset(
    [
        "a",
        "an",
        "the",
        "in",
        "on",
        "at",
        "with",
        "and",
        "of",
        "by",
        "under",
        "over",
        "near",
        "from",
        "to",
        "into",
        "during",
        "for",
    ]
)


def without(text: str, phrase: str) -> list[str]:
    """What is left of a term once a phrase is cut out: the pieces on either side.

    "a red fox in the snow" without "snow" is ["a red fox"], not nothing: in a
    natural-language term, dropping the whole term would lose what was asked
    to stay. Each piece is a run of the original words (so the check still
    finds where it came from), trimmed of the little words left dangling.
    """
    pieces = re.split(rf"(?<![\w]){re.escape(normalise(phrase))}(?![\w])", normalise(text))
    kept = []
    for piece in pieces:
        words = piece.replace(",", " ").split()
        while words and words[0] in _CONNECTORS:
            words.pop(0)
        while words and words[-1] in _CONNECTORS:
            words.pop()
        if words:
            kept.append(" ".join(words))
    return kept


def cut_out(terms: list[Term], phrases: list[str]) -> list[Term]:
    """Terms with every phrase cut out; a term that was only the phrase goes entirely."""
    for phrase in phrases:
        if not normalise(phrase):
            continue
        terms = [
            Term(piece, term.weight) if piece != term.key else term
            for term in terms
            for piece in (without(term.text, phrase) if mentions(term.text, phrase) else [term.key])
        ]
    return terms
