"""The LoRA stack carried into a flow, as chips on its round: one per LoRA, dropped with delete.

A chip takes focus (tab from the grid, or a click); `delete` takes its LoRA
out of the session's stack, so the next jobs are made without it. The text
says where the LoRA goes when it fits only some stages (an SD1.5 LoRA in the
funnel: its SD1.5 stage), so nothing about the stack is hidden.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Static

from imgen_tui.flows.round_session import RoundSession
from imgen_tui.flows.stacks import StackLora


class LoraChip(Static, can_focus=True):
    BINDINGS = [Binding("delete,backspace", "drop", "Drop LoRA", id="lorachip.drop")]
    DEFAULT_CSS = """
    LoraChip { width: auto; height: 1; padding: 0 1; margin-right: 1; background: $boost; }
    LoraChip:focus { background: $accent; color: $text; }
    """

    def __init__(self, index: int, lora: StackLora, text: str, **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self.index, self.lora, self.text = index, lora, text
        self.tooltip = f"{lora.name}: delete drops it from the next jobs"

    async def action_drop(self) -> None:
        await self.query_ancestor(LoraChips).drop(self)


def chip_text(lora: StackLora, stages: list[tuple[str, str]]) -> str:
    """'LoRA: detail-tweaker.safetensors 0.7' and, if it fits only some stages, which."""
    strengths = f"{lora.model:g}" if lora.model == lora.clip else f"{lora.model:g}/{lora.clip:g}"
    text = f"LoRA: {lora.name} {strengths}"
    fit = [label for label, family in stages if lora.fits(family)]
    if stages and len(fit) < len(stages):
        text += f" · {', '.join(fit) or 'no stage'} only"
    return text


class LoraChips(Horizontal):
    """One chip per carried LoRA; hidden while the stack is empty."""

    class Emptied(Message):
        """The last chip was dropped: the round view takes the focus back."""

    DEFAULT_CSS = """
    LoraChips { height: 1; display: none; }
    LoraChips.-active { display: block; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session: RoundSession | None = None

    def compose(self) -> ComposeResult:
        yield from ()

    @property
    def chip_list(self) -> list[LoraChip]:
        return list(self.query(LoraChip))

    def shows(self, session: RoundSession | None) -> bool:
        """Whether the chips are the session's stack as it is now (no repaint needed)."""
        stack = session.stack if session is not None else ()
        return self.session is session and tuple(c.lora for c in self.chip_list) == stack

    async def show(self, session: RoundSession | None, *, focus: int | None = None) -> None:
        self.session = session
        stack = session.stack if session is not None else ()
        stages = session.round_flow.sampling_stages() if session is not None else []
        await self.remove_children()
        chips = [LoraChip(i, lora, chip_text(lora, stages)) for i, lora in enumerate(stack)]
        await self.mount_all(chips)
        self.set_class(bool(chips), "-active")
        if focus is not None and chips:
            chips[min(focus, len(chips) - 1)].focus()

    async def drop(self, chip: LoraChip) -> None:
        if self.session is None:
            return
        dropped = await self.session.drop_lora(chip.index)
        left = self.session.stack
        await self.show(self.session, focus=chip.index if left else None)
        if not left:
            self.post_message(self.Emptied())
        self.notify(f"Dropped {dropped.name}: the next jobs are made without it.")
