"""The session's pinned references as chips on the round: kind and strength, nudged or dropped.

A chip takes focus (tab, or a click); then `+`/`-` (or `]`/`[`) change its
strength a step and `delete` drops it. What changes is the session's intent
document, through `ReferencePins`, so the next round is made with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Static

from imgen_tui.flows.reference_pins import ReferencePins
from imgen_tui.graphs.reference_pin import PinnedReference


class ReferenceChip(Static, can_focus=True):
    BINDINGS = [
        Binding(
            "plus,equals_sign,right_square_bracket",
            "nudge(1)",
            "Stronger",
            id="refchip.stronger",
        ),
        Binding("minus,left_square_bracket", "nudge(-1)", "Weaker", id="refchip.weaker"),
        Binding("delete,backspace", "drop", "Drop reference", id="refchip.drop"),
    ]
    DEFAULT_CSS = """
    ReferenceChip { width: auto; height: 1; padding: 0 1; margin-right: 1; background: $boost; }
    ReferenceChip:focus { background: $accent; color: $text; }
    """

    def __init__(self, index: int, pin: PinnedReference, **kwargs: Any) -> None:
        super().__init__(self.text_for(pin), **kwargs)
        self.index, self.pin = index, pin
        self.tooltip = pin.path

    @staticmethod
    def text_for(pin: PinnedReference) -> str:
        return f"{pin.kind} {pin.strength:.1f} · {Path(pin.path).name}"

    @property
    def chips(self) -> ReferenceChips:
        return self.query_ancestor(ReferenceChips)

    async def action_nudge(self, steps: int) -> None:
        await self.chips.nudge(self, steps)

    async def action_drop(self) -> None:
        await self.chips.drop(self)


class ReferenceChips(Horizontal):
    """One chip per pinned reference; hidden while there are none."""

    class Emptied(Message):
        """The last chip was dropped: the round view takes the focus back."""

    DEFAULT_CSS = """
    ReferenceChips { height: 1; display: none; }
    ReferenceChips.-active { display: block; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pins: ReferencePins | None = None

    def compose(self) -> ComposeResult:
        yield from ()

    @property
    def chip_list(self) -> list[ReferenceChip]:
        return list(self.query(ReferenceChip))

    async def show(self, pins: ReferencePins | None, *, focus: int | None = None) -> None:
        """Repaint from the session's pins; `focus` keeps a chip focused after a change."""
        self.pins = pins
        current = pins.pins if pins is not None else []
        await self.remove_children()
        chips = [ReferenceChip(i, pin) for i, pin in enumerate(current)]
        await self.mount_all(chips)
        self.set_class(bool(chips), "-active")
        if focus is not None and chips:
            chips[min(focus, len(chips) - 1)].focus()

    async def nudge(self, chip: ReferenceChip, steps: int) -> None:
        if self.pins is None:
            return
        changed = await self.pins.nudge(chip.index, steps)
        chip.pin = changed
        chip.update(chip.text_for(changed))
        self.notify(
            f"{changed.kind.capitalize()} strength {changed.strength:.1f} from the next round"
        )

    async def drop(self, chip: ReferenceChip) -> None:
        if self.pins is None:
            return
        dropped = await self.pins.drop(chip.index)
        await self.show(self.pins, focus=chip.index if self.pins.pins else None)
        if not self.pins.pins:
            self.post_message(self.Emptied())
        self.notify(f"No longer keeping the {dropped.kind} of {Path(dropped.path).name}")
