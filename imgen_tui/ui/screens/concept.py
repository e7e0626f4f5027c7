"""The concept builder screen: the fields with their locks (~40 %), the round view (~60 %).

The screen is the form, the round history and this flow's keys; judging is
the shared `RoundView`, and every action that changes the session goes
through `ConceptSession`, the same code the tests drive without a terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Checkbox, Footer, Header, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from imgen_tui.flows.concept import ConceptBuilder, ConceptError
from imgen_tui.flows.concept_config import ConceptConfig, load_concept_config
from imgen_tui.flows.concept_session import ConceptSession
from imgen_tui.flows.rounds import Cell, Denoise, Round
from imgen_tui.llm.config import EnhancementStyle
from imgen_tui.llm.field_refine import FieldRefinement
from imgen_tui.llm.ollama_stages import LlmError
from imgen_tui.llm.pipeline import Intent, StageListener
from imgen_tui.scheduler.events import JobFailed
from imgen_tui.ui.messages import JobUpdate
from imgen_tui.ui.screens.concept_refine import PLACEHOLDER, TITLE, FieldsPart
from imgen_tui.ui.screens.intent import IntentScreen
from imgen_tui.ui.screens.modals import leave_cancelling
from imgen_tui.ui.screens.refine import RefineScreen
from imgen_tui.ui.widgets.node_strip import NodeStrip
from imgen_tui.ui.widgets.round_view import RoundView

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp

HINT = "fill in the fields and press enter: 4 variations beside the form"


class ConceptScreen(Screen[None]):
    DEFAULT_CSS = """
    ConceptScreen #concept-body { height: 1fr; }
    ConceptScreen #concept-form { width: 40%; padding: 0 1; }
    ConceptScreen #round { width: 60%; }
    ConceptScreen .field-row { height: 3; }
    ConceptScreen .field-label { width: 11; padding: 1 0 0 0; }
    ConceptScreen .field-row Input { width: 1fr; }
    ConceptScreen .field-row Checkbox { width: 14; }
    ConceptScreen #pins { height: auto; margin: 1 0 0 0; }
    ConceptScreen #rounds { height: 1fr; min-height: 4; }
    """
    BINDINGS = [
        Binding("n", "generate", "New round", id="concept.generate"),
        Binding("b", "back", "Back a round", id="concept.back"),
        Binding("d", "describe", "Describe into fields", id="concept.describe"),
        Binding("ctrl+l", "lock_field", "Lock field", id="concept.lock_field"),
        Binding("i", "intent", "Intent", id="concept.intent"),
        Binding("e,slash", "edit_fields", "Fields", show=False, id="concept.edit"),
        Binding("q", "leave", "Back/quit", id="concept.quit"),
    ]

    def __init__(self, resume: str | None = None, config: ConceptConfig | None = None) -> None:
        super().__init__()
        self.resume_id = resume
        self.config = config or load_concept_config()
        self.session: ConceptSession | None = None
        denoise = self.config.more_like_this
        self.denoise = Denoise(denoise.denoise, denoise.nudge)

    @property
    def imgen(self) -> ImgenApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="concept-body"):
            with VerticalScroll(id="concept-form"):
                for each in self.config.fields:
                    with Horizontal(classes="field-row"):
                        yield Label(each.title, classes="field-label")
                        yield Input(each.default, placeholder=each.hint, id=f"field-{each.name}")
                        yield Checkbox("lock", id=f"lock-{each.name}")
                yield Static("", id="pins")
                yield Label("Rounds", classes="heading")
                yield OptionList(id="rounds")
            yield RoundView(
                self.imgen.renderer,
                denoise=self.denoise,
                columns=2,
                page_size=6,
                hint=HINT,
                id="round",
            )
        yield NodeStrip(self.imgen.engine.scheduler, id="node-strip")
        yield Footer()

    async def on_mount(self) -> None:
        engine = self.imgen.engine
        assert engine.store is not None and engine.scheduler is not None
        builder = ConceptBuilder(self.config, self.imgen.library, engine.farm.models)
        self.session = ConceptSession(builder, engine.store, engine.scheduler)
        view = self.query_one(RoundView)
        view.actions = self.session
        view.label = "Round"
        if self.resume_id is not None:
            await self.session.reopen(self.resume_id)
            view.grid.focus()
        else:
            self.query_one(f"#field-{self.config.fields[0].name}", Input).focus()
        await self._repaint()

    # -- the form ---------------------------------------------------------------------------------

    def _pull_form(self) -> None:
        """The inputs' text into the builder (typing does not write the store per key)."""
        assert self.session is not None
        for each in self.config.fields:
            self.session.builder.set_field(
                each.name, self.query_one(f"#field-{each.name}", Input).value
            )

    def _push_form(self) -> None:
        assert self.session is not None
        builder = self.session.builder
        for each in self.config.fields:
            self.query_one(f"#field-{each.name}", Input).value = builder.values.get(each.name, "")
            self.query_one(f"#lock-{each.name}", Checkbox).value = each.name in builder.locked

    @on(Input.Submitted, ".field-row Input")
    async def _field_entered(self) -> None:
        await self.action_generate()

    @on(Checkbox.Changed)
    async def _lock_clicked(self, event: Checkbox.Changed) -> None:
        name = (event.checkbox.id or "").removeprefix("lock-")
        if self.session is None or (name in self.session.builder.locked) == event.value:
            return  # painted from the builder, not a click
        self._pull_form()
        await self.session.toggle_lock(name)
        await self._repaint_pins()

    async def action_lock_field(self) -> None:
        focused = self.focused
        if not isinstance(focused, Input) or not (focused.id or "").startswith("field-"):
            self.notify("Move to a field (tab) to lock it.")
            return
        box = self.query_one(f"#lock-{(focused.id or '').removeprefix('field-')}", Checkbox)
        box.value = not box.value

    def action_edit_fields(self) -> None:
        self.query_one(f"#field-{self.config.fields[0].name}", Input).focus()

    def key_escape(self) -> None:
        self.query_one(RoundView).grid.focus()

    # -- rounds -----------------------------------------------------------------------------------

    async def action_generate(self) -> None:
        if self.session is None:
            return
        self._pull_form()
        try:
            await self.session.generate()
        except ConceptError as error:
            self.notify(str(error), severity="warning")
            return
        view = self.query_one(RoundView)
        view.grid.cursor = 0
        view.grid.focus()
        await self._repaint()

    async def action_back(self) -> None:
        if self.session is None or await self.session.back() is None:
            self.notify("This is the first round.")
            return
        await self._repaint()

    @on(OptionList.OptionSelected, "#rounds")
    async def _round_chosen(self, event: OptionList.OptionSelected) -> None:
        if self.session is not None and event.option_index != self.session.builder.history.position:
            await self.session.go_to(event.option_index)
            await self._repaint()

    @on(RoundView.Changed)
    def _round_changed(self) -> None:
        self._repaint_history()

    def on_job_update(self, message: JobUpdate) -> None:
        if self.session is None:
            return
        cell = self.session.builder.history.apply(message.event)
        if cell is None:
            return
        if isinstance(message.event, JobFailed):
            self.notify(f"A job failed: {message.event.reason}", severity="error", timeout=8)
        self.query_one(RoundView).job_changed(message.event, cell)

    def on_screen_resume(self) -> None:
        if self.session is not None:
            self.query_one(RoundView).show_round()

    # -- refine, describe, intent ----------------------------------------------------------------

    @on(RoundView.RefineAsked)
    def _refine(self, event: RoundView.RefineAsked) -> None:
        session = self.session
        if session is None or session.current is None:
            self.notify("Make a round first: fill in the fields and press enter.")
            return
        self._pull_form()

        async def run(
            feedback: str, style: EnhancementStyle | None, listener: StageListener
        ) -> FieldRefinement:
            return await session.refine(feedback, self.imgen.llm_stages, listener)

        async def chosen(result: FieldRefinement | None) -> None:
            if result is None:
                return
            for refusal in result.refusals:
                self.notify(refusal, severity="warning", timeout=8)
            try:
                await session.accept(result)
            except ConceptError as error:
                self.notify(str(error), severity="error")
                return
            self.query_one(RoundView).grid.cursor = 0
            await self._repaint()

        panel = RefineScreen(
            run,
            {},  # the fields are the style here
            FieldsPart(),
            title=TITLE,
            looking_at=self._looking_at(),
            placeholder=PLACEHOLDER,
        )
        self.app.push_screen(panel, chosen)

    def _looking_at(self) -> str:
        current = self.session.current if self.session else None
        if current is None:
            return ""
        picked = sum(c.verdict == "picked" for c in current.cells)
        rejected = sum(c.verdict == "rejected" for c in current.cells)
        return f"round {self._round_number()}: {picked} picked, {rejected} rejected"

    def action_describe(self) -> None:
        view = self.query_one(RoundView)
        cell = view.cell()
        if self.session is None or cell is None:
            self.notify("Put the cursor on a finished image to describe it into the fields.")
            return
        self._pull_form()
        self.run_worker(self._describe(cell, view.number(cell)), group="describe", exclusive=True)

    async def _describe(self, cell: Cell, number: int) -> None:
        assert self.session is not None
        try:
            filled = await self.session.describe_pick(cell, self.imgen.llm_stages)
        except (LlmError, ConceptError) as error:
            self.notify(str(error), severity="warning", timeout=10)
            return
        self._push_form()
        what = ", ".join(filled) if filled else "nothing (the model saw nothing for them)"
        self.notify(f"From #{number}: filled {what}")

    async def action_intent(self) -> None:
        session = self.session
        if session is None or session.session_id is None:
            self.notify("Make a round first: the intent belongs to the session.")
            return
        intent = await session.intent()

        async def edited(new: Intent | None) -> None:
            if new is not None and session.session_id is not None:
                await session.store.set_intent(session.session_id, new.model_dump())
                await self._repaint_pins()
                self.notify("Intent saved: the next refinement follows it.")

        self.app.push_screen(IntentScreen(intent), edited)

    def action_leave(self) -> None:
        leave_cancelling(self, self.session)

    # -- painting ---------------------------------------------------------------------------------

    def _round_number(self) -> int:
        return self.session.builder.history.position + 1 if self.session else 0

    async def _repaint(self) -> None:
        self._push_form()
        view = self.query_one(RoundView)
        view.label = (
            f"Round {self._round_number()}" if self.session and self.session.current else "Round"
        )
        view.show_round()
        self._repaint_history()
        await self._repaint_pins()

    def _repaint_history(self) -> None:
        if self.session is None:
            return
        history = self.session.builder.history
        options = self.query_one("#rounds", OptionList)
        options.clear_options()
        options.add_options(
            [Option(_describe_round(i, r), id=f"round:{i}") for i, r in enumerate(history.rounds)]
        )
        if history.rounds:
            options.highlighted = history.position
        else:
            options.add_option(Option("(none yet)", disabled=True))

    async def _repaint_pins(self) -> None:
        if self.session is None:
            return
        intent = await self.session.intent()
        chips = Text("pinned ", style="dim")
        for pin in intent.pinned:
            chips.append(f" {pin} ", style="bold reverse")
            chips.append(" ")
        if not intent.pinned:
            chips.append("nothing (lock a field to pin it)", style="dim")
        self.query_one("#pins", Static).update(chips)


def _describe_round(index: int, stage_round: Round) -> Text:
    meta = stage_round.meta
    fields = meta.get("fields", {}) if isinstance(meta.get("fields"), dict) else {}
    locks = meta.get("locks", []) if isinstance(meta.get("locks"), list) else []
    picked = sum(c.verdict == "picked" for c in stage_round.cells)
    text = Text(f"{index + 1:>2} ", style="bold")
    text.append(" · ".join(str(v) for v in fields.values() if v)[:60])
    if locks:
        text.append("  🔒" + ",".join(str(name) for name in locks), style="yellow")
    if picked:
        text.append(f"  ✔{picked}", style="green")
    return text
