"""The draft funnel screen: prompt, breadcrumb, thumbnail grid, feedback bar.

The screen turns keys into funnel decisions and scheduler submissions, and
scheduler events into cell repaints. The funnel itself (what to make next)
is `flows.funnel.Funnel`, plain Python, tested without a terminal.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from imgen_tui.flows.final import export_final, export_folder, final_story, write_story
from imgen_tui.flows.funnel import Cell, Funnel, StageRound
from imgen_tui.flows.funnel_state import funnel_state, restore_funnel
from imgen_tui.flows.recorder import SessionRecorder
from imgen_tui.flows.rounds import apply_event
from imgen_tui.llm.config import EnhancementStyle
from imgen_tui.llm.pipeline import Intent, Refinement, RefineRequest, StageListener, refine
from imgen_tui.scheduler.events import (
    JobCancelled,
    JobDone,
    JobFailed,
    JobPreview,
)
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.store import SessionInfo, StoreError
from imgen_tui.store.records import IN_PROGRESS_STATES, Verdict
from imgen_tui.ui.messages import JobUpdate
from imgen_tui.ui.screens.intent import IntentScreen
from imgen_tui.ui.screens.modals import ConfirmScreen
from imgen_tui.ui.screens.refine import RefinedPrompt, RefineScreen
from imgen_tui.ui.widgets.grid import ThumbGrid
from imgen_tui.ui.widgets.node_strip import NodeStrip

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp


FARM_CHECK_SECONDS = 1.0  # how often waiting cells look at the nodes they wait for


class FunnelScreen(Screen[None]):
    BINDINGS = [
        Binding("left,h", "move(-1)", "Left", show=False, id="funnel.left"),
        Binding("right", "move(1)", "Right", show=False, id="funnel.right"),
        Binding("up,k", "move_row(-1)", "Up", show=False, id="funnel.up"),
        Binding("down,j", "move_row(1)", "Down", show=False, id="funnel.down"),
        Binding("space,p", "verdict('picked')", "Pick", id="funnel.pick"),
        Binding("x", "verdict('rejected')", "Reject", id="funnel.reject"),
        Binding("u", "verdict('none')", "Clear", show=False, id="funnel.clear"),
        Binding("enter", "lightbox", "View", show=False, id="funnel.lightbox"),
        Binding("c", "compare", "Compare", show=False, id="funnel.compare"),
        Binding("a", "mark", "Mark A/B", show=False, id="funnel.mark"),
        Binding("m", "more_like_this", "More like", id="funnel.more"),
        Binding(
            "M", "more_described", "More like, described", show=False, id="funnel.more_described"
        ),
        Binding("plus,equals_sign", "nudge(1)", "Denoise +", show=False, id="funnel.nudge_up"),
        Binding("minus", "nudge(-1)", "Denoise -", show=False, id="funnel.nudge_down"),
        Binding("r", "refine", "Refine", id="funnel.refine"),
        Binding("i", "intent", "Intent", show=False, id="funnel.intent"),
        Binding("l", "lock", "Lock", id="funnel.lock"),
        Binding("U", "upscale", "Upscale", show=False, id="funnel.upscale"),
        Binding("n", "advance", "Next stage", id="funnel.advance"),
        Binding("b", "back", "Back", id="funnel.back"),
        Binding("g", "again", "Again", id="funnel.again"),
        Binding("z", "undo_again", "Undo again", show=False, id="funnel.undo_again"),
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
        self.session: SessionInfo | None = None
        self.funnel: Funnel | None = None
        self.denoise = 0.35

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
        yield Header()
        yield Input(placeholder="Describe the picture, then press enter", id="prompt")
        yield Static("", id="breadcrumb")
        yield ThumbGrid(self.imgen.renderer, id="grid")
        yield Static("", id="feedback")
        yield NodeStrip(self.imgen.engine.scheduler, id="node-strip")
        yield Footer()

    async def on_mount(self) -> None:
        engine = self.imgen.engine
        self.funnel = Funnel(self.imgen.funnel_config, self.imgen.library, engine.farm.models)
        self.denoise = self.imgen.funnel_config.more_like_this.denoise
        if self.resume_id is not None:
            await self._resume(self.resume_id)
            self.query_one(ThumbGrid).focus()
        else:
            self.query_one("#prompt", Input).focus()
        self._repaint()
        self.set_interval(FARM_CHECK_SECONDS, self._check_farm)

    def _check_farm(self) -> None:
        """Cells whose node went down (or with no node up at all) say so, and the counts too."""
        scheduler = self.imgen.engine.scheduler
        if self.funnel is None or scheduler is None:
            return
        nodes = {node_id: (r.state, r.state_reason) for node_id, r in scheduler.nodes.items()}
        if self.funnel.note_farm(nodes) and self.app.screen is self:
            self.query_one(ThumbGrid).refresh_cells()
            self._repaint_feedback()

    # -- the funnel's life ------------------------------------------------------------------

    @on(Input.Submitted, "#prompt")
    async def _prompt_entered(self, event: Input.Submitted) -> None:
        prompt = event.value.strip()
        if not prompt:
            self.notify("Type what you want to see first.", severity="warning")
            return
        assert self.funnel is not None
        if self.funnel.current is not None:
            await self._cancel_unfinished()
        self.session = None
        specs = self.funnel.start(prompt)
        await self._launch(specs)
        self.query_one(ThumbGrid).focus()

    async def _launch(self, specs: list[JobSpec]) -> None:
        """Write the round and its jobs to the store, then hand them to the scheduler."""
        funnel, store, scheduler = self.funnel, self.imgen.engine.store, self.imgen.engine.scheduler
        assert funnel is not None and store is not None and scheduler is not None
        current = funnel.current
        assert current is not None
        if self.session is None:
            self.session = await store.create_session("funnel", current.prompt[:80])
        if current.round_id is None:
            info = await store.add_round(
                self.session.id,
                current.stage.name,
                prompt=current.prompt,
                negative=current.negative,
                parameters={"workflow": current.stage.workflow, **current.stage.params},
            )
            current.round_id = info.id
        specs = [dataclasses.replace(spec, round_id=current.round_id) for spec in specs]
        await store.add_jobs(current.round_id, [(spec.job_id, spec.to_json()) for spec in specs])
        await self._save_state()
        scheduler.submit_many(specs)
        self._repaint()

    async def _save_state(self) -> None:
        """The funnel as it is now, so reopening the session puts back exactly this."""
        store, funnel, session = self.imgen.engine.store, self.funnel, self.session
        if store is not None and funnel is not None and session is not None:
            await store.update_session(session.id, state=funnel_state(funnel))

    async def _cancel_unfinished(self, stage_round: StageRound | None = None) -> None:
        assert self.funnel is not None and self.imgen.engine.scheduler is not None
        for job_id in self.funnel.unfinished_jobs(stage_round):
            await self.imgen.engine.scheduler.cancel(job_id)

    async def _resume(self, session_id: str) -> None:
        """Rebuild the funnel from the store; re-attach to whatever was still running."""
        store, scheduler, funnel = self.imgen.engine.store, self.imgen.engine.scheduler, self.funnel
        assert store is not None and scheduler is not None and funnel is not None
        self.session = await store.session(session_id)
        images = await store.images(session_id=session_id)
        jobs = await store.jobs(session_id)
        rounds = await store.rounds(session_id)
        restore_funnel(funnel, self.session.state, images, jobs, rounds)
        wanted = {cell.job_id for r in funnel.history for cell in r.cells}
        unfinished = [row for row in jobs if row.state in IN_PROGRESS_STATES and row.id in wanted]
        SessionRecorder.resume(scheduler, unfinished)
        if funnel.current is not None:
            self.query_one("#prompt", Input).value = funnel.current.prompt

    # -- scheduler news ------------------------------------------------------------------------

    def on_job_update(self, message: JobUpdate) -> None:
        event = message.event
        job = getattr(event, "job", None)
        if job is None or self.funnel is None:
            return
        cell = self.funnel.cell_for(job.job_id)
        if cell is None:
            return
        if isinstance(event, JobFailed):
            self.notify(f"A job failed: {event.reason}", severity="error", timeout=8)
        apply_event(cell, event)
        if isinstance(event, JobDone) and cell.image is not None:
            self.run_worker(self._image_arrived(cell), group="arrived")
        if self.app.screen is not self:
            return  # painting a covered screen repaints the whole top one; catch up on resume
        grid = self.query_one(ThumbGrid)
        if isinstance(event, JobPreview):
            widget = grid.refresh_job(job.job_id)
            if widget is not None:
                widget.show_preview(event.image)
            return
        grid.refresh_job(job.job_id)
        if isinstance(event, JobDone | JobFailed | JobCancelled):
            self._repaint_feedback()

    async def _image_arrived(self, cell: Cell) -> None:
        """A verdict or lock given before the image existed goes on its row; a final, its story."""
        store, funnel = self.imgen.engine.store, self.funnel
        image = cell.image
        if store is None or funnel is None or image is None:
            return
        if cell.locked:
            await store.set_locks(image.id, ["seed"])
        if cell.verdict != "none":
            await store.set_verdict(image.id, cell.verdict)
        owner = next((r for r in funnel.history if cell in r.cells), None)
        if owner is not None and funnel.is_final(owner):
            await asyncio.to_thread(write_story, image, final_story(funnel, owner, cell))

    def on_thumb_grid_moved(self) -> None:
        self._repaint_feedback()

    def on_thumb_grid_opened(self) -> None:
        self.action_lightbox()

    def on_screen_resume(self) -> None:
        if self.funnel is not None and self.funnel.current is not None:
            self.query_one(ThumbGrid).refresh_cells()
            self._repaint_feedback()

    # -- keys -------------------------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        self.query_one(ThumbGrid).move(delta)
        self._repaint_feedback()

    def action_move_row(self, delta: int) -> None:
        grid = self.query_one(ThumbGrid)
        grid.move(delta * grid.columns)
        self._repaint_feedback()

    async def action_verdict(self, verdict: Verdict) -> None:
        cell = self._cell()
        if cell is not None:
            await self._judge(cell, verdict)

    async def _judge(self, cell: Cell, verdict: Verdict) -> None:
        """Pick, reject or clear a cell (the same verdict again clears it), also in the lightbox."""
        cell.verdict = "none" if verdict == cell.verdict and verdict != "none" else verdict
        if cell.image is not None and self.imgen.engine.store is not None:
            await self.imgen.engine.store.set_verdict(cell.image.id, cell.verdict)
        await self._save_state()
        if self.app.screen is self:  # under the lightbox: repainted on resume
            self.query_one(ThumbGrid).refresh_job(cell.job_id)
            self._repaint_feedback()

    def action_lightbox(self) -> None:
        grid = self.query_one(ThumbGrid)
        ready = [cell for cell in grid.cells if cell.image is not None]
        current = grid.current
        if current is None or current.image is None:
            self.notify("That image is not finished yet.")
            return
        from imgen_tui.ui.screens.lightbox import LightboxScreen

        def closed(shown: Cell | None) -> None:
            if shown is not None and shown in grid.cells:
                grid.cursor = grid.cells.index(shown)
                self._repaint_feedback()

        self.app.push_screen(
            LightboxScreen(ready, ready.index(current), self.imgen.renderer, self._judge), closed
        )

    def action_compare(self) -> None:
        pair = self.funnel.compare_pair() if self.funnel and self.funnel.current else None
        if pair is None:
            self.notify("Mark two images with a (A, then B), or pick two, to compare them.")
            return
        from imgen_tui.ui.screens.lightbox import CompareScreen

        self.app.push_screen(CompareScreen(pair[0], pair[1], self.imgen.renderer))

    def action_mark(self) -> None:
        cell = self._cell()
        if cell is None or self.funnel is None:
            return
        self.funnel.mark_for_compare(cell)
        self.query_one(ThumbGrid).refresh_cells()
        marked = [c for c in self.query_one(ThumbGrid).cells if c.compare]
        if len(marked) == 2:
            self.notify("A and B marked: c compares them (f flips).")

    async def action_more_like_this(self) -> None:
        cell = self._cell()
        if cell is None or self.funnel is None:
            return
        try:
            spec = self.funnel.more_like_this(cell, self.denoise)
        except ValueError as error:
            self.notify(str(error), severity="warning")
            return
        number = self._number(cell)
        await self._launch([spec])
        self._show_newest()
        self.notify(
            f"More like #{number} at denoise {self.denoise:.2f}: #{self._number_of_newest()}"
        )

    def action_nudge(self, direction: int) -> None:
        step = self.imgen.funnel_config.more_like_this.nudge
        self.denoise = round(min(0.95, max(0.05, self.denoise + direction * step)), 2)
        self._repaint_feedback()

    def action_refine(self) -> None:
        """Feedback in words → the stages → the new prompt to edit → generate the round again."""
        self._open_refine()

    def action_more_described(self) -> None:
        """More like this, with words: the vision stage looks at it, then img2img on its seed."""
        cell = self._cell()
        if cell is None:
            return
        if cell.image is None:
            self.notify("That image is not finished yet.")
            return
        self._open_refine(more_like=cell)

    def _open_refine(self, more_like: Cell | None = None) -> None:
        funnel, store, session = self.funnel, self.imgen.engine.store, self.session
        if funnel is None or funnel.current is None or store is None or session is None:
            self.notify("Start with a prompt first.", severity="warning")
            return
        current = funnel.current
        done = [c for c in current.cells if c.image is not None]
        picked = more_like or next((c for c in done if c.verdict == "picked"), None)
        rejected = next((c for c in done if c.verdict == "rejected" and c is not picked), None)
        looking_at = ", ".join(
            f"{role} #{self._number(cell)}"
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
                picked=[c.image.id for c in current.cells if c.verdict == "picked" and c.image],
                rejected=[c.image.id for c in current.cells if c.verdict == "rejected" and c.image],
                style=style,
                picture=picture,
                rejected_picture=rejected_picture,
            )
            result = await refine(request, intent, self.imgen.llm_stages, listener)
            await store.set_intent(session.id, intent.model_dump())
            return result

        async def accepted(refined: RefinedPrompt | None) -> None:
            if refined is None or self.funnel is None:
                return
            if more_like is None:
                await self._cancel_unfinished(self.funnel.current)
            self.funnel.rewrite_prompt(refined.prompt, refined.negative)
            self.query_one("#prompt", Input).value = refined.prompt
            if more_like is None:
                picks = len(self.funnel.current.picks) if self.funnel.current else 0
                await self._launch(self.funnel.again(prompt_changed=True))
                if picks:
                    self.notify(
                        f"Made again with the new prompt (locked seeds kept); the {picks} "
                        "picks of the old prompt stay in the round before: z brings it back."
                    )
                return
            try:
                spec = self.funnel.more_like_this(more_like, self.denoise)
            except ValueError as error:
                self.notify(str(error), severity="warning")
                return
            await self._launch([spec])

        title = "Refine: what should change?"
        if more_like is not None:
            title = f"More like #{self._number(more_like)}: what should change?"
        self.app.push_screen(
            RefineScreen(
                run,
                self.imgen.enhancement_styles,
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

    async def action_lock(self) -> None:
        cell = self._cell()
        if cell is None:
            return
        cell.locked = not cell.locked
        if cell.image is not None and self.imgen.engine.store is not None:
            await self.imgen.engine.store.set_locks(cell.image.id, ["seed"] if cell.locked else [])
        await self._save_state()
        self.query_one(ThumbGrid).refresh_job(cell.job_id)
        self.notify(f"Seed {cell.seed} {'locked' if cell.locked else 'unlocked'}")

    async def action_upscale(self) -> None:
        cell = self._cell()
        if cell is None or self.funnel is None:
            return
        try:
            spec = self.funnel.upscale(cell)
        except ValueError as error:
            self.notify(str(error), severity="warning")
            return
        await self._launch([spec])
        self._show_newest()

    async def action_advance(self) -> None:
        funnel = self.funnel
        if funnel is None or funnel.current is None:
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
        if funnel.next_is_made():
            funnel.advance()
            self.query_one(ThumbGrid).cursor = 0
            await self._save_state()
            self._repaint()
            self.notify(
                f"{funnel.stage.label} as you left it (made from the same picks): "
                "g makes it again with new seeds."
            )
            return
        await self._cancel_unfinished(funnel.current)
        specs = funnel.advance()
        self.query_one(ThumbGrid).cursor = 0
        await self._launch(specs)

    async def action_back(self) -> None:
        if self.funnel is not None and self.funnel.back():
            self.query_one(ThumbGrid).cursor = 0
            await self._save_state()
            self._repaint()

    async def action_again(self) -> None:
        if self.funnel is None or self.funnel.current is None:
            return
        await self._cancel_unfinished(self.funnel.current)
        specs = self.funnel.again()
        kept = len(self.funnel.current.cells) - len(specs) if self.funnel.current else 0
        await self._launch(specs)
        label = self.funnel.stage.label
        self.notify(
            f"{label} again: {len(specs)} new"
            + (f", {kept} picked or locked kept" if kept else "")
            + "; z brings back the round before."
        )

    async def action_undo_again(self) -> None:
        if self.funnel is None or self.funnel.current is None:
            return
        undone = self.funnel.undo_again()
        if undone is None:
            self.notify("There is no earlier round of this stage to go back to.")
            return
        await self._cancel_unfinished(undone)
        await self._save_state()
        self._repaint()
        self.notify(f"{self.funnel.stage.label}: back to the round before (its picks and locks).")

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
        cell = self.query_one(ThumbGrid).current
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
        running = self.funnel.unfinished_jobs() if self.funnel else []
        if not running:
            self.app.pop_screen()
            return

        async def decided(leave: bool | None) -> None:
            if leave:
                await self._cancel_unfinished()
                self.app.pop_screen()

        self.app.push_screen(
            ConfirmScreen(f"{len(running)} jobs are still running. Cancel them and leave?"),
            decided,
        )

    def key_escape(self) -> None:
        self.query_one(ThumbGrid).focus()

    # -- painting ---------------------------------------------------------------------------------

    def _cell(self) -> Cell | None:
        cell = self.query_one(ThumbGrid).current
        if cell is None:
            self.notify("Nothing here yet: type a prompt and press enter.")
        return cell

    def _show_newest(self) -> None:
        """The cursor jumps to a result just asked for, on whatever page it lands."""
        grid = self.query_one(ThumbGrid)
        grid.cursor = max(0, len(grid.cells) - 1)
        self._repaint_feedback()

    def _number_of_newest(self) -> int:
        return len(self.query_one(ThumbGrid).cells)

    def _number(self, cell: Cell) -> int:
        return self.query_one(ThumbGrid).cells.index(cell) + 1

    def _repaint(self) -> None:
        funnel = self.funnel
        crumb = Text()
        if funnel is not None:
            for index, (label, count, here) in enumerate(funnel.breadcrumb()):
                if index:
                    crumb.append(" → ", style="dim")
                crumb.append(f"{label} {count}", style="bold reverse" if here else "dim")
        self.query_one("#breadcrumb", Static).update(crumb)
        current = funnel.current if funnel else None
        self.query_one(ThumbGrid).set_cells(current.cells if current else [])
        self._repaint_feedback()
        self.refresh_bindings()

    def _repaint_feedback(self) -> None:
        current = self.funnel.current if self.funnel else None
        bar = Text()
        if current is None:
            bar.append("Type a prompt and press enter: 20 fast drafts over every idle GPU.")
        else:
            cells = current.cells
            done = sum(c.state == "done" for c in cells)
            picked = sum(c.verdict == "picked" for c in cells)
            bar.append(f"{current.stage.label}: {done}/{len(cells)} done", style="bold")
            bar.append(f"   picked {picked}", style="green" if picked else "dim")
            bar.append(f"   denoise {self.denoise:.2f}", style="dim")
            grid = self.query_one(ThumbGrid)
            if grid.pages > 1:
                bar.append(f"   page {grid.page + 1}/{grid.pages}", style="bold")
            stuck = next((c.notice for c in cells if c.notice), None)
            if stuck:
                bar.append(f"   {stuck}", style="bold red")
            cell = self.query_one(ThumbGrid).current
            if cell is not None:
                bar.append(f"   #{self._number(cell)} seed {cell.seed}", style="dim")
                if cell.error:
                    bar.append(f"   {cell.error}", style="red")
        self.query_one("#feedback", Static).update(bar, layout=False)  # always one line


def read_pictures(picked: Cell | None, rejected: Cell | None) -> tuple[bytes | None, bytes | None]:
    """The two pictures the vision stage compares (read in a thread: files can be large)."""

    def read(cell: Cell | None) -> bytes | None:
        return cell.image.path.read_bytes() if cell is not None and cell.image else None

    return read(picked), read(rejected)
