"""No screen key is silently shadowed by the round view's keys (the grid has focus most of the time).

The round view's bindings sit on a widget inside the screen, so while the grid
has focus they win over the screen's own. A screen key on the same key is
dead there — the keyframe screen's `a` (add keyframe) was marking A/B instead.
The few shared keys that are meant are listed with the reason they work.
"""

from __future__ import annotations

from textual.binding import Binding

from imgen_tui.ui.app import binding_scopes
from imgen_tui.ui.widgets.round_view import ROUND_BINDINGS

SCREENS_WITH_ROUND_VIEW = (
    "FunnelScreen",
    "ConceptScreen",
    "ExplorerScreen",
    "WorkflowRunScreen",
    "KeyframesScreen",
)
MEANT = {
    # the same meaning: on the LoRA list it marks the LoRA, on the grid the picture
    ("explorer.mark", "round.mark"),
}


def round_keys() -> dict[str, str]:
    keys = {}
    for binding in ROUND_BINDINGS:
        assert isinstance(binding, Binding) and binding.id is not None
        for key in binding.key.split(","):
            keys[key] = binding.id
    return keys


def test_every_screen_with_a_round_view_has_its_round_keys_in_the_keymap_scopes() -> None:
    scopes = binding_scopes()
    for screen in SCREENS_WITH_ROUND_VIEW:
        ids = {binding.id for binding in scopes[screen]}
        assert "round.pick" in ids, screen  # so keys.yaml checks clashes there too


def test_no_screen_key_is_shadowed_by_the_round_view() -> None:
    shadowing = round_keys()
    clashes = {
        (binding.id, shadowing[key])
        for screen in SCREENS_WITH_ROUND_VIEW
        for binding in binding_scopes()[screen]
        if binding.id is not None and not binding.id.startswith("round.")
        for key in binding.key.split(",")
        if key in shadowing
    }
    assert clashes - MEANT == set()
    assert clashes >= MEANT  # a reason no longer needed is taken out of the list


def test_a_focused_reference_chip_shadows_no_screen_key() -> None:
    """The chips sit in the round view; while one has focus its keys win over the screen's.

    Only the round view's own keys are meant to give way (`+`/`-`, `enter`, `delete` act
    on the chip then): `<`/`>` would have stopped moving keyframes, `[`/`]` and `{`/`}`
    nudging the explorer's LoRA strengths.
    """
    from imgen_tui.ui.widgets.reference_chips import ReferenceChip

    chip_keys = {
        key: binding.id
        for binding in ReferenceChip.BINDINGS
        if isinstance(binding, Binding)
        for key in binding.key.split(",")
    }
    clashes = {
        (binding.id, chip_keys[key])
        for screen in SCREENS_WITH_ROUND_VIEW
        for binding in binding_scopes()[screen]
        if binding.id is not None and not binding.id.startswith("round.")
        for key in binding.key.split(",")
        if key in chip_keys
    }
    # the same meaning: delete removes what has focus, the keyframe or the reference
    assert clashes == {("keyframes.remove", "refchip.drop")}
