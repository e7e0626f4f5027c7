"""The refine panel every flow opens with `r`: feedback, a style, the stages, then the result.

The panel only talks and shows: what a refinement needs from the session
(intent, pictures, the round's prompt or fields) is the flow's business,
handed in as `refiner`, and what the result looks like and what enter hands
back is the flow's `RefinePart`: the funnel's part shows the refined prompt
to edit (`PromptPart`), the concept builder's shows its fields, changed ones
marked (`concept_refine.FieldsPart`). The stages are drawn as they start and
finish, so a slow local model shows where it is.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

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

Result = TypeVar("Result")  # what the stages made: a prompt, a set of fields
Chosen = TypeVar("Chosen")  # what enter hands back to the flow
ResultIn = TypeVar("ResultIn", contravariant=True)
ChosenOut = TypeVar("ChosenOut", covariant=True)
Refiner = Callable[[str, EnhancementStyle | None, StageListener], Awaitable[Result]]

EDITING = "enter: generate with this prompt   shift+tab: change the feedback   escape: cancel"


@dataclass(frozen=True)
class RefinedPrompt:
    prompt: str
    negative: str


class RefinePart(Protocol[ResultIn, ChosenOut]):
    """A flow's part of the panel: how a result reads, and what enter makes of it."""

    @property
    def edits_prompt(self) -> bool:
        """True: the result is a prompt to edit, and enter on it hands it back."""
        ...

    @property
    def ready_hint(self) -> str: ...

    def describe(self, result: ResultIn) -> Text: ...

    def chosen(self, result: ResultIn, prompt: str) -> ChosenOut: ...


class PromptPart:
    """The funnel's part: the refined prompt, editable; enter makes the round with it."""

    edits_prompt = True
    ready_hint = EDITING

    def describe(self, result: Refinement) -> Text:
        return describe_outcome(result)

    def chosen(self, result: Refinement, prompt: str) -> RefinedPrompt:
        return RefinedPrompt(prompt, result.negative)


class RefineScreen(ModalScreen[Chosen | None], Generic[Result, Chosen]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="refine.cancel")]
    HELP = (
        '**Refine.** Say what should change, in words ("no people, more fog, keep the '
        'fox"), and press **enter**: the stages run (vision on the picked image, '
        "interpret, engineer, check) and the result comes back: a prompt to edit, or "
        "the concept builder's fields (locked ones never change). **enter** again makes "
        "the round with it (locked seeds kept); **shift+tab** reaches the enhancement "
        "style; **escape** leaves everything as it was."
    )

    def __init__(
        self,
        refiner: Refiner[Result],
        styles: dict[str, EnhancementStyle],
        part: RefinePart[Result, Chosen],
        *,
        title: str = "Refine: what should change?",
        looking_at: str = "",
        feedback: str = "",
        placeholder: str = "e.g. more fog, no people, keep the fox, change background to beach",
    ) -> None:
        super().__init__()
        self.refiner = refiner
        self.enhancement_styles = styles
        self.part = part
        self.title_text = title
        self.looking_at = looking_at
        self.feedback = feedback
        self.placeholder = placeholder
        self.finished: list[tuple[str, str]] = []
        self.running: str | None = None
        self.result: Result | None = None
        self.result_for = ""  # the feedback the result was made from

    @property
    def asking_hint(self) -> str:
        style = "   shift+tab: style" if self.enhancement_styles else ""
        return f"enter: run the stages{style}   escape: cancel"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.title_text)
            if self.looking_at:
                yield Label(self.looking_at, classes="dim")
            if self.enhancement_styles:
                yield Select(
                    [(f"style: {name}", name) for name in self.enhancement_styles],
                    prompt="style: none",
                    id="refine-style",
                )
            yield Input(self.feedback, placeholder=self.placeholder, id="refine-feedback")
            yield Static("", id="refine-stages")
            if self.part.edits_prompt:
                yield Input(
                    placeholder="the refined prompt appears here", id="refine-prompt", disabled=True
                )
            yield Label(self.asking_hint, id="refine-hint", classes="dim")

    def on_mount(self) -> None:
        self.query_one("#refine-feedback", Input).focus()

    @on(Input.Submitted, "#refine-feedback")
    def _feedback_given(self, event: Input.Submitted) -> None:
        feedback = event.value.strip()
        if self.result is not None and not self.part.edits_prompt and feedback == self.result_for:
            self.dismiss(self.part.chosen(self.result, ""))  # enter again: take it
            return
        if not feedback:
            self.notify("Say what should change first.", severity="warning")
            return
        self.run_worker(self._run(feedback), group="refine", exclusive=True)

    @on(Input.Submitted, "#refine-prompt")
    def _prompt_accepted(self, event: Input.Submitted) -> None:
        if self.result is not None and event.value.strip():
            self.dismiss(self.part.chosen(self.result, event.value.strip()))

    async def _run(self, feedback: str) -> None:
        self.finished, self.running, self.result = [], None, None
        style = None
        if self.enhancement_styles:
            chosen = self.query_one("#refine-style", Select).value
            style = self.enhancement_styles.get(chosen) if isinstance(chosen, str) else None
        try:
            result = await self.refiner(feedback, style, self._heard)
        except (LlmError, ValueError) as error:
            self.running = None
            self._show(problem=str(error))
            self.notify(str(error), severity="error", timeout=12)
            return
        self.result, self.result_for = result, feedback
        self._show()
        if self.part.edits_prompt:
            prompt = self.query_one("#refine-prompt", Input)
            prompt.value = getattr(result, "prompt", "")
            prompt.disabled = False
            prompt.focus()
        self.query_one("#refine-hint", Label).update(self.part.ready_hint)

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
            text.append_text(self.part.describe(self.result))
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
