"""The offline path: explicit feedback applied by rules, no LLM needed.

With no Ollama reachable (or `--no-llm`, or the demo farm) the operator's
plain requests still work: "more X", "less X", "no Y" / "without Y" /
"remove Y", "keep Z", "add W" / "with W", "change the background to V"
(any aspect). Clauses are split on commas, semicolons and "and"; a clause no
rule understands is reported, never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from imgen_tui.llm.changes import Changes
from imgen_tui.llm.check import kept_phrases
from imgen_tui.llm.terms import Term, cut_out, mentions, parse_prompt, render_prompt

_CLAUSE_SPLIT = re.compile(r"\s*(?:[,;.]|\band\b|\bbut\b)\s*", re.I)
_THE = r"(?:the\s+)?"
_REST = r"(?P<phrase>.+)"
_ASPECT = r"(?P<aspect>[\w ]+?)"
_SUBJECT = r"it|him|her|them"
_NEW_SUBJECT = r"(?P<value>(?:a|an)\s+(?!bit\b|little\b|lot\b).+?)"
_INSTEAD = r"(?:\s+instead)?$"
_VALUE = rf"(?P<value>.+?){_INSTEAD}"
SUBJECT_WORDS = frozenset({"it", "him", "her", "them", "subject"})  # aspects that mean the subject
_RULES: list[tuple[str, str]] = [
    # "more like this" / "less like #5" point at an image: the picture (img2img,
    # the vision stage) carries that, the prompt's words do not change.
    (r"^(?:more|less)\s+like\s+(?:this|that|it|these|those|#?\d+)(?:\s+one)?$", "reference"),
    # "make it a cat (instead)": a new subject ("it"); without an article, "make it moodier"
    # is not this (and not understood).
    (rf"^(?:make|turn)\s+(?P<aspect>{_SUBJECT})\s+{_NEW_SUBJECT}{_INSTEAD}", "modify"),
    (rf"^(?:change|make|set|turn)\s+{_THE}{_ASPECT}\s+(?:to|into)\s+{_VALUE}", "modify"),
    (rf"^{_ASPECT}\s+should\s+be\s+(?P<value>.+)$", "modify"),
    (rf"^(?:keep|preserve|leave)\s+{_THE}(?P<phrase>.+?)(?:\s+as\s+(?:it\s+)?is)?$", "keep"),
    (rf"^(?:no|without|remove|drop|lose|get\s+rid\s+of)\s+{_THE}{_REST}$", "remove"),
    (rf"^(?:more|stronger|increase)\s+{_REST}$", "emphasis_up"),
    (rf"^(?:less|weaker|fewer|reduce)\s+{_REST}$", "emphasis_down"),
    (rf"^(?:add|with|include|put\s+in)\s+(?:a\s+|an\s+|some\s+)?{_REST}$", "add"),
]  # fmt: skip
_COMPILED = [(re.compile(pattern, re.I), kind) for pattern, kind in _RULES]
EMPHASIS_STEP = 0.1
MAX_WEIGHT, MIN_WEIGHT = 1.5, 0.5


@dataclass
class Interpretation:
    changes: Changes
    not_understood: list[str] = field(default_factory=list)


def interpret(feedback: str) -> Interpretation:
    """Stage 1 by rules."""
    changes = Changes()
    unknown: list[str] = []
    for clause in _CLAUSE_SPLIT.split(feedback.strip()):
        clause = clause.strip()
        if not clause:
            continue
        for pattern, kind in _COMPILED:
            match = pattern.match(clause)
            if match is None:
                continue
            if kind == "reference":
                pass
            elif kind == "modify":
                changes.modify[match["aspect"].strip().lower()] = match["value"].strip()
            else:
                getattr(changes, kind).append(match["phrase"].strip())
            break
        else:
            unknown.append(clause)
    return Interpretation(changes, unknown)


def engineer(prompt: str, changes: Changes, *, weights: bool = True) -> str:
    """Stage 2 by rules: apply the changes to the prompt's terms, inventing nothing.

    `weights=False` is for families that read natural language (Flux): emphasis
    then only adds a missing phrase instead of writing `(x:1.1)`.
    """
    terms = cut_out(parse_prompt(prompt), changes.remove)
    for aspect, value in changes.modify.items():
        if aspect in SUBJECT_WORDS and terms:  # the subject comes first in an SD prompt
            terms[0] = Term(value, terms[0].weight)
            continue
        replacement = value if mentions(value, aspect) else f"{value} {aspect}"
        hits = [i for i, t in enumerate(terms) if mentions(t.text, aspect)]
        if hits:
            first = hits[0]
            terms[first] = Term(replacement, terms[first].weight)
            terms = [t for i, t in enumerate(terms) if i not in hits[1:]]
        else:
            terms.append(Term(replacement))
    # A removal can take a kept phrase with it ("fox sunny" minus "sunny"): put it back.
    for phrase in [*changes.add, *kept_phrases(prompt, changes)]:
        if not any(mentions(t.text, phrase) for t in terms):
            terms.append(Term(phrase))
    for phrase, step in [(p, EMPHASIS_STEP) for p in changes.emphasis_up] + [
        (p, -EMPHASIS_STEP) for p in changes.emphasis_down
    ]:
        hits = [i for i, t in enumerate(terms) if mentions(t.text, phrase)]
        if not hits and step > 0:
            terms.append(Term(phrase, 1.0 + step if weights else 1.0))
            continue
        for i in hits if weights else []:
            weight = min(MAX_WEIGHT, max(MIN_WEIGHT, round(terms[i].weight + step, 2)))
            terms[i] = Term(terms[i].text, weight)
    return render_prompt(terms)
