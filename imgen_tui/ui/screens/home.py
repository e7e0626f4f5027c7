"""Home: start a flow, reopen a recent session, see the farm at a glance."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, OptionList
from textual.widgets.option_list import Option

from imgen_tui.store import SessionInfo
from imgen_tui.ui.widgets.node_strip import NodeStrip

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp

FLOWS = [
    ("funnel", "Draft funnel — prompt → 20 drafts → 8 → 3 → 1 final"),
    ("concept", "Concept builder — fields with locks → 4 SDXL variations, refine the unlocked"),
    ("explorer", "LoRA explorer — what the farm has, strength sweeps, A/B against a baseline"),
    ("workflows", "Workflow browser — any ComfyUI workflow: Ready/Missing per node, run it"),
    ("keyframes", "Keyframe video — keyframes → stills → motion preview → full render"),
]

#: flows that reopen a session
RESUMABLE_FLOWS = frozenset({"funnel", "concept", "explorer", "keyframes"})


def flow_screen(flow: str, resume: str | None = None) -> Screen[None] | None:
    """The screen that runs a flow (a new session, or `resume` one); None: not a flow here."""
    if flow == "funnel":
        from imgen_tui.ui.screens.funnel import FunnelScreen

        return FunnelScreen(resume=resume)
    if flow == "concept":
        from imgen_tui.ui.screens.concept import ConceptScreen

        return ConceptScreen(resume=resume)
    if flow == "explorer":
        from imgen_tui.ui.screens.explorer import ExplorerScreen

        return ExplorerScreen(resume=resume)
    if flow == "workflows" and resume is None:
        from imgen_tui.ui.screens.workflows import WorkflowsScreen

        return WorkflowsScreen()
    if flow == "keyframes":
        from imgen_tui.ui.screens.keyframes import KeyframesScreen

        return KeyframesScreen(resume=resume)
    return None


class HomeScreen(Screen[None]):
    BINDINGS = [
        Binding("f", "new_funnel", "New funnel", id="home.funnel"),
        Binding("c", "new_flow('concept')", "New concept", id="home.concept"),
        Binding("e", "new_flow('explorer')", "LoRA explorer", id="home.explorer"),
        Binding("w", "workflows", "Workflows", id="home.workflows"),
        Binding("s", "sessions", "Sessions", id="home.sessions"),
        Binding("q", "app.quit", "Quit", id="home.quit"),
    ]
    HELP = (
        "**Home.** Start a flow (**f** the draft funnel, **c** the concept builder, "
        "**e** the LoRA explorer, **w** the workflow browser), see every session "
        "(**s**) or "
        "reopen a recent session "
        "exactly as you left it (**tab** to the list, **enter**). The strip at the "
        "bottom is the farm: one dot per GPU. **F2** nodes, **F3** queue, **ctrl+p** "
        "every action."
    )

    @property
    def imgen(self) -> ImgenApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="home"):
            yield Label("Start", classes="heading")
            yield OptionList(*(Option(text, id=f"flow:{name}") for name, text in FLOWS), id="flows")
            yield Label("Recent sessions", classes="heading")
            yield OptionList(id="sessions")
        yield NodeStrip(self.imgen.engine.scheduler, id="node-strip")
        yield Footer()

    async def on_screen_resume(self) -> None:
        await self.reload_sessions()

    async def reload_sessions(self) -> None:
        store = self.imgen.engine.store
        if store is None:
            return
        flows = RESUMABLE_FLOWS
        sessions = [s for s in await store.sessions(disk_use=False) if s.flow in flows][:10]
        options = self.query_one("#sessions", OptionList)
        options.clear_options()
        options.add_options([Option(_describe(s), id=f"session:{s.id}") for s in sessions])
        if not sessions:
            options.add_option(Option("(none yet)", disabled=True))
        else:
            options.highlighted = 0

    @on(OptionList.OptionSelected)
    async def _chosen(self, event: OptionList.OptionSelected) -> None:
        option_id = event.option.id or ""
        if option_id.startswith("flow:"):
            self.action_new_flow(option_id.removeprefix("flow:"))
        elif option_id.startswith("session:"):
            session_id = option_id.removeprefix("session:")
            store = self.imgen.engine.store
            flow = (await store.session(session_id)).flow if store is not None else "funnel"
            screen = flow_screen(flow, resume=session_id)
            if screen is not None:
                await self.app.push_screen(screen)

    def action_workflows(self) -> None:
        from imgen_tui.ui.screens.workflows import WorkflowsScreen

        self.app.push_screen(WorkflowsScreen())

    def action_sessions(self) -> None:
        from imgen_tui.ui.screens.sessions import SessionsScreen

        self.app.push_screen(SessionsScreen())

    def action_new_funnel(self) -> None:
        self.action_new_flow("funnel")

    def action_new_flow(self, flow: str) -> None:
        screen = flow_screen(flow)
        if screen is not None:
            self.app.push_screen(screen)


def _describe(session: SessionInfo) -> str:
    when = time.strftime("%d %b %H:%M", time.localtime(session.updated_at))
    count = session.image_count
    flow = "" if session.flow == "funnel" else f"{session.flow} · "  # the funnel is the default
    return f"{when}  {flow}{session.title[:50]}  ({count} image{'' if count == 1 else 's'})"
