"""The deterministic check after stage 2: the LLM may word things, never invent them.

Every `keep` phrase the old prompt had must survive, every `remove` and avoid phrase must be
gone, and every term of the new prompt must come from the old prompt or from
what the changes allow (added phrases, new values of modified aspects, the
family's quality tags). `repair` makes any prompt pass: it drops what was
invented or should be gone and puts back what had to be kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from imgen_tui.llm.changes import Changes
from imgen_tui.llm.terms import Term, cut_out, mentions, normalise, parse_prompt, render_prompt


@dataclass(frozen=True)
class Violations:
    missing: list[str] = field(default_factory=list)  # keep phrases that did not survive
    present: list[str] = field(default_factory=list)  # remove/avoid phrases still there
    invented: list[str] = field(default_factory=list)  # terms nobody asked for

    def __bool__(self) -> bool:
        return bool(self.missing or self.present or self.invented)

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append("dropped " + ", ".join(self.missing))
        if self.present:
            parts.append("kept what should go: " + ", ".join(self.present))
        if self.invented:
            parts.append("invented " + ", ".join(self.invented))
        return "; ".join(parts)


def _covered(term: Term, sources: Iterable[str]) -> bool:
    key = term.key
    return any(
        key == normalise(source) or mentions(source, key) or mentions(key, source)
        for source in sources
        if normalise(source)
    )


def _sources(old_prompt: str, changes: Changes, extra_allowed: Iterable[str]) -> list[str]:
    """Where every term of a new prompt must come from."""
    return [*(t.text for t in parse_prompt(old_prompt)), *changes.allowed_new(), *extra_allowed]


def kept_phrases(old_prompt: str, changes: Changes) -> list[str]:
    """The keep phrases that are in the old prompt: the ones that can survive."""
    old = parse_prompt(old_prompt)
    return [p for p in changes.keep if normalise(p) and any(mentions(t.text, p) for t in old)]


def _unwanted(changes: Changes, avoid: Iterable[str]) -> list[str]:
    keep = [normalise(phrase) for phrase in changes.keep]
    return [p for p in [*changes.remove, *avoid] if normalise(p) and normalise(p) not in keep]


def check(
    old_prompt: str,
    new_prompt: str,
    changes: Changes,
    *,
    avoid: Iterable[str] = (),
    extra_allowed: Iterable[str] = (),
) -> Violations:
    new_terms = parse_prompt(new_prompt)
    unwanted = _unwanted(changes, avoid)
    missing = [
        phrase
        for phrase in kept_phrases(old_prompt, changes)
        if not any(mentions(t.text, phrase) for t in new_terms)
    ]
    present = [p for p in unwanted if any(mentions(t.text, p) for t in new_terms)]
    sources = _sources(old_prompt, changes, extra_allowed)
    invented = [t.text for t in new_terms if not _covered(t, sources)]
    return Violations(missing, present, invented)


def repair(
    old_prompt: str,
    new_prompt: str,
    changes: Changes,
    *,
    avoid: Iterable[str] = (),
    extra_allowed: Iterable[str] = (),
) -> str:
    """The new prompt minus what breaks the rules, plus the keeps it lost.

    What should go is cut out of a term rather than dropping the term with it
    ("a red fox in the snow" without "snow" keeps "red fox").
    """
    unwanted = _unwanted(changes, avoid)
    sources = _sources(old_prompt, changes, extra_allowed)
    covered = [term for term in parse_prompt(new_prompt) if _covered(term, sources)]
    terms = [term for term in cut_out(covered, unwanted) if _covered(term, sources)]
    for phrase in kept_phrases(old_prompt, changes):
        if not any(mentions(t.text, phrase) for t in terms):
            terms.append(Term(phrase.strip()))
    return render_prompt(terms)


# -- the concept builder: locked fields --------------------------------------------------------


@dataclass(frozen=True)
class LockViolations:
    """What a refinement did to locked fields that it must not have."""

    changed: list[str] = field(default_factory=list)  # locked fields whose text differs
    missing: list[str] = field(default_factory=list)  # "field: term" absent from the prompt

    def __bool__(self) -> bool:
        return bool(self.changed or self.missing)

    def describe(self) -> str:
        parts = []
        if self.changed:
            parts.append("changed locked " + ", ".join(self.changed))
        if self.missing:
            parts.append("left out locked " + ", ".join(self.missing))
        return "; ".join(parts)


def check_locks(
    old_texts: Mapping[str, str],
    new_texts: Mapping[str, str],
    locked: Iterable[str],
    prompt: str,
    *,
    weights: bool = True,
) -> LockViolations:
    """A locked field's text is identical after refinement, and its terms are in the prompt.

    A term counts as present when a prompt term mentions it as whole words
    (composition may add the field's noun) and, where the family reads
    weights, with the same weight.
    """
    locked = list(locked)
    changed = [name for name in locked if new_texts.get(name, "") != old_texts.get(name, "")]
    prompt_terms = parse_prompt(prompt)
    missing = []
    for name in locked:
        for term in parse_prompt(old_texts.get(name, "")):
            if not any(
                mentions(t.text, term.text) and (not weights or abs(t.weight - term.weight) < 1e-9)
                for t in prompt_terms
            ):
                missing.append(f"{name}: {term.render()}")
    return LockViolations(changed, missing)
