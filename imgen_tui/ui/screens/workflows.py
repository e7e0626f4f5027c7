"""The workflow browser (seed 004): cards for every workflow, filtered as you type.

The search box narrows by words, the intent bar ("I want to… upscale") by
what the workflows take and give (flows/workflow_filter.py, no LLM). The
cards come from every node's `/object_info` (asked once when the screen
opens, `r` asks again): Ready / Missing N per node, model sizes, and a time
estimate from the scheduler's learned speeds. Enter opens a card's form.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from imgen_tui.flows.farm_info import FarmObjectInfo, farm_object_info
from imgen_tui.flows.workflow_catalog import WorkflowCard, collect_cards, model_sizes
from imgen_tui.flows.workflow_filter import describe_intent, filter_workflows
from imgen_tui.flows.workflow_run import estimate, latest_session
from imgen_tui.locations import bundled_dir, user_config_dir
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.ui.widgets.node_strip import NodeStrip
from imgen_tui.ui.widgets.workflow_card import card_text

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp


def browser_folders(extra: Sequence[Path] = ()) -> list[tuple[str, Path]]:
    """Category label and folder: what ships, the user's folder, any extra ones."""
    folders = [("shipped", bundled_dir("workflows")), ("user", user_config_dir() / "workflows")]
    return folders + [(folder.name, folder) for folder in extra]


class WorkflowsScreen(Screen[None]):
    DEFAULT_CSS = """
    WorkflowsScreen #browser { height: 1fr; padding: 0 1; }
    WorkflowsScreen #cards { height: 1fr; }
    WorkflowsScreen #intent-line { color: $text-muted; }
    """
    BINDINGS = [
        Binding("slash", "focus_search", "Search", id="workflows.search"),
        Binding("i", "focus_intent", "I want to…", id="workflows.intent"),
        Binding("o", "reopen", "Reopen last run", id="workflows.reopen"),
        Binding("ctrl+r", "reload", "Ask the nodes again", id="workflows.reload"),
        Binding("escape", "focus_cards", "Cards", show=False, id="workflows.cards"),
        Binding("q", "leave", "Back", id="workflows.quit"),
    ]
    HELP = (
        "**Workflows.** Every workflow the app can see, with Ready / Missing per node. "
        "**/** search by words, **i** say what you want to do (upscale, image to video, "
        "text to image), **enter** on a card opens its form, **o** reopens the card's last run "
        "as it was left, **ctrl+r** asks the nodes again."
    )

    def __init__(self, extra_folders: Sequence[Path] = ()) -> None:
        super().__init__()
        self.extra_folders = list(extra_folders)
        self.cards: list[WorkflowCard] = []
        self.shown: list[WorkflowCard] = []
        self.farm_info: FarmObjectInfo | None = None
        self.sizes: dict[tuple[str, str], int] = {}
        self.seconds: dict[str, float | None] = {}
        self.loaded = False

    @property
    def imgen(self) -> ImgenApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="browser"):
            yield Input(
                placeholder="I want to… (upscale, image to video, text to image)", id="intent"
            )
            yield Static("", id="intent-line")
            yield Input(placeholder="search: name, family, folder, description", id="search")
            yield Label("Workflows", classes="heading")
            yield OptionList(Option("asking the nodes what they have…", disabled=True), id="cards")
        yield NodeStrip(self.imgen.engine.scheduler, id="node-strip")
        yield Footer()

    def on_mount(self) -> None:
        for box in self.query(Input):
            box.cursor_blink = False
        self.query_one("#cards", OptionList).focus()
        self.load_cards()

    @work(exclusive=True, group="cards", exit_on_error=False)
    async def load_cards(self) -> None:
        engine = self.imgen.engine
        farm = engine.farm
        self.farm_info = await farm_object_info(farm)
        self.cards = await asyncio.to_thread(
            collect_cards, browser_folders(self.extra_folders), self.farm_info, dict(farm.models)
        )
        folders = sorted({ref.folder for card in self.cards for ref in card.models})
        self.sizes = await model_sizes(farm, folders)
        self.seconds = {card.key: self._estimate(card) for card in self.cards}
        self.loaded = True
        self.repaint()
        if self.farm_info.errors:
            names = ", ".join(self.farm_info.errors)
            self.notify(f"{names} did not answer: shown as unreachable", severity="warning")

    def _estimate(self, card: WorkflowCard) -> float | None:
        if card.info is None or not card.graph or card.runnable_problem() is not None:
            return None
        spec = JobSpec.from_graph(card.graph, card.info.family, needs=card.info.needs)
        found = estimate([spec], self.imgen.engine.scheduler)
        return None if found.unrunnable else found.seconds

    # -- filtering --------------------------------------------------------------------------------

    @on(Input.Changed)
    def _typed(self) -> None:
        if self.loaded:
            self.repaint()

    @on(Input.Submitted)
    def _entered(self) -> None:
        self.action_focus_cards()

    def repaint(self) -> None:
        search = self.query_one("#search", Input).value
        intent_text = self.query_one("#intent", Input).value
        self.shown, intent = filter_workflows(self.cards, search=search, intent_text=intent_text)
        self.query_one("#intent-line", Static).update(
            describe_intent(intent, intent_text, self.shown)
        )
        options = self.query_one("#cards", OptionList)
        options.clear_options()
        options.add_options(
            [
                Option(card_text(card, self.sizes, self.seconds.get(card.key)), id=card.key)
                for card in self.shown
            ]
        )
        if not self.shown:
            options.add_option(
                Option("no workflow fits: change the search or the intent", disabled=True)
            )
        else:
            options.highlighted = 0

    # -- opening a card ---------------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#cards")
    def _opened(self, event: OptionList.OptionSelected) -> None:
        card = next((c for c in self.shown if c.key == event.option.id), None)
        if card is not None:
            self._open(card)

    def _open(self, card: WorkflowCard, resume: str | None = None) -> None:
        problem = card.runnable_problem()
        if problem is not None:
            self.notify(problem, severity="warning", timeout=10)
            return
        from imgen_tui.ui.screens.workflow_run import WorkflowRunScreen

        merged = self.farm_info.merged() if self.farm_info is not None else None
        self.app.push_screen(WorkflowRunScreen(card, merged, resume))

    def _highlighted(self) -> WorkflowCard | None:
        index = self.query_one("#cards", OptionList).highlighted
        return self.shown[index] if index is not None and index < len(self.shown) else None

    async def action_reopen(self) -> None:
        card = self._highlighted()
        store = self.imgen.engine.store
        if card is None or store is None:
            self.notify("Move to a card first (escape, then the arrows).")
            return
        session_id = await latest_session(store, card.key)
        if session_id is None:
            self.notify(f"{card.name} has not been run yet: enter opens its form.")
            return
        self._open(card, session_id)

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_focus_intent(self) -> None:
        self.query_one("#intent", Input).focus()

    def action_focus_cards(self) -> None:
        self.query_one("#cards", OptionList).focus()

    def action_reload(self) -> None:
        self.loaded = False
        self.load_cards()

    def action_leave(self) -> None:
        self.app.pop_screen()
