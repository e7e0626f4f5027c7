"""One workflow opened from the browser: its form (~45 %) beside the round view (~55 %).

The form is `ParamForm`; the runs, verdicts and the session are
`WorkflowRun` (flows/workflow_run.py), the same code the tests drive. The
plan line under the variations says how many jobs the form makes and how long
the farm would take, before anything runs; ctrl+r runs it. The values run
are remembered for this workflow (written in a thread) and come back the
next time it is opened, even after the app restarts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Select, Static, TextArea

from imgen_tui.flows.csvsets import set_prompts
from imgen_tui.flows.rounds import Denoise
from imgen_tui.flows.variations import describe_estimate
from imgen_tui.flows.workflow_catalog import WorkflowCard
from imgen_tui.flows.workflow_memory import SETTINGS_KEY, remember, remembered, values_file
from imgen_tui.flows.workflow_run import (
    RunPlan,
    RunSettings,
    WorkflowRun,
    WorkflowRunError,
    estimate,
    form_parameters,
    key_text,
    plan_run,
    saved_seed_mode,
)
from imgen_tui.scheduler.events import JobFailed
from imgen_tui.ui.messages import JobUpdate
from imgen_tui.ui.screens.modals import leave_cancelling
from imgen_tui.ui.widgets.node_strip import NodeStrip
from imgen_tui.ui.widgets.param_form import ParamForm
from imgen_tui.ui.widgets.round_view import RoundView
from imgen_tui.yamlfile import ConfigError

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp

HINT = "set the parameters and press ctrl+r to run"
PREVIEW_PROMPTS = 5
PLAN_DELAY = 0.3  # seconds after the last edit before the plan line is worked out again


def _set_prompts(path_text: str, template: str) -> list[str]:
    return set_prompts(Path(path_text).expanduser(), template)


class WorkflowRunScreen(Screen[None]):
    DEFAULT_CSS = """
    WorkflowRunScreen #run-body { height: 1fr; }
    WorkflowRunScreen #form { width: 45%; padding: 0 1; }
    WorkflowRunScreen #round { width: 55%; }
    WorkflowRunScreen #title { padding: 0 1; }
    """
    BINDINGS = [
        Binding("ctrl+r", "run", "Run", id="workflow.run"),
        Binding("ctrl+e", "edit_form", "Form", id="workflow.form"),
        Binding("escape", "to_grid", "Grid", show=False, id="workflow.grid"),
        Binding("ctrl+b", "leave", "Back", id="workflow.quit"),
    ]
    HELP = (
        "**A workflow.** Edit its parameters (the important ones first, the rest under "
        "*More parameters*), set the variations, and **ctrl+r** runs them: the plan line "
        "says how many jobs and how long first. Judge the pictures as everywhere "
        "(**space** pick, **x** reject, **l** lock the seed, **g** again). **ctrl+e** "
        "back to the form, **ctrl+b** back to the browser."
    )

    def __init__(
        self,
        card: WorkflowCard,
        object_info: Mapping[str, Any] | None,
        resume: str | None = None,
    ) -> None:
        super().__init__()
        self.card = card
        self.resume_id = resume
        self.object_info = object_info
        self.parameters = form_parameters(card, object_info)
        self.session: WorkflowRun | None = None
        self.memory_file = values_file()
        self.plan: RunPlan | None = None
        self._plan_timer: Any = None

    @property
    def imgen(self) -> ImgenApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        title = Text(self.card.name, style="bold")
        title.append(f"  {self.card.description}", style="dim")
        yield Static(title, id="title")
        with Horizontal(id="run-body"):
            yield Static("reading the last values…", id="form")
            yield RoundView(
                self.imgen.renderer,
                denoise=Denoise(),
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
        self.session = WorkflowRun(self.card, engine.store, engine.scheduler)
        view = self.query_one(RoundView)
        view.actions = self.session
        view.label = self.card.name
        if self.resume_id is not None:
            await self.session.reopen(self.resume_id, self.parameters)
            view.label = f"{self.card.name} run {self.session.history.position + 1}"
        view.show_round()
        saved = await asyncio.to_thread(remembered, self.memory_file, self.card.key)
        settings = saved.pop(SETTINGS_KEY, None)
        start = (
            RunSettings.from_json(settings)
            if isinstance(settings, dict)
            else RunSettings(seed_mode=saved_seed_mode(self.parameters))
        )
        usable = self._still_fitting(saved)
        form = ParamForm(self.parameters, usable, start, id="form")
        await self.query_one("#form").remove()
        await self.query_one("#run-body", Horizontal).mount(form, before=0)
        for box in form.query(Input):
            box.cursor_blink = False
        if self.resume_id is not None and self.session.current is not None:
            view.grid.focus()
        else:
            self.action_edit_form()
        self._replan()

    def _still_fitting(self, saved: Mapping[str, Any]) -> dict[str, Any]:
        """Remembered values that still fit the parameter (a model may have gone)."""
        fitting = {}
        for parameter in self.parameters:
            name = key_text((parameter.node, parameter.input))
            if name in saved and (
                parameter.role == "image" or parameter.check(saved[name]) is None
            ):
                fitting[name] = saved[name]
        return fitting

    @property
    def form(self) -> ParamForm:
        return self.query_one(ParamForm)

    # -- the plan line ----------------------------------------------------------------------------

    @on(Input.Changed)
    @on(Select.Changed)
    @on(TextArea.Changed)
    def _edited(self, event: Any) -> None:
        widget = getattr(event, "input", None) or getattr(event, "text_area", None)
        if widget is not None and (widget.id or "").startswith("csv-"):
            self._preview_csv()
            return
        if self._plan_timer is not None:
            self._plan_timer.stop()
        self._plan_timer = self.set_timer(PLAN_DELAY, self._replan)

    def _replan(self) -> None:
        if self.query(ParamForm):
            self.work_out_plan()

    @work(exclusive=True, group="plan", exit_on_error=False)
    async def work_out_plan(self) -> RunPlan | None:
        form = self.form
        try:
            values, settings = form.values(), form.settings()
            plan = await asyncio.to_thread(plan_run, self.card, self.parameters, values, settings)
        except WorkflowRunError as error:
            self.plan = None
            form.show_plan(str(error), problem=True)
            return None
        found = estimate(plan.specs, self.imgen.engine.scheduler)
        self.plan = plan
        form.show_plan(describe_estimate(len(plan.specs), found))
        return plan

    # -- running ----------------------------------------------------------------------------------

    async def action_run(self) -> None:
        if self.session is None or not self.query(ParamForm):
            return
        form = self.form
        try:
            values, settings = form.values(), form.settings()
            plan = await asyncio.to_thread(plan_run, self.card, self.parameters, values, settings)
        except WorkflowRunError as error:
            self.notify(str(error), severity="warning", timeout=10)
            return
        await self.session.run(plan, self.parameters, values, settings)
        self.run_worker(
            asyncio.to_thread(
                remember,
                self.memory_file,
                self.card.key,
                {key_text(key): value for key, value in values.items()},
                settings.to_json(),
            ),
            group="remember",
        )
        view = self.query_one(RoundView)
        view.label = f"{self.card.name} run {len(self.session.history.rounds)}"
        view.show_round()
        view.grid.cursor = 0
        view.grid.focus()
        self.notify(f"{len(plan.specs)} jobs sent to the farm")

    def on_job_update(self, message: JobUpdate) -> None:
        if self.session is None:
            return
        cell = self.session.history.apply(message.event)
        if cell is None:
            return
        if isinstance(message.event, JobFailed):
            self.notify(f"A job failed: {message.event.reason}", severity="error", timeout=8)
        if self.app.screen is self:
            self.query_one(RoundView).job_changed(message.event, cell)

    @on(RoundView.RefineAsked)
    def _refine(self) -> None:
        self.notify(
            "Here the form is the refinement: change the prompt or a parameter (ctrl+e) and "
            "run again (ctrl+r); locked seeds (l) stay as they are with g.",
            timeout=8,
        )

    def on_screen_resume(self) -> None:
        if self.session is not None:
            self.query_one(RoundView).show_round()

    # -- CSV sets ---------------------------------------------------------------------------------

    @work(exclusive=True, group="csv", exit_on_error=False)
    async def _preview_csv(self) -> None:
        """Each keystroke replaces the last preview (the decorator makes the coroutine only
        when the worker starts, so a replaced one leaves nothing un-awaited)."""
        await self.csv_prompts()

    async def csv_prompts(self) -> list[str] | None:
        """The set's prompts (shown, the first few, under the boxes); None when it has none."""
        path_text = self.query_one("#csv-file", Input).value.strip()
        template = self.query_one("#csv-template", Input).value
        preview = self.query_one("#csv-preview", Static)
        if not path_text or not template.strip():
            preview.update("choose a file and a template to preview the first prompts")
            return None
        try:
            prompts = await asyncio.to_thread(_set_prompts, path_text, template)
        except ConfigError as error:
            preview.update(str(error))
            return None
        shown = "\n".join(f"{i + 1}. {p}" for i, p in enumerate(prompts[:PREVIEW_PROMPTS]))
        more = (
            f"\n… {len(prompts) - PREVIEW_PROMPTS} more" if len(prompts) > PREVIEW_PROMPTS else ""
        )
        preview.update(f"{len(prompts)} prompts:\n{shown}{more}")
        return prompts

    @on(Button.Pressed, "#csv-use")
    async def _use_csv(self) -> None:
        prompts = await self.csv_prompts()
        if not prompts:
            self.notify(
                "The CSV set gave no prompts: see the message under it.", severity="warning"
            )
            return
        self.query_one("#prompts", TextArea).text = "\n".join(prompts)
        # prompts cycle over the count (seed 003): a count of one per row runs every row once
        self.query_one("#count", Input).value = str(len(prompts))
        self.notify(
            f"{len(prompts)} prompts from the set, count {len(prompts)}: one image per row "
            "(ctrl+r runs them)"
        )

    # -- moving around ----------------------------------------------------------------------------

    def action_edit_form(self) -> None:
        editors = self.query("ParamForm Input, ParamForm Select, ParamForm TextArea")
        if editors:
            editors.first().focus()

    def action_to_grid(self) -> None:
        self.query_one(RoundView).grid.focus()

    def action_leave(self) -> None:
        leave_cancelling(self, self.session)
