"""The LoRA explorer screen: the browser (left), the round view (centre), the controls (right).

The screen is the three columns and this flow's keys; judging is the shared
`RoundView`, and every action that changes the session goes through
`ExplorerSession`, the same code the tests drive without a terminal. The
catalog is asked of the nodes when the screen opens (each node's answer
cached with its loader list) and again on ctrl+r.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from PIL import Image
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from imgen_tui.comfy.lora_cache import LoraDiscoveryCache
from imgen_tui.flows.explorer import AB, ExplorerError, LoraExplorer
from imgen_tui.flows.explorer_config import ExplorerConfig, load_explorer_config
from imgen_tui.flows.explorer_session import ExplorerSession
from imgen_tui.flows.lora_catalog import build_catalog, discover_farm, nodes_for_stack
from imgen_tui.flows.lora_previews import LoraPreviews
from imgen_tui.flows.rounds import Cell, Denoise, Round
from imgen_tui.flows.stacks import describe_stack, stack_from_json
from imgen_tui.llm.ollama_stages import LlmError
from imgen_tui.locations import user_cache_dir
from imgen_tui.scheduler.events import JobFailed
from imgen_tui.ui.graphics import image_widget
from imgen_tui.ui.messages import JobUpdate
from imgen_tui.ui.screens.explorer_modals import FeedbackScreen, LoraCompareScreen
from imgen_tui.ui.screens.modals import leave_cancelling
from imgen_tui.ui.widgets.lora_browser import LoraBrowser
from imgen_tui.ui.widgets.node_strip import NodeStrip
from imgen_tui.ui.widgets.round_view import RoundView

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp

HINT = "s on a LoRA: its strength sweep beside the no-LoRA baseline; a a a, then b: an A/B"


class ExplorerScreen(Screen[None]):
    DEFAULT_CSS = """
    ExplorerScreen #explorer-body { height: 1fr; }
    ExplorerScreen #browser { width: 30%; padding: 0 1 0 0; }
    ExplorerScreen #round { width: 1fr; }
    ExplorerScreen #controls { width: 28%; padding: 0 1; }
    ExplorerScreen #explorer-settings { height: auto; margin: 1 0 0 0; }
    ExplorerScreen #explorer-cell { height: auto; margin: 1 0 0 0; }
    ExplorerScreen #lora-preview { height: 10; width: 1fr; margin: 1 0 0 0; display: none; }
    ExplorerScreen #explorer-rounds { height: 1fr; min-height: 4; }
    """
    BINDINGS = [
        Binding("s", "showcase", "Showcase", id="explorer.showcase"),
        Binding("a", "mark", "Mark A/B", id="explorer.mark"),
        Binding("b", "ab", "A/B grid", id="explorer.ab"),
        Binding("v", "compare_ab", "Compare A/B", id="explorer.compare"),
        Binding("t", "trigger_words", "Trigger words", id="explorer.trigger"),
        Binding(
            "right_square_bracket",
            "nudge('model', 1)",
            "Model +",
            show=False,
            id="explorer.model_up",
        ),
        Binding(
            "left_square_bracket",
            "nudge('model', -1)",
            "Model -",
            show=False,
            id="explorer.model_down",
        ),
        Binding(
            "right_curly_bracket", "nudge('clip', 1)", "Clip +", show=False, id="explorer.clip_up"
        ),
        Binding(
            "left_curly_bracket", "nudge('clip', -1)", "Clip -", show=False, id="explorer.clip_down"
        ),
        Binding("C", "checkpoint", "Checkpoint", show=False, id="explorer.checkpoint"),
        Binding("N", "seeds", "New seeds", show=False, id="explorer.seeds"),
        Binding("f", "filter_family", "Family", show=False, id="explorer.family"),
        Binding("o", "filter_node", "Node", show=False, id="explorer.node"),
        Binding("w", "filter_works", "Fits checkpoint", show=False, id="explorer.works"),
        Binding("slash", "search", "Search", id="explorer.search"),
        Binding("e", "edit_prompt", "Prompt", show=False, id="explorer.prompt"),
        Binding("O", "carry", "Carry into…", show=False, id="explorer.carry"),
        Binding("ctrl+r", "refresh", "Refresh LoRAs", show=False, id="explorer.refresh"),
        Binding("q", "leave", "Back/quit", id="explorer.quit"),
    ]
    HELP = (
        "**LoRA explorer.** Left: every LoRA the nodes have (type **/** to search; **f** "
        "family, **o** node, **w** only those that fit the checkpoint). **s** sweeps the "
        "LoRA under the cursor over the strengths of explorer.yaml on fixed seeds, always "
        "beside the no-LoRA baseline on the same seeds. **a** marks it A, then B (the same "
        "LoRA at another strength works too), **b** makes A, B, A+B and neither, **v** "
        "compares A and B with a difference overlay (**d**). **t** puts its trigger words "
        "in the prompt, **[ ]** / **{ }** nudge model / clip strength, **C** the "
        "checkpoint, **N** new seeds, **ctrl+r** asks the nodes again. Jobs go only to "
        "nodes that have every LoRA of the stack; the right column says which, with the "
        "LoRA's preview picture where its node has one. **O** carries the picture under "
        "the cursor, with its LoRA stack, into the funnel or the concept builder."
    )

    def __init__(self, resume: str | None = None, config: ExplorerConfig | None = None) -> None:
        super().__init__()
        self.resume_id = resume
        self.config = config or load_explorer_config()
        self.session: ExplorerSession | None = None
        more = self.config.more_like_this
        self.denoise = Denoise(more.denoise, more.nudge)
        self.catalog_ready = False
        #: the LoRA whose preview picture is on screen (None: none is)
        self.preview_shown: str | None = None
        self.previews: LoraPreviews | None = None

    @property
    def imgen(self) -> ImgenApp:
        return self.app  # type: ignore[return-value]

    @property
    def explorer(self) -> LoraExplorer:
        assert self.session is not None
        return self.session.explorer

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="explorer-body"):
            yield LoraBrowser(id="browser")
            yield RoundView(
                self.imgen.renderer,
                denoise=self.denoise,
                columns=len(self.config.seeds),
                page_size=len(self.config.seeds) * 4,
                hint=HINT,
                id="round",
            )
            with Vertical(id="controls"):
                yield Label("Prompt", classes="heading")
                yield Input(self.config.prompt, id="explorer-prompt")
                yield Static("", id="explorer-settings")
                yield image_widget(self.imgen.renderer)(None, id="lora-preview")
                yield Static("", id="explorer-cell")
                yield Label("Rounds", classes="heading")
                yield OptionList(id="explorer-rounds")
        yield NodeStrip(self.imgen.engine.scheduler, id="node-strip")
        yield Footer()

    async def on_mount(self) -> None:
        engine = self.imgen.engine
        assert engine.store is not None and engine.scheduler is not None
        explorer = LoraExplorer(self.config, self.imgen.library, engine.farm.models)
        self.previews = LoraPreviews(engine.farm.nodes)
        self.session = ExplorerSession(explorer, engine.store, engine.scheduler)
        view = self.query_one(RoundView)
        view.actions = self.session
        if self.resume_id is not None:
            await self.session.reopen(self.resume_id)
        self.query_one("#explorer-prompt", Input).value = explorer.prompt
        self.query_one(Input).cursor_blink = False
        self.query_one("#lora-list", OptionList).focus()
        self.load_catalog(refresh=False)
        self._repaint()

    # -- the catalog ------------------------------------------------------------------------------

    @work(exclusive=True, group="catalog", exit_on_error=False)
    async def load_catalog(self, refresh: bool) -> None:
        engine = self.imgen.engine
        cache = None if engine.demo else LoraDiscoveryCache(user_cache_dir() / "loras")
        found = await discover_farm(engine.farm.nodes, cache=cache, refresh=refresh)
        catalog = build_catalog(found)
        for node in found:
            if node.error is not None:
                self.notify(f"{node.error}; its LoRAs are not listed", severity="warning")
        self.explorer.catalog = catalog
        if self.previews is not None:
            if refresh:
                self.previews.forget()
            self.previews.know(found)
        browser = self.query_one(LoraBrowser)
        browser.set_catalog(catalog)
        self.catalog_ready = True
        self._repaint_controls()
        self._show_preview()
        if refresh:
            self.notify(f"{len(catalog)} LoRAs on {len(found)} nodes")

    def on_unmount(self) -> None:
        if self.previews is not None:
            self.previews.close()

    def action_refresh(self) -> None:
        self.load_catalog(refresh=True)

    # -- browser keys -----------------------------------------------------------------------------

    def _lora_or_say(self) -> str | None:
        name = self.query_one(LoraBrowser).highlighted_name
        if name is None:
            self.notify("Put the cursor on a LoRA in the list (left) first.")
        return name

    def action_search(self) -> None:
        self.query_one("#lora-search", Input).focus()

    def key_escape(self) -> None:
        """Escape clears the search (from anywhere) and goes back to the list."""
        search = self.query_one("#lora-search", Input)
        if search.value:
            search.value = ""
        self.query_one("#lora-list", OptionList).focus()

    @on(Input.Submitted, "#lora-search")
    def _searched(self) -> None:
        self.query_one("#lora-list", OptionList).focus()

    def action_filter_family(self) -> None:
        self.notify(f"Family: {self.query_one(LoraBrowser).cycle_family()}")

    def action_filter_node(self) -> None:
        self.notify(f"Node: {self.query_one(LoraBrowser).cycle_node()}")

    def action_filter_works(self) -> None:
        on_now = self.query_one(LoraBrowser).toggle_works_with()
        family = self.explorer.family
        self.notify(f"Only LoRAs that fit {family}" if on_now else "LoRAs of every family")

    @on(OptionList.OptionHighlighted, "#lora-list")
    def _lora_highlighted(self) -> None:
        self._repaint_controls()
        self._show_preview()

    # -- the preview picture ----------------------------------------------------------------------

    def _show_preview(self) -> None:
        """The picture of the LoRA under the cursor; another LoRA's never stays up meanwhile."""
        name = self.query_one(LoraBrowser).highlighted_name
        if name != self.preview_shown:
            self._paint_preview(None, None)
        self._load_preview(name)

    @work(exclusive=True, group="preview", exit_on_error=False)
    async def _load_preview(self, name: str | None) -> None:
        """Fetched (once per node and file, see `LoraPreviews`) and decoded off the loop."""
        if name is None or self.previews is None:
            return
        picture = await self.previews.picture(name)
        if self.query_one(LoraBrowser).highlighted_name == name:
            self._paint_preview(name, picture)

    def _paint_preview(self, name: str | None, picture: Image.Image | None) -> None:
        widget = self.query_one("#lora-preview")
        if getattr(widget, "image", None) is not picture:
            widget.image = picture  # type: ignore[attr-defined]
        widget.display = picture is not None
        self.preview_shown = name if picture is not None else None

    @on(OptionList.OptionSelected, "#lora-list")
    async def _lora_chosen(self) -> None:
        await self.action_showcase()

    # -- controls ---------------------------------------------------------------------------------

    def _pull_prompt(self) -> None:
        self.explorer.prompt = self.query_one("#explorer-prompt", Input).value.strip()

    @on(Input.Submitted, "#explorer-prompt")
    def _prompt_entered(self) -> None:
        self._pull_prompt()
        self.query_one("#lora-list", OptionList).focus()
        self._repaint_controls()

    def action_edit_prompt(self) -> None:
        self.query_one("#explorer-prompt", Input).focus()

    def action_carry(self) -> None:
        """The picture under the cursor into the funnel or the concept builder, with its stack.

        Each LoRA goes with the family its file names (else the round's
        checkpoint family: it was made on that), so the target never patches
        it into a model of another family.
        """
        current = self.session.current if self.session else None
        cell = self.query_one(RoundView).cell()
        if current is None or cell is None or cell.image is None:
            self.notify("Put the cursor on a made picture first, then O carries it into a flow.")
            return
        from imgen_tui.flows.carry import CARRY_TARGETS, Carried
        from imgen_tui.ui.screens.carry import CarryChooser, carry_into

        family = current.meta.get("family")
        round_family = family if isinstance(family, str) else self.explorer.family
        stack = tuple(
            dataclasses.replace(lora, family=self._lora_family(lora.name) or round_family)
            for lora in self.explorer.plan_of(current, cell).stack
        )
        carried = Carried(
            current.prompt, current.negative, str(cell.image.id), stack, cell.image.path
        )
        targets = tuple(each for each in CARRY_TARGETS if each[0] != "explorer")

        async def chosen(target: str | None) -> None:
            if target is not None:
                await carry_into(self.app, carried, target)

        self.app.push_screen(CarryChooser(targets), chosen)

    def _lora_family(self, name: str) -> str | None:
        entry = next((e for e in self.explorer.catalog if e.name == name), None)
        return entry.family if entry else None

    def action_trigger_words(self) -> None:
        name = self._lora_or_say()
        if name is None:
            return
        self._pull_prompt()
        try:
            added = self.explorer.insert_trigger_words(name)
        except ExplorerError as error:
            self.notify(str(error), severity="warning")
            return
        self.query_one("#explorer-prompt", Input).value = self.explorer.prompt
        self.notify(f"Added {', '.join(added)}" if added else "The prompt has them already.")

    def action_nudge(self, which: str, direction: int) -> None:
        value = self.explorer.nudge(which, direction)
        self.notify(f"{which.capitalize()} strength {value:g}")
        self._repaint_controls()

    def action_checkpoint(self) -> None:
        family = self.explorer.cycle_family()
        browser = self.query_one(LoraBrowser)
        browser.checkpoint_family = family
        browser.refilter()
        self.notify(f"Checkpoint {self.explorer.checkpoint} ({family})")
        self._repaint_controls()

    def action_seeds(self) -> None:
        seeds = self.explorer.roll_seeds()
        self.notify(f"Seeds {', '.join(str(s) for s in seeds)}")
        self._repaint_controls()

    # -- rounds -----------------------------------------------------------------------------------

    async def action_showcase(self) -> None:
        name = self._lora_or_say()
        if name is None or self.session is None:
            return
        self._pull_prompt()
        await self._start(self.session.showcase(name))

    def action_mark(self) -> None:
        name = self._lora_or_say()
        if name is None:
            return
        try:
            letter = self.explorer.mark(name)
        except ExplorerError as error:
            self.notify(str(error), severity="warning")
            return
        marked = self.explorer.marks[-1]
        self.notify(
            f"{letter} = {marked.describe()}" + (": b makes the grid" if letter == "B" else "")
        )
        self._repaint_marks()

    async def action_ab(self) -> None:
        if self.session is None:
            return
        self._pull_prompt()
        await self._start(self.session.ab())

    async def _start(self, making: Awaitable[Round]) -> None:
        """Run a round-making coroutine; a refusal is a notification, nothing is half-made."""
        try:
            await making
        except ExplorerError as error:
            self.notify(str(error), severity="warning", timeout=10)
            return
        if self.explorer.notice:
            self.notify(f"Some nodes cannot run it: {self.explorer.notice}", timeout=8)
        view = self.query_one(RoundView)
        view.grid.cursor = 0
        view.grid.focus()
        self._repaint()

    def action_compare_ab(self) -> None:
        """A against B on the seed under the cursor (or the first), with the overlay key."""
        current = self.session.current if self.session else None
        if current is None or current.recipe.name != AB:
            self.notify("Make an A/B grid first (a, a, b), then v compares A and B.")
            return
        cursor = self.query_one(RoundView).cell()
        seed = cursor.seed if cursor is not None else current.cells[0].seed
        by_label: dict[str, Cell] = {}
        for cell in current.cells:
            label = self.explorer.plan_of(current, cell).label
            if cell.seed == seed and cell.image is not None and label[:2] in ("A ", "B "):
                by_label.setdefault(label[0], cell)
        if set(by_label) != {"A", "B"}:
            self.notify(f"A and B on seed {seed} are not both finished yet.")
            return
        a, b = by_label["A"], by_label["B"]
        assert a.image is not None and b.image is not None
        labels = (a.label, b.label)
        self.app.push_screen(LoraCompareScreen(a.image, b.image, self.imgen.renderer, labels))

    @on(RoundView.RefineAsked)
    def _refine(self, event: RoundView.RefineAsked) -> None:
        session = self.session
        if session is None or session.current is None:
            self.notify("Make a showcase first: s on a LoRA.")
            return
        self._pull_prompt()
        stack, _ = self.explorer.refine_stack(event.cell, "")

        async def given(feedback: str | None) -> None:
            if feedback is None:
                return
            try:
                result, kept = await session.refine(feedback, event.cell, self.imgen.llm_stages)
            except (ExplorerError, LlmError) as error:
                self.notify(str(error), severity="warning", timeout=10)
                return
            self.query_one("#explorer-prompt", Input).value = self.explorer.prompt
            if result.notice:
                self.notify(result.notice, timeout=8)
            self.notify(f"Refined with {describe_stack(kept)}: {result.prompt[:80]}")
            self.query_one(RoundView).grid.cursor = 0
            self._repaint()

        about = f"Refine {describe_stack(stack)} — the stack and its trigger words stay"
        self.app.push_screen(FeedbackScreen(about), given)

    @on(OptionList.OptionSelected, "#explorer-rounds")
    async def _round_chosen(self, event: OptionList.OptionSelected) -> None:
        if self.session is not None and event.option_index != self.session.history.position:
            await self.session.go_to(event.option_index)
            self._repaint()

    @on(RoundView.Changed)
    def _round_changed(self) -> None:
        self._repaint_history()
        self._repaint_cell()

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
            self._repaint_cell()

    def on_screen_resume(self) -> None:
        if self.session is not None:
            self.query_one(RoundView).show_round()

    def on_key(self) -> None:
        """The cell under the grid's cursor may have changed: its panel follows."""
        self.call_after_refresh(self._repaint_cell)

    def action_leave(self) -> None:
        leave_cancelling(self, self.session)

    # -- painting ---------------------------------------------------------------------------------

    def _repaint(self) -> None:
        view = self.query_one(RoundView)
        current = self.session.current if self.session else None
        view.label = current.recipe.label if current else "Round"
        view.show_round()
        self._repaint_history()
        self._repaint_controls()

    def _repaint_marks(self) -> None:
        browser = self.query_one(LoraBrowser)
        marks: dict[str, str] = {}
        for letter, lora in zip("AB", self.explorer.marks, strict=False):
            marks[lora.name] = marks.get(lora.name, "") + letter
        browser.marks = marks
        browser.refilter()
        self._repaint_controls()

    def _repaint_controls(self) -> None:
        if self.session is None:
            return
        explorer = self.explorer
        text = Text()
        text.append("checkpoint ", style="dim").append(f"{explorer.checkpoint}\n", style="bold")
        text.append("strength ", style="dim").append(
            f"model {explorer.model_strength:g} · clip {explorer.clip_strength:g}\n"
        )
        text.append("sweep ", style="dim").append(
            "baseline, " + ", ".join(f"{s:g}" for s in self.config.sweep) + "\n"
        )
        text.append("seeds ", style="dim").append(", ".join(str(s) for s in explorer.seeds) + "\n")
        marks = " · ".join(
            f"{letter} {m.describe()}" for letter, m in zip("AB", explorer.marks, strict=False)
        )
        text.append("marked ", style="dim").append(marks or "nothing (a marks)", style="magenta")
        name = self.query_one(LoraBrowser).highlighted_name
        if name is not None:
            having, lacking = nodes_for_stack(explorer.catalog, [name])
            text.append("\n\nrow ", style="dim").append(name, style="bold")
            text.append("\nruns on ", style="dim").append(
                ", ".join(having) or "no node", style="green"
            )
            if lacking:
                text.append("\nnot on ", style="dim").append(
                    "; ".join(lacking.values()), style="yellow"
                )
        self.query_one("#explorer-settings", Static).update(text)
        self._repaint_cell()

    def _repaint_cell(self) -> None:
        if self.session is None or not self.is_mounted:
            return
        current = self.session.current
        cell = self.query_one(RoundView).cell()
        text = Text()
        if current is not None and cell is not None:
            plan = self.explorer.plan_of(current, cell)
            text.append("cell ", style="dim").append(f"{plan.label or '-'}", style="bold cyan")
            text.append(f"  seed {cell.seed}\n", style="dim")
            text.append("stack ", style="dim").append(describe_stack(plan.stack) + "\n")
            if plan.stack:
                having, lacking = nodes_for_stack(
                    self.explorer.catalog, [lora.name for lora in plan.stack]
                )
                text.append("goes to ", style="dim").append(", ".join(having) or "no node")
                if lacking:
                    text.append("\nrefused ", style="dim").append(
                        "; ".join(lacking.values()), style="yellow"
                    )
        self.query_one("#explorer-cell", Static).update(text)

    def _repaint_history(self) -> None:
        if self.session is None:
            return
        history = self.session.history
        options = self.query_one("#explorer-rounds", OptionList)
        options.clear_options()
        options.add_options(
            [Option(_describe_round(i, r), id=f"round:{i}") for i, r in enumerate(history.rounds)]
        )
        if history.rounds:
            options.highlighted = history.position
        else:
            options.add_option(Option("(none yet)", disabled=True))


def _describe_round(index: int, stage_round: Round) -> Text:
    meta = stage_round.meta
    text = Text(f"{index + 1:>2} {stage_round.recipe.label} ", style="bold")
    if isinstance(meta.get("lora"), str):
        text.append(str(meta["lora"]).rsplit("/", 1)[-1].removesuffix(".safetensors"))
    elif meta.get("marks"):
        text.append(" vs ".join(m.describe() for m in stack_from_json(meta["marks"])))
    else:
        text.append(describe_stack(stack_from_json(meta.get("stack"))))
    picked = sum(c.verdict == "picked" for c in stage_round.cells)
    if picked:
        text.append(f"  ✔{picked}", style="green")
    return text
