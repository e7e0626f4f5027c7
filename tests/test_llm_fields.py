"""Field-level pieces of the refinement: routing feedback to fields, and the new subject rule."""

from __future__ import annotations

from imgen_tui.llm.changes import Changes
from imgen_tui.llm.field_changes import refuse_locked, route
from imgen_tui.llm.fields import ConceptField
from imgen_tui.llm.rules import engineer, interpret

FIELDS = [
    ConceptField("subject", "a red fox", aliases=("it",)),
    ConceptField("background", "snowy forest", noun="background"),
    ConceptField("mood", "calm"),
    ConceptField("lighting", "soft", noun="lighting"),
]


def test_a_new_subject_replaces_the_first_term_not_appended_as_a_cat_it() -> None:
    for feedback in ("make it a cat instead", "turn it into a cat"):
        changes = interpret(feedback).changes
        assert changes.modify == {"it": "a cat"}
        assert engineer("a red fox, in the snow", changes) == "a cat, in the snow"
    assert interpret("make it a bit darker").not_understood == ["make it a bit darker"]


def test_each_phrase_goes_to_the_field_it_is_about() -> None:
    changes = Changes(
        modify={"it": "a cat", "background": "a beach", "colours": "warm"},
        remove=["calm"],
        add=["rim lighting", "fog"],
        keep=["red fox"],
        emphasis_up=["snowy"],
    )
    found = route(changes, FIELDS, catch_all="mood")
    assert found.fields["subject"].modify == {"subject": "a cat"}
    assert found.fields["subject"].keep == ["red fox"]
    assert found.fields["background"].modify == {"background": "a beach"}
    assert found.fields["background"].emphasis_up == ["snowy"]
    assert found.fields["lighting"].add == ["rim lighting"]  # it names the lighting field
    assert found.fields["mood"].add == ["warm colours", "fog"]  # no field named: the catch-all
    assert found.fields["mood"].remove == ["calm"]


def test_a_locked_catch_all_sends_new_phrases_to_the_last_unlocked_field() -> None:
    fields = [*FIELDS[:2], ConceptField("mood", "calm", locked=True), FIELDS[3]]
    found = route(Changes(add=["fog"]), fields, catch_all="mood")
    assert found.fields["lighting"].add == ["fog"]
    assert refuse_locked(found, fields) == []
