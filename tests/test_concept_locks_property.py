"""For any fields, locks and changes, locked fields survive compose + refine: the check proves it."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from imgen_tui.llm.changes import Changes
from imgen_tui.llm.check import check_locks
from imgen_tui.llm.families import uses_weights
from imgen_tui.llm.field_changes import FieldChanges, is_empty, route
from imgen_tui.llm.field_refine import rules_proposal, settle
from imgen_tui.llm.fields import ConceptField, compose, texts
from imgen_tui.llm.terms import Term, render_prompt

WORDS = ["fox", "red", "cat", "forest", "snow", "rainy", "city", "neon", "soft", "calm"]
WORDS += ["dark", "oil", "painting", "sitting", "gold", "lighting", "background", "it"]
SHAPES = [  # the shipped fields' names, nouns and aliases
    ("subject", None, ("it", "him", "her", "them")),
    ("pose", None, ("posture",)),
    ("background", "background", ("setting", "scene")),
    ("style", None, ("medium",)),
    ("mood", None, ("atmosphere",)),
    ("lighting", "lighting", ("light",)),
]
FAMILIES = ["sdxl", "sd15", "pony", "flux"]

phrases = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
terms = st.builds(Term, phrases, st.sampled_from([1.0, 1.0, 1.1, 1.2, 0.8]))
field_texts = st.lists(terms, max_size=3).map(render_prompt)
phrase_lists = st.lists(phrases, max_size=3)
changes = st.builds(
    Changes,
    keep=phrase_lists,
    remove=phrase_lists,
    add=phrase_lists,
    modify=st.dictionaries(st.sampled_from([*WORDS, *(s[0] for s in SHAPES)]), phrases, max_size=2),
    emphasis_up=phrase_lists,
    emphasis_down=phrase_lists,
)


@st.composite
def concepts(draw: st.DrawFn) -> list[ConceptField]:
    return [
        ConceptField(name, draw(field_texts), draw(st.booleans()), noun, aliases)
        for name, noun, aliases in SHAPES
    ]


def assert_locks_survive(
    fields: list[ConceptField], settled_texts: dict[str, str], prompt: str, family: str
) -> None:
    locked = [f.name for f in fields if f.locked]
    for name in locked:
        assert settled_texts[name] == texts(fields)[name]
    final = [replace(f, text=settled_texts[f.name]) for f in fields]
    assert prompt == compose(final, family)
    proof = check_locks(texts(fields), settled_texts, locked, prompt, weights=uses_weights(family))
    assert not proof, proof.describe()


@settings(max_examples=300, deadline=None)
@given(
    concepts(),
    st.dictionaries(st.sampled_from([s[0] for s in SHAPES]), changes),
    st.dictionaries(st.sampled_from([s[0] for s in SHAPES]), field_texts),
    st.sampled_from(FAMILIES),
)
def test_whatever_the_engineer_proposes_locked_fields_come_back_identical(
    fields: list[ConceptField],
    per_field: dict[str, Changes],
    proposed: dict[str, str],
    family: str,
) -> None:
    settled = settle(fields, proposed, FieldChanges(per_field), family=family)
    assert_locks_survive(fields, settled.texts, settled.prompt, family)


@settings(max_examples=300, deadline=None)
@given(concepts(), changes, st.sampled_from(FAMILIES), st.lists(phrases, max_size=2))
def test_offline_rules_refine_only_unlocked_fields(
    fields: list[ConceptField], asked: Changes, family: str, pinned: list[str]
) -> None:
    found, refusals, proposed = rules_proposal(
        asked, fields, family=family, catch_all="mood", pinned=pinned
    )
    assert not set(proposed) & {f.name for f in fields if f.locked}  # never even proposed
    settled = settle(fields, proposed, found, family=family)
    assert_locks_survive(fields, settled.texts, settled.prompt, family)
    routed = route(asked, fields, "mood")
    for each in fields:  # a change aimed at a locked field is dropped, and said
        own = found.fields.get(each.name)
        if each.locked and own is not None:
            assert is_empty(own, counting_keep=False)
        if each.locked and not is_empty(
            routed.fields.get(each.name, Changes()), counting_keep=False
        ):
            assert any(r.startswith(f"{each.name} is locked: did not apply") for r in refusals)
