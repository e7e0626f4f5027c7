"""The session's pinned references as chips on the round: kind, strength, window, nudged or dropped.

A chip takes focus (tab, or a click); then `+`/`-` change its
strength a step, `(`/`)` move where in the steps it starts, `9`/`0` where it
ends, and `delete` drops it. `enter` opens a pose's map once a job made it.
What changes is the session's intent document, through `ReferencePins`, so
the next round is made with it. These keys live on the focused chip only, so
they never shadow the round view's (the grid has no focus meanwhile).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Static

from imgen_tui.flows.reference_pins import ReferencePins
from imgen_tui.graphs.reference_pin import PinnedReference
from imgen_tui.ui.screens.reference_map import ReferenceMapScreen


class ReferenceChip(Static, can_focus=True):
    BINDINGS = [
        # (not `[`/`]` too: on the explorer they nudge the LoRA's model strength)
        Binding("plus,equals_sign", "nudge(1)", "Stronger", id="refchip.stronger"),
        Binding("minus", "nudge(-1)", "Weaker", id="refchip.weaker"),
        # start on ( ), end on the same keys unshifted, 9 0: `<`/`>` are the keyframe
        # screen's and `{`/`}` the explorer's, and a focused chip would shadow them
        Binding(
            "left_parenthesis", "nudge(-1, 'start')", "Start earlier", id="refchip.start_earlier"
        ),
        Binding("right_parenthesis", "nudge(1, 'start')", "Start later", id="refchip.start_later"),
        Binding("9", "nudge(-1, 'end')", "End earlier", id="refchip.end_earlier"),
        Binding("0", "nudge(1, 'end')", "End later", id="refchip.end_later"),
        Binding("enter", "open_map", "Show map", id="refchip.map"),
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
        """E.g. "pose 0.8 · 0-100% · map · fox.png" or "style 0.8 · 0-100% · via img2img · ..."."""
        parts = [f"{pin.kind} {pin.strength:.1f}", pin.window()]
        if pin.map_path:
            parts.append("map")
        if pin.via:
            parts.append(f"via {pin.via}")
        return " · ".join([*parts, Path(pin.path).name])

    @property
    def chips(self) -> ReferenceChips:
        return self.query_ancestor(ReferenceChips)

    async def action_nudge(
        self, steps: int, what: Literal["strength", "start", "end"] = "strength"
    ) -> None:
        await self.chips.nudge(self, steps, what)

    def action_open_map(self) -> None:
        if not self.pin.map_path:
            if self.pin.kind in ("pose", "depth"):
                said = (
                    f"No map for this {self.pin.kind} yet: it is kept once a node with "
                    "comfyui_controlnet_aux has preprocessed it."
                )
            else:
                said = f"A {self.pin.kind} reference has no map: only pose and depth make one."
            self.notify(said, severity="warning")
            return
        self.app.push_screen(ReferenceMapScreen(self.pin))

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

    async def nudge(
        self,
        chip: ReferenceChip,
        steps: int,
        what: Literal["strength", "start", "end"] = "strength",
    ) -> None:
        if self.pins is None:
            return
        before = chip.pin
        changed = await self.pins.nudge(chip.index, steps, what)
        chip.pin = changed
        chip.update(chip.text_for(changed))
        if what == "strength":
            said = f"strength {changed.strength:.1f}"
        else:
            said = f"acts over {changed.window()} of the steps"
        if changed == before:
            said += f" (the {what} is at its limit)"
        self.notify(f"{changed.kind.capitalize()} {said} from the next round")

    def refresh_texts(self) -> None:
        """Repaint the chips' words from the pins (a job found a pose's map, or its style path)."""
        if self.pins is None:
            return
        for chip in self.chip_list:
            if chip.index < len(self.pins.pins):
                chip.pin = self.pins.pins[chip.index]
                chip.update(chip.text_for(chip.pin))

    async def drop(self, chip: ReferenceChip) -> None:
        if self.pins is None:
            return
        dropped = await self.pins.drop(chip.index)
        await self.show(self.pins, focus=chip.index if self.pins.pins else None)
        if not self.pins.pins:
            self.post_message(self.Emptied())
        self.notify(f"No longer keeping the {dropped.kind} of {Path(dropped.path).name}")
