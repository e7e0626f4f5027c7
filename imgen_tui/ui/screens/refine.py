"""The refine panel (`r`, and `M` for more like this): feedback, a style, the stages, the prompt.

The panel only talks and shows: what a refinement needs from the session
(intent, pictures, the round's prompt) is the funnel's business, handed in
as `refiner`. The stages are drawn as they start and finish, so a slow local
model shows where it is; the result is an editable prompt, and enter hands
it back to the funnel to generate.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from imgen_tui.llm.config import EnhancementStyle
from imgen_tui.llm.ollama_stages import LlmError
from imgen_tui.llm.pipeline import Refinement, StageListener

Refiner = Callable[[str, EnhancementStyle | None, StageListener], Awaitable[Refinement]]

ASKING = "enter: run the stages   shift+tab: style   escape: cancel"
EDITING = "enter: generate with this prompt   shift+tab: change the feedback   escape: cancel"


@dataclass(frozen=True)
class RefinedPrompt:
    prompt: str
    negative: str


class RefineScreen(ModalScreen[RefinedPrompt | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="refine.cancel")]
    HELP = (
        '**Refine.** Say what should change, in words ("no people, more fog, keep the '
        'fox"), and press **enter**: the stages run (vision on the picked image, '
        "interpret, engineer, check) and the new prompt comes back to edit. "
        "**enter** again makes the round with it (locked seeds kept); **shift+tab** "
        "reaches the enhancement style; **escape** leaves the prompt as it was."
    )

    def __init__(
        self,
        refiner: Refiner,
        styles: dict[str, EnhancementStyle],
        *,
        title: str = "Refine: what should change?",
        looking_at: str = "",
        feedback: str = "",
    ) -> None:
        super().__init__()
        self.refiner = refiner
        self.enhancement_styles = styles
        self.title_text = title
        self.looking_at = looking_at
        self.feedback = feedback
        self.finished: list[tuple[str, str]] = []
        self.running: str | None = None
        self.result: Refinement | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.title_text)
            if self.looking_at:
                yield Label(self.looking_at, classes="dim")
            yield Select(
                [(f"style: {name}", name) for name in self.enhancement_styles],
                prompt="style: none",
                id="refine-style",
            )
            yield Input(
                self.feedback,
                placeholder="e.g. more fog, no people, keep the fox, change background to beach",
                id="refine-feedback",
            )
            yield Static("", id="refine-stages")
            yield Input(
                placeholder="the refined prompt appears here", id="refine-prompt", disabled=True
            )
            yield Label(ASKING, id="refine-hint", classes="dim")

    def on_mount(self) -> None:
        self.query_one("#refine-feedback", Input).focus()

    @on(Input.Submitted, "#refine-feedback")
    def _feedback_given(self, event: Input.Submitted) -> None:
        feedback = event.value.strip()
        if not feedback:
            self.notify("Say what should change first.", severity="warning")
            return
        self.run_worker(self._run(feedback), group="refine", exclusive=True)

    @on(Input.Submitted, "#refine-prompt")
    def _prompt_accepted(self, event: Input.Submitted) -> None:
        if self.result is not None and event.value.strip():
            self.dismiss(RefinedPrompt(event.value.strip(), self.result.negative))

    async def _run(self, feedback: str) -> None:
        self.finished, self.running, self.result = [], None, None
        chosen = self.query_one("#refine-style", Select).value
        style = self.enhancement_styles.get(chosen) if isinstance(chosen, str) else None
        try:
            result = await self.refiner(feedback, style, self._heard)
        except LlmError as error:
            self.running = None
            self._show(problem=str(error))
            self.notify(str(error), severity="error", timeout=12)
            return
        self.result = result
        self._show()
        prompt = self.query_one("#refine-prompt", Input)
        prompt.value = result.prompt
        prompt.disabled = False
        prompt.focus()
        self.query_one("#refine-hint", Label).update(EDITING)

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
            text.append_text(describe_outcome(self.result))
        if problem:
            text.append(problem, style="red")
        self.query_one("#refine-stages", Static).update(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


def readable(output: str) -> str:
    """A stage's JSON answer as a person reads it: `keep: a fox; add: fog`."""
    try:
        value = json.loads(output)
    except ValueError:
        return output
    if not isinstance(value, dict):
        return output
    parts = []
    for key, item in value.items():
        if item in (None, "", [], {}):
            continue
        shown = ", ".join(str(i) for i in item) if isinstance(item, list) else str(item)
        parts.append(f"{key.replace('_', ' ')}: {shown}")
    return "; ".join(parts) or "nothing to change"


def describe_stages(finished: list[tuple[str, str]], running: str | None) -> Text:
    text = Text()
    for stage, output in finished:
        if output.startswith("skipped"):
            text.append(f"· {stage}: ", style="bold dim")
            text.append(output + "\n", style="dim")
            continue
        text.append(f"✓ {stage}: ", style="bold")
        text.append(readable(output) + "\n", style="dim")
    if running is not None:
        text.append(f"… {running}: running\n", style="bold yellow")
    return text


def describe_outcome(result: Refinement) -> Text:
    """Which path ran, and what the operator should know (fallback, repairs, leftovers)."""
    text = Text()
    path = "local LLM" if result.path == "llm" else "offline rules"
    text.append(f"ran: {path}\n", style="bold")
    if result.notice:
        text.append(result.notice + "\n", style="yellow")
    if result.not_understood:
        text.append("not understood: " + "; ".join(result.not_understood) + "\n", style="red")
    return text
