"""The concept builder's refine panel: feedback → the stages → the new field values.

Like the funnel's panel it draws each stage as it starts and finishes; the
result is shown per field — what changed, what a lock refused and why — and
enter (with the feedback unchanged) makes the next round from those fields.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from imgen_tui.llm.field_refine import FieldRefinement
from imgen_tui.llm.ollama_stages import LlmError
from imgen_tui.llm.pipeline import StageListener
from imgen_tui.ui.screens.refine import describe_stages

FieldRefiner = Callable[[str, StageListener], Awaitable[FieldRefinement]]
ASKING = "enter: run the stages   escape: cancel"
READY = "enter: make the next round with these fields   edit the feedback to run again"


class ConceptRefineScreen(ModalScreen[FieldRefinement | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="concept_refine.cancel")]

    def __init__(self, refiner: FieldRefiner, *, looking_at: str = "") -> None:
        super().__init__()
        self.refiner = refiner
        self.looking_at = looking_at
        self.finished: list[tuple[str, str]] = []
        self.running: str | None = None
        self.result: FieldRefinement | None = None
        self.result_for = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Refine the unlocked fields: what should change?")
            if self.looking_at:
                yield Label(self.looking_at, classes="dim")
            yield Input(
                placeholder="e.g. make the mood eerie, change the background to a beach, more fog",
                id="refine-feedback",
            )
            yield Static("", id="refine-stages")
            yield Label(ASKING, id="refine-hint", classes="dim")

    def on_mount(self) -> None:
        self.query_one("#refine-feedback", Input).focus()

    @on(Input.Submitted, "#refine-feedback")
    def _submitted(self, event: Input.Submitted) -> None:
        feedback = event.value.strip()
        if self.result is not None and feedback == self.result_for:
            self.dismiss(self.result)
            return
        if not feedback:
            self.notify("Say what should change first.", severity="warning")
            return
        self.run_worker(self._run(feedback), group="refine", exclusive=True)

    async def _run(self, feedback: str) -> None:
        self.finished, self.running, self.result = [], None, None
        try:
            result = await self.refiner(feedback, self._heard)
        except (LlmError, ValueError) as error:
            self.running = None
            self._show(problem=str(error))
            self.notify(str(error), severity="error", timeout=12)
            return
        self.result, self.result_for = result, feedback
        self._show()
        self.query_one("#refine-hint", Label).update(READY)

    def _heard(self, stage: str, output: str | None) -> None:
        if output is None:
            self.running = stage
        else:
            self.finished.append((stage, output))
            self.running = None
        self._show()

    def _show(self, problem: str = "") -> None:
        text = describe_stages(self.finished, self.running)
        if self.result is not None:
            text.append_text(describe_fields(self.result))
        if problem:
            text.append(problem, style="red")
        self.query_one("#refine-stages", Static).update(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


def describe_fields(result: FieldRefinement) -> Text:
    """The fields after refinement, changed ones marked; then refusals and notices."""
    text = Text()
    path = "local LLM" if result.path == "llm" else "offline rules"
    text.append(f"ran: {path}\n", style="bold")
    for name, value in result.texts.items():
        changed = name in result.changed
        text.append(f"{'→' if changed else ' '} {name}: ", style="bold" if changed else "dim")
        text.append((value or "—") + "\n", style="green" if changed else "dim")
    for refusal in result.refusals:
        text.append(f"refused: {refusal}\n", style="yellow")
    if result.notice:
        text.append(result.notice + "\n", style="yellow")
    if result.not_understood:
        text.append("not understood: " + "; ".join(result.not_understood) + "\n", style="red")
    return text
