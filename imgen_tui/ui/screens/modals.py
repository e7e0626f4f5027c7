"""Small modal dialogs: confirm a quit, ask for one line (a file path)."""

from __future__ import annotations

from typing import Any, Protocol

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Label

from imgen_tui.flows.rounds import RoundHistory


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question)
            yield Label("[b]y[/] yes   [b]n[/] no", classes="dim")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class AskLineScreen(ModalScreen[str | None]):
    """One line from the operator (a file path, a name); enter gives it, escape gives None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="ask_line.cancel")]

    def __init__(self, question: str, placeholder: str = "") -> None:
        super().__init__()
        self.question, self.placeholder = question, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question)
            yield Input(placeholder=self.placeholder, id="ask-line")
            yield Label("[b]enter[/] use it   [b]esc[/] cancel", classes="dim")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class RunningSession(Protocol):
    """What leaving a flow's screen asks of its session: what still runs, and how to stop it."""

    @property
    def history(self) -> RoundHistory: ...

    async def cancel_all(self) -> None: ...


def leave_cancelling(screen: Screen[Any], session: RunningSession | None) -> None:
    """Pop `screen`; with jobs still running, only once the operator agrees to cancel them.

    Every flow's screen leaves this way, so the question and what "yes" does are the same.
    """
    running = session.history.unfinished_jobs() if session else []
    if not running:
        screen.app.pop_screen()
        return

    async def decided(leave: bool | None) -> None:
        if leave and session is not None:
            await session.cancel_all()
            screen.app.pop_screen()

    screen.app.push_screen(
        ConfirmScreen(f"{len(running)} jobs are still running. Cancel them and leave?"), decided
    )
