"""The round view every flow screen composes: grid, captions, feedback bar, the `round.*` keys.

Judging is the same in every flow, so its keys live here once, with ids
`round.*`: a keymap entry such as `round.pick: space,y` remaps it for every
flow at once. The view works through `RoundActions` (the flow's session);
what only a flow knows — refining, its own panel — is asked for with a
message (`RefineAsked`), and the flow screen answers it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

from imgen_tui.flows.reference_args import parse_reference
from imgen_tui.flows.reference_pins import ReferencePins
from imgen_tui.flows.round_session import RoundSession
from imgen_tui.flows.round_store import RoundActions
from imgen_tui.flows.rounds import Cell, Denoise, Round, mark_for_compare
from imgen_tui.graphs.reference_pin import PinKind
from imgen_tui.graphs.references import KINDS, capability_for
from imgen_tui.scheduler.events import JobCancelled, JobDone, JobFailed, JobPreview
from imgen_tui.store.records import Verdict
from imgen_tui.ui.widgets.grid import ThumbGrid
from imgen_tui.ui.widgets.lora_chips import LoraChips
from imgen_tui.ui.widgets.reference_chips import ReferenceChips
from imgen_tui.yamlfile import ConfigError

ROUND_BINDINGS: list[Binding | tuple[str, str] | tuple[str, str, str]] = [
    Binding("left,h", "move(-1)", "Left", show=False, id="round.left"),
    Binding("right", "move(1)", "Right", show=False, id="round.right"),
    Binding("up,k", "move_row(-1)", "Up", show=False, id="round.up"),
    Binding("down,j", "move_row(1)", "Down", show=False, id="round.down"),
    Binding("space,p", "verdict('picked')", "Pick", id="round.pick"),
    Binding("x", "verdict('rejected')", "Reject", id="round.reject"),
    Binding("u", "verdict('none')", "Clear", show=False, id="round.clear"),
    Binding("l", "lock", "Lock seed", id="round.lock"),
    Binding("m", "more_like_this", "More like", id="round.more"),
    Binding("plus,equals_sign", "nudge(1)", "Denoise +", show=False, id="round.nudge_up"),
    Binding("minus", "nudge(-1)", "Denoise -", show=False, id="round.nudge_down"),
    Binding("r", "refine", "Refine", id="round.refine"),
    Binding("U", "upscale", "Upscale", show=False, id="round.upscale"),
    Binding("enter", "lightbox", "View", show=False, id="round.lightbox"),
    Binding("c", "compare", "Compare", show=False, id="round.compare"),
    Binding("a", "mark", "Mark A/B", show=False, id="round.mark"),
    Binding("g", "again", "Again", id="round.again"),
    Binding("z", "undo_again", "Undo again", show=False, id="round.undo_again"),
    Binding("P", "reference('pose')", "Keep pose", show=False, id="round.ref_pose"),
    Binding("F", "reference('face')", "Keep face", show=False, id="round.ref_face"),
    Binding("S", "reference('style')", "Keep style", show=False, id="round.ref_style"),
    Binding("R", "reference_file", "Reference file", show=False, id="round.ref_file"),
]
FARM_CHECK_SECONDS = 1.0  # how often waiting cells look at the nodes they wait for


class CellGrid(ThumbGrid):
    """The thumbnail grid with a fixed number of columns (beside a form: the concept builder)."""

    def __init__(self, renderer: str, *, columns: int, page_size: int, **kwargs: Any) -> None:
        super().__init__(renderer, page_size=page_size, **kwargs)
        self._columns = columns

    @property
    def columns(self) -> int:
        return self._columns

    def on_mount(self) -> None:
        self.styles.grid_size_columns = self._columns  # over the theme's funnel-wide grid


class RoundView(Vertical):
    BINDINGS = ROUND_BINDINGS

    @dataclass
    class RefineAsked(Message):
        """`r`: the flow screen opens its refine panel (the cell under the cursor, if any)."""

        view: RoundView
        cell: Cell | None

        @property
        def control(self) -> RoundView:
            return self.view

    @dataclass
    class Changed(Message):
        """The round changed (a new round, a verdict): the flow screen may repaint its panel."""

        view: RoundView

        @property
        def control(self) -> RoundView:
            return self.view

    def __init__(
        self,
        renderer: str,
        *,
        denoise: Denoise,
        columns: int | None = None,
        page_size: int = 20,
        hint: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.renderer = renderer
        self.denoise = denoise
        self.columns, self.page_size = columns, page_size
        self.hint = hint
        self.actions: RoundActions | None = None
        self.label = "Round"

    def on_mount(self) -> None:
        self.set_interval(FARM_CHECK_SECONDS, self._check_farm)

    def _check_farm(self) -> None:
        """Cells whose node went down (or with no node up at all) say so."""
        scheduler = getattr(self.app, "engine", None)
        scheduler = getattr(scheduler, "scheduler", None)
        if self.actions is None or scheduler is None:
            return
        nodes = {node_id: (r.state, r.state_reason) for node_id, r in scheduler.nodes.items()}
        if self.actions.history.note_farm(nodes) and self.app.screen is self.screen:
            self.grid.refresh_cells()
            self.repaint_feedback()

    def compose(self) -> ComposeResult:
        """`columns=None`: the grid fits its columns to the space and the images (the funnel)."""
        if self.columns is None:
            yield ThumbGrid(self.renderer, page_size=self.page_size, id="grid")
        else:
            yield CellGrid(self.renderer, columns=self.columns, page_size=self.page_size, id="grid")
        yield ReferenceChips(id="reference-chips")
        yield LoraChips(id="lora-chips")
        yield Static("", id="feedback")

    @property
    def grid(self) -> ThumbGrid:
        return self.query_one(ThumbGrid)

    @property
    def current(self) -> Round | None:
        return self.actions.current if self.actions is not None else None

    def cell(self) -> Cell | None:
        return self.grid.current

    def number(self, cell: Cell) -> int:
        return self.grid.cells.index(cell) + 1

    # -- painting ---------------------------------------------------------------------------------

    def show_round(self) -> None:
        current = self.current
        self.grid.set_cells(current.cells if current else [])
        self.repaint_feedback()
        pins, chips = self.reference_pins(), self.query_one(ReferenceChips)
        if chips.pins is not pins or len(chips.chip_list) != len(pins.pins if pins else []):
            self.run_worker(chips.show(pins), group="chips")
        self.show_loras()

    def show_loras(self) -> None:
        """The carried LoRA stack's chips, repainted only when the stack changed."""
        session = self.actions if isinstance(self.actions, RoundSession) else None
        loras = self.query_one(LoraChips)
        if not loras.shows(session):
            self.run_worker(loras.show(session), group="lora-chips")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """P / F / S belong to flows that take references; elsewhere the screen's own keys win.

        (The keyframe screen plays with P and cycles fps with F, the explorer
        draws new seeds with S: a disabled binding lets Textual go on to them.)
        """
        if action in ("reference", "reference_file"):
            return self.reference_pins() is not None
        return True

    async def _learn_references(self, cell: Cell) -> None:
        """A pose's map or a style's path came with this picture: the chips say so."""
        pins = self.reference_pins()
        if pins is not None and cell.image is not None and await pins.learn_from(cell.image):
            self.query_one(ReferenceChips).refresh_texts()

    def reference_pins(self) -> ReferencePins | None:
        """The flow session's pinned references, if the flow takes them."""
        pins = getattr(self.actions, "references", None)
        return pins if isinstance(pins, ReferencePins) else None

    def job_changed(self, event: object, cell: Cell) -> None:
        """A scheduler event already applied to `cell`: store what came, repaint what shows it.

        A covered screen is not painted (that repaints the whole top one); it
        catches up when it is back on top.
        """
        job_id = cell.job_id
        if isinstance(event, JobDone) and cell.image is not None and self.actions is not None:
            self.run_worker(self.actions.image_arrived(cell), group="arrived")
            if self.reference_pins() is not None:
                self.run_worker(self._learn_references(cell), group="chips-learn")
        if self.app.screen is not self.screen:
            return
        if isinstance(event, JobPreview):
            widget = self.grid.refresh_job(job_id)
            if widget is not None:
                widget.show_preview(event.image)
            return
        self.grid.refresh_job(job_id)
        if isinstance(event, JobDone | JobFailed | JobCancelled):
            self.repaint_feedback()

    def repaint_feedback(self) -> None:
        current = self.current
        bar = Text()
        if current is None:
            bar.append(f"{self.hint[:1].upper()}{self.hint[1:]}." if self.hint else "")
        else:
            cells = current.cells
            picked = sum(c.verdict == "picked" for c in cells)
            bar.append(f"{self.label}: {current.done}/{len(cells)} done", style="bold")
            bar.append(f"   picked {picked}", style="green" if picked else "dim")
            bar.append(f"   denoise {self.denoise.value:.2f}", style="dim")
            if self.grid.pages > 1:
                bar.append(f"   page {self.grid.page + 1}/{self.grid.pages}", style="bold")
            stuck = next((c.notice for c in cells if c.notice), None)
            if stuck:
                bar.append(f"   {stuck}", style="bold red")
            cell = self.cell()
            if cell is not None:
                bar.append(f"   #{self.number(cell)} seed {cell.seed}", style="dim")
                if cell.error:
                    bar.append(f"   {cell.error}", style="red")
        self.query_one("#feedback", Static).update(bar, layout=False)  # always one line

    # -- the shared keys --------------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        self.grid.move(delta)
        self.call_after_refresh(self.repaint_feedback)

    def action_move_row(self, delta: int) -> None:
        self.grid.move(delta * self.grid.columns)
        self.call_after_refresh(self.repaint_feedback)

    def on_thumb_grid_moved(self) -> None:
        self.repaint_feedback()

    def on_thumb_grid_opened(self) -> None:
        self.action_lightbox()

    async def action_verdict(self, verdict: Verdict) -> None:
        cell = self._cell_or_say()
        if cell is not None:
            await self.judge(cell, verdict)

    async def judge(self, cell: Cell, verdict: Verdict) -> None:
        """Pick, reject or clear a cell (the same verdict again clears it), also in the lightbox."""
        if self.actions is None:
            return
        await self.actions.judge(cell, verdict)
        if self.app.screen is self.screen:  # under the lightbox: repainted on resume
            self.grid.refresh_job(cell.job_id)
            self.repaint_feedback()
        self.post_message(self.Changed(self))

    async def action_lock(self) -> None:
        cell = self._cell_or_say()
        if cell is None or self.actions is None:
            return
        locked = await self.actions.toggle_seed_lock(cell)
        self.grid.refresh_job(cell.job_id)
        self.notify(f"Seed {cell.seed} {'locked' if locked else 'unlocked'}")

    async def action_more_like_this(self) -> None:
        cell = self._cell_or_say()
        if cell is None or self.actions is None:
            return
        number = self.number(cell)
        try:
            await self.actions.more_like_this(cell, self.denoise.value)
        except ValueError as error:
            self.notify(str(error), severity="warning")
            return
        self.show_newest()
        self.notify(
            f"More like #{number} at denoise {self.denoise.value:.2f}: #{len(self.grid.cells)}"
        )

    def action_nudge(self, direction: int) -> None:
        self.denoise.nudge(direction)
        self.repaint_feedback()

    def action_refine(self) -> None:
        self.post_message(self.RefineAsked(self, self.cell()))

    async def action_upscale(self) -> None:
        cell = self._cell_or_say()
        if cell is None or self.actions is None:
            return
        try:
            await self.actions.upscale(cell)
        except ValueError as error:
            self.notify(str(error), severity="warning")
            return
        self.show_newest()

    async def action_again(self) -> None:
        if self.actions is None or self.current is None:
            return
        try:
            fresh = await self.actions.again()
        except ValueError as error:
            self.notify(str(error), severity="warning")
            return
        self.show_round()
        self.post_message(self.Changed(self))
        kept = sum(cell.image is not None for cell in fresh.cells)
        self.notify(
            f"{self.label} again: {len(fresh.cells) - kept} new"
            + (f", {kept} picked or locked kept" if kept else "")
            + "; z brings back the round before."
        )

    async def action_undo_again(self) -> None:
        if self.actions is None or self.current is None:
            return
        if await self.actions.undo_again() is None:
            self.notify("There is no earlier round here to go back to.")
            return
        self.show_round()
        self.post_message(self.Changed(self))
        self.notify(f"{self.label}: back to the round before (its picks and locks).")

    def action_lightbox(self) -> None:
        """The image large; judging there is judging here, and the cursor follows it back."""
        grid = self.grid
        ready = [c for c in grid.cells if c.image is not None]
        cell = self.cell()
        if cell is None or cell.image is None:
            self.notify("That image is not finished yet.")
            return
        from imgen_tui.ui.screens.lightbox import LightboxScreen

        def closed(shown: Cell | None) -> None:
            if shown is not None and shown in grid.cells:
                grid.cursor = grid.cells.index(shown)
                self.repaint_feedback()

        self.app.push_screen(
            LightboxScreen(ready, ready.index(cell), self.renderer, self.judge), closed
        )

    def action_compare(self) -> None:
        pair = self.current.compare_pair() if self.current else None
        if pair is None:
            self.notify("Mark two images with a (A, then B), or pick two, to compare them.")
            return
        from imgen_tui.ui.screens.lightbox import CompareScreen

        self.app.push_screen(CompareScreen(pair[0], pair[1], self.renderer))

    def action_mark(self) -> None:
        cell = self._cell_or_say()
        if cell is None or self.current is None:
            return
        mark_for_compare(self.current.cells, cell)
        self.grid.refresh_cells()
        if sum(c.compare is not None for c in self.current.cells) == 2:
            self.notify("A and B marked: c compares them (f flips).")

    def show_newest(self) -> None:
        """The cursor jumps to a result just asked for, on whatever page it lands."""
        self.show_round()
        self.grid.cursor = max(0, len(self.grid.cells) - 1)
        self.repaint_feedback()

    async def action_reference(self, kind: PinKind) -> None:
        """P / F / S: keep the pose, face or style of the picture under the cursor."""
        cell = self._cell_or_say()
        pins = self.reference_pins()
        if cell is None:
            return
        if pins is None:
            self.notify("This flow does not take references.", severity="warning")
            return
        if cell.image is None:
            self.notify("That image is not finished yet.")
            return
        try:
            pin = await pins.pin(kind, cell.image)
        except ValueError as error:
            self.notify(str(error), severity="warning")
            return
        await self.query_one(ReferenceChips).show(pins)
        lacking = self._nodes_lacking(capability_for(kind))
        note = f"; {lacking} cannot run it" if lacking else ""
        self.notify(
            f"Keeping the {kind} of #{self.number(cell)} from the next round on "
            f"(strength {pin.strength:.1f}){note}"
        )

    def action_reference_file(self) -> None:
        """R: a reference from a picture file, typed as the CLI's --ref KIND:IMAGE[:STRENGTH]."""
        from imgen_tui.ui.screens.modals import AskLineScreen

        kinds = ", ".join(KINDS)
        self.app.push_screen(
            AskLineScreen(f"Reference from a file: KIND:PATH[:STRENGTH], KIND one of {kinds}",
                          "pose:~/Pictures/pose.png:0.8"),
            self._reference_typed,
        )  # fmt: skip

    async def _reference_typed(self, typed: str | None) -> None:
        pins = self.reference_pins()
        if typed is None or pins is None:
            return
        try:
            kind, path, strength = await asyncio.to_thread(parse_reference, typed, "reference")
            pin = await pins.pin_file(cast(PinKind, kind), path, strength)
        except (ConfigError, ValueError) as error:
            self.notify(str(error), severity="warning", timeout=10)
            return
        await self.query_one(ReferenceChips).show(pins)
        lacking = self._nodes_lacking(capability_for(pin.kind))
        note = f"; {lacking} cannot run it" if lacking else ""
        self.notify(
            f"Keeping the {pin.kind} of {Path(path).name} from the next round on "
            f"(strength {pin.strength:.1f}){note}"
        )

    def _nodes_lacking(self, capability: str) -> str:
        scheduler = getattr(getattr(self.app, "engine", None), "scheduler", None)
        nodes = getattr(scheduler, "nodes", {})
        return ", ".join(
            sorted(n for n, r in nodes.items() if r.confirmed and capability not in r.capabilities)
        )

    def on_reference_chips_emptied(self) -> None:
        self.grid.focus()

    def on_lora_chips_emptied(self) -> None:
        self.grid.focus()

    def _cell_or_say(self) -> Cell | None:
        cell = self.cell()
        if cell is None:
            self.notify(f"Nothing here yet: {self.hint or 'start a round first'}.")
        return cell
