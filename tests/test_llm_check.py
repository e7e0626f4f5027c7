"""The deterministic check after stage 2, and the offline rules, as properties and examples."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from imgen_tui.llm.changes import Changes
from imgen_tui.llm.check import check, repair
from imgen_tui.llm.rules import engineer, interpret
from imgen_tui.llm.terms import Term, mentions, parse_prompt, render_prompt

# Disjoint vocabularies, so "keep" and "remove" never name the same thing.
KEEP_WORDS = ["fox", "snow", "pose", "face", "tree", "girl"]
REMOVE_WORDS = ["sunny", "blurry", "forest", "crowd", "text"]
ADD_WORDS = ["neon", "rain", "city", "mist", "dusk"]
OTHER_WORDS = ["castle", "dragon", "sword", "ocean", "robot"]


def phrases(words: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(words), min_size=1, max_size=2, unique=True).map(" ".join)


weights = st.sampled_from([1.0, 1.0, 1.1, 1.2, 0.8])
old_terms = st.lists(
    st.builds(Term, phrases(KEEP_WORDS + REMOVE_WORDS), weights), min_size=1, max_size=6
)
changes = st.builds(
    Changes,
    keep=st.lists(phrases(KEEP_WORDS), max_size=3),
    remove=st.lists(phrases(REMOVE_WORDS), max_size=3),
    add=st.lists(phrases(ADD_WORDS), max_size=3),
    emphasis_up=st.lists(phrases(KEEP_WORDS + ADD_WORDS), max_size=2),
    emphasis_down=st.lists(phrases(KEEP_WORDS), max_size=2),
)
llm_output = st.lists(
    st.builds(Term, phrases(KEEP_WORDS + REMOVE_WORDS + ADD_WORDS + OTHER_WORDS), weights),
    max_size=8,
)


@given(old_terms, llm_output, changes, st.lists(phrases(REMOVE_WORDS), max_size=2))
def test_a_repaired_prompt_always_passes_the_check(
    old: list[Term], new: list[Term], wanted: Changes, avoid: list[str]
) -> None:
    old_prompt, new_prompt = render_prompt(old), render_prompt(new)
    repaired = repair(old_prompt, new_prompt, wanted, avoid=avoid)
    assert not check(old_prompt, repaired, wanted, avoid=avoid)


@given(old_terms, changes, st.lists(phrases(OTHER_WORDS), min_size=1, max_size=3))
def test_anything_outside_the_old_prompt_and_the_changes_is_flagged(
    old: list[Term], wanted: Changes, invented: list[str]
) -> None:
    old_prompt = render_prompt(old)
    new_prompt = render_prompt([*old, *(Term(phrase) for phrase in invented)])
    assert set(check(old_prompt, new_prompt, wanted).invented) >= set(invented)


@given(old_terms, changes)
def test_the_offline_engineer_obeys_the_check(old: list[Term], wanted: Changes) -> None:
    old_prompt = render_prompt(old)
    new_prompt = engineer(old_prompt, wanted)
    assert not check(old_prompt, new_prompt, wanted)
    for phrase in wanted.add:
        assert any(mentions(term.text, phrase) for term in parse_prompt(new_prompt))


@given(old_terms)
def test_prompts_survive_a_round_trip_through_terms(old: list[Term]) -> None:
    assert parse_prompt(render_prompt(old)) == old


def test_comfyui_weights_are_read_and_written() -> None:
    terms = parse_prompt("a fox, (snow:1.3), (detailed face), (blurry:0.8), (a, b:1.2)")
    assert terms == [
        Term("a fox"),
        Term("snow", 1.3),
        Term("detailed face", 1.1),
        Term("blurry", 0.8),
        Term("a, b", 1.2),
    ]
    assert (
        render_prompt(terms) == "a fox, (snow:1.3), (detailed face:1.1), (blurry:0.8), (a, b:1.2)"
    )


def test_the_seed_example_by_rules() -> None:
    prompt = "1girl, sitting cross-legged, forest background, sunny, detailed face"
    understood = interpret(
        "keep the pose, change the background to rainy city, no sunny, more neon reflections, "
        "and make it sing"
    )
    assert understood.changes.modify == {"background": "rainy city"}
    assert understood.changes.remove == ["sunny"]
    assert understood.changes.emphasis_up == ["neon reflections"]
    assert understood.not_understood == ["make it sing"]  # reported, not guessed
    new_prompt = engineer(prompt, understood.changes)
    assert new_prompt == (
        "1girl, sitting cross-legged, rainy city background, detailed face, (neon reflections:1.1)"
    )
    assert not check(prompt, new_prompt, understood.changes)


def test_emphasis_moves_weights_within_bounds() -> None:
    up = Changes(emphasis_up=["snow"], emphasis_down=["fox"])
    assert engineer("fox, (snow:1.45)", up) == "(fox:0.9), (snow:1.5)"
    assert engineer("fox, snow", up, weights=False) == "fox, snow"  # Flux: no weights


def test_the_check_names_each_kind_of_violation() -> None:
    wanted = Changes(keep=["fox"], remove=["sunny"], add=["rain"])
    found = check("fox, sunny, snow", "sunny, snow, rain, dragon", wanted, avoid=["snow"])
    assert found.missing == ["fox"]
    assert found.present == ["sunny", "snow"]
    assert found.invented == ["dragon"]
    assert "invented dragon" in found.describe()


def test_a_removal_inside_a_sentence_keeps_the_rest_of_it() -> None:
    old = "a red fox in the snow at dusk, (fox fur:1.2)"
    changes = interpret("no snow").changes
    assert engineer(old, changes) == "red fox, dusk, (fox fur:1.2)"
    assert not check(old, engineer(old, changes), changes)
    # an LLM that left the removed word in: the repair cuts it out, not the whole term
    repaired = repair(old, "a red fox in the snow at dusk, (fox fur:1.2)", changes)
    assert repaired == "red fox, dusk, (fox fur:1.2)" and not check(old, repaired, changes)
