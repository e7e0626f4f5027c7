"""The draft funnel screen: prompt, breadcrumb, the shared round view, the funnel's keys.

Judging a round (pick, reject, lock, more like this, again, the lightbox and
compare) is the shared `RoundView` with its `round.*` keys; what is the
funnel's own is here: the prompt, the stages (`n` forward, `b` back), the
refine panel, the intent, export. Every action that changes the session goes
through `FunnelSession`, the same code the tests drive.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from imgen_tui.flows.final import export_final, export_folder, final_story
from imgen_tui.flows.funnel import Funnel
from imgen_tui.flows.funnel_session import FunnelSession
from imgen_tui.flows.round_session import read_pictures
from imgen_tui.flows.rounds import Cell, Denoise
from imgen_tui.llm.config import EnhancementStyle
from imgen_tui.llm.pipeline import Intent, Refinement, RefineRequest, StageListener, refine
from imgen_tui.scheduler.events import JobFailed
from imgen_tui.store import SessionInfo, StoreError
from imgen_tui.ui.messages import JobUpdate
from imgen_tui.ui.screens.intent import IntentScreen
from imgen_tui.ui.screens.modals import leave_cancelling
from imgen_tui.ui.screens.refine import PromptPart, RefinedPrompt, RefineScreen
from imgen_tui.ui.widgets.node_strip import NodeStrip
from imgen_tui.ui.widgets.round_view import RoundView

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp

HINT = "type a prompt and press enter: 20 fast drafts over every idle GPU"


class FunnelScreen(Screen[None]):
    BINDINGS = [
        Binding(
            "M", "more_described", "More like, described", show=False, id="funnel.more_described"
        ),
        Binding("i", "intent", "Intent", show=False, id="funnel.intent"),
        Binding("n", "advance", "Next stage", id="funnel.advance"),
        Binding("b", "back", "Back", id="funnel.back"),
        Binding("E", "export", "Export", id="funnel.export"),
        Binding("e,slash", "edit_prompt", "Prompt", show=False, id="funnel.edit"),
        Binding("q", "leave", "Leave", id="funnel.quit"),
    ]

    HELP = """
**The draft funnel.** Type a prompt and press enter: 20 fast drafts spread over
every idle GPU. Judge them (**space** picks, **x** rejects, **l** locks a seed,
**a** marks A/B for **c** compare), then **n** carries the picks into the next
stage by img2img: Refined 8 → Polished 3 → Final 1 (an upscale). **b** goes
back; **n** again shows what was made from the same picks, **g** makes the stage
again (picks and locks kept, **z** brings the round before back). **r** rewrites
the prompt from feedback in words, **m**/**M** make more like the image under
the cursor, **E** exports the final with its story. Everything is saved as you
go: reopen the session from Home.
"""

    def __init__(self, resume: str | None = None) -> None:
        super().__init__()
        self.resume_id = resume
        self.flow: FunnelSession | None = None
        self.denoise = Denoise()  # from funnel.yaml once the screen is in the app

    @property
    def funnel(self) -> Funnel | None:
        return self.flow.funnel if self.flow else None

    @property
    def session(self) -> SessionInfo | None:
        return self.flow.session if self.flow else None

    @property
    def view(self) -> RoundView:
        return self.query_one(RoundView)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Export is offered (in the footer too) on the final only, where it applies."""
        funnel = self.funnel
        current = funnel.current if funnel else None
        if action == "export":
            return funnel is not None and current is not None and funnel.is_final(current)
        return True

    @property
    def imgen(self) -> ImgenApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        settings = self.imgen.funnel_config.more_like_this
        self.denoise.value, self.denoise.step = settings.denoise, settings.nudge
        yield Header()
        yield Input(placeholder="Describe the picture, then press enter", id="prompt")
        yield Static("", id="breadcrumb")
        yield RoundView(self.imgen.renderer, denoise=self.denoise, hint=HINT, id="round")
        yield NodeStrip(self.imgen.engine.scheduler, id="node-strip")
        yield Footer()

    async def on_mount(self) -> None:
        engine = self.imgen.engine
        assert engine.store is not None and engine.scheduler is not None
        funnel = Funnel(self.imgen.funnel_config, self.imgen.library, engine.farm.models)
        self.flow = FunnelSession(funnel, engine.store, engine.scheduler)
        self.view.actions = self.flow
        if self.resume_id is not None:
            await self.flow.reopen(self.resume_id)
            if funnel.current is not None:
                self.query_one("#prompt", Input).value = funnel.current.prompt
            self.view.grid.focus()
        else:
            self.query_one("#prompt", Input).focus()
        self._repaint()

    # -- the funnel's life ------------------------------------------------------------------

    @on(Input.Submitted, "#prompt")
    async def _prompt_entered(self, event: Input.Submitted) -> None:
        prompt = event.value.strip()
        if not prompt:
            self.notify("Type what you want to see first.", severity="warning")
            return
        assert self.flow is not None
        await self.flow.start(prompt)
        self._repaint()
        self.view.grid.focus()

    # -- scheduler news ------------------------------------------------------------------------

    def on_job_update(self, message: JobUpdate) -> None:
        if self.flow is None:
            return
        cell = self.flow.history.apply(message.event)
        if cell is None:
            return
        if isinstance(message.event, JobFailed):
            self.notify(f"A job failed: {message.event.reason}", severity="error", timeout=8)
        self.view.job_changed(message.event, cell)

    def on_screen_resume(self) -> None:
        if self.funnel is not None and self.funnel.current is not None:
            self.view.grid.refresh_cells()
            self.view.repaint_feedback()

    @on(RoundView.Changed)
    def _round_changed(self) -> None:
        self.refresh_bindings()

    # -- keys -------------------------------------------------------------------------------------

    @on(RoundView.RefineAsked)
    def _refine_asked(self) -> None:
        """Feedback in words → the stages → the new prompt to edit → generate the round again."""
        self._open_refine()

    def action_more_described(self) -> None:
        """More like this, with words: the vision stage looks at it, then img2img on its seed."""
        cell = self.view.cell()
        if cell is None:
            self.notify(f"Nothing here yet: {HINT}.")
            return
        if cell.image is None:
            self.notify("That image is not finished yet.")
            return
        self._open_refine(more_like=cell)

    def _open_refine(self, more_like: Cell | None = None) -> None:
        flow, store, session = self.flow, self.imgen.engine.store, self.session
        funnel = self.funnel
        if (
            flow is None
            or funnel is None
            or funnel.current is None
            or store is None
            or session is None
        ):
            self.notify("Start with a prompt first.", severity="warning")
            return
        current = funnel.current
        done = [c for c in current.cells if c.image is not None]
        picked = more_like or next((c for c in done if c.verdict == "picked"), None)
        rejected = next((c for c in done if c.verdict == "rejected" and c is not picked), None)
        looking_at = ", ".join(
            f"{role} #{self.view.number(cell)}"
            for role, cell in (("looking at", picked), ("against rejected", rejected))
            if cell is not None
        )

        async def run(
            feedback: str, style: EnhancementStyle | None, listener: StageListener
        ) -> Refinement:
            intent = Intent.from_document(await store.intent(session.id))
            picture, rejected_picture = await asyncio.to_thread(read_pictures, picked, rejected)
            request = RefineRequest(
                feedback=feedback,
                prompt=current.prompt,
                negative=current.negative,
                family=funnel.current_family(),
                pinned=list(intent.pinned),
                picked=[image.id for image in current.picks],
                rejected=[image.id for image in current.rejects],
                style=style,
                picture=picture,
                rejected_picture=rejected_picture,
            )
            result = await refine(request, intent, self.imgen.llm_stages, listener)
            await store.set_intent(session.id, intent.model_dump())
            return result

        async def accepted(refined: RefinedPrompt | None) -> None:
            if refined is None or funnel.current is None:
                return
            self.query_one("#prompt", Input).value = refined.prompt
            if more_like is None:
                picks = len(funnel.current.picks)
                await flow.again(refined.prompt, refined.negative)
                self._repaint()
                if picks:
                    self.notify(
                        f"Made again with the new prompt (locked seeds kept); the {picks} "
                        "picks of the old prompt stay in the round before: z brings it back."
                    )
                return
            funnel.current.prompt = refined.prompt.strip()
            funnel.current.negative = refined.negative.strip()
            try:
                await flow.more_like_this(more_like, self.denoise.value)
            except ValueError as error:
                self.notify(str(error), severity="warning")
                return
            self._repaint()

        title = "Refine: what should change?"
        if more_like is not None:
            title = f"More like #{self.view.number(more_like)}: what should change?"
        self.app.push_screen(
            RefineScreen(
                run,
                self.imgen.enhancement_styles,
                PromptPart(),
                title=title,
                looking_at=looking_at,
                feedback="more like this" if more_like is not None else "",
            ),
            accepted,
        )

    async def action_intent(self) -> None:
        store, session = self.imgen.engine.store, self.session
        if store is None or session is None:
            self.notify("Start with a prompt first.", severity="warning")
            return
        intent = Intent.from_document(await store.intent(session.id))

        async def edited(new: Intent | None) -> None:
            if new is not None and store is not None:
                await store.set_intent(session.id, new.model_dump())
                self.notify("Intent saved: the next refinement follows it.")

        self.app.push_screen(IntentScreen(intent), edited)

    async def action_advance(self) -> None:
        flow, funnel = self.flow, self.funnel
        if flow is None or funnel is None or funnel.current is None:
            self.notify("Type a prompt and press enter to start the funnel.")
            return
        if funnel.at_last_stage:
            self.notify(
                f"{funnel.stage.label} is the last stage: E exports it (file and sidecar) "
                f"to {self._export_base()}."
            )
            return
        if not funnel.can_advance:
            self.notify("Pick at least one image (space) before the next stage.")
            return
        made = await flow.advance()
        self.view.grid.cursor = 0
        self._repaint()
        if not made:
            self.notify(
                f"{funnel.stage.label} as you left it (made from the same picks): "
                "g makes it again with new seeds."
            )

    async def action_back(self) -> None:
        if self.flow is not None and await self.flow.back():
            self.view.grid.cursor = 0
            self._repaint()

    def _export_base(self) -> Path:
        return self.imgen.export_dir

    async def action_export(self) -> None:
        """The final image and its sidecar (prompt, seed, lineage) into a folder, said where."""
        funnel, session = self.funnel, self.session
        current = funnel.current if funnel else None
        if funnel is None or current is None or session is None:
            self.notify("Start with a prompt first.", severity="warning")
            return
        if not funnel.is_final(current):
            self.notify(
                "E exports the final image: pick and press n until "
                f"{funnel.config.stages[-1].label}."
            )
            return
        cell = self.view.cell()
        if cell is None or cell.image is None:
            self.notify("The final is not finished yet.")
            return
        folder = export_folder(self._export_base(), session.title, session.id)
        image = cell.image
        try:
            copies = await asyncio.to_thread(
                export_final, image, final_story(funnel, current, cell), folder
            )
        except (OSError, StoreError) as error:
            self.notify(
                f"Could not export to {folder} ({error}): "
                "free some space or check the folder's permissions.",
                severity="error",
                timeout=10,
            )
            return
        self.notify(f"Exported {copies[0].name} and its sidecar to {folder}", timeout=10)

    def action_edit_prompt(self) -> None:
        self.query_one("#prompt", Input).focus()

    def action_leave(self) -> None:
        leave_cancelling(self, self.flow)

    def key_escape(self) -> None:
        self.view.grid.focus()

    # -- painting ---------------------------------------------------------------------------------

    def _repaint(self) -> None:
        funnel = self.funnel
        crumb = Text()
        if funnel is not None:
            for index, (label, count, here) in enumerate(funnel.breadcrumb()):
                if index:
                    crumb.append(" → ", style="dim")
                crumb.append(f"{label} {count}", style="bold reverse" if here else "dim")
        self.query_one("#breadcrumb", Static).update(crumb)
        self.view.label = funnel.stage.label if funnel and funnel.current else "Round"
        self.view.show_round()
        self.refresh_bindings()
