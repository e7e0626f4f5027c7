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

FLOWS = [("funnel", "Draft funnel — prompt → 20 drafts → 8 → 3 → 1 final")]


class HomeScreen(Screen[None]):
    BINDINGS = [
        Binding("f", "new_funnel", "New funnel", id="home.funnel"),
        Binding("s", "sessions", "Sessions", id="home.sessions"),
        Binding("q", "app.quit", "Quit", id="home.quit"),
    ]
    HELP = (
        "**Home.** Start a flow (**f** the draft funnel) or reopen a recent session "
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
        sessions = [s for s in await store.sessions(disk_use=False) if s.flow == "funnel"][:10]
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
        if option_id == "flow:funnel":
            self.action_new_funnel()
        elif option_id.startswith("session:"):
            from imgen_tui.ui.screens.funnel import FunnelScreen

            await self.app.push_screen(FunnelScreen(resume=option_id.removeprefix("session:")))

    def action_sessions(self) -> None:
        from imgen_tui.ui.screens.sessions import SessionsScreen

        self.app.push_screen(SessionsScreen())

    def action_new_funnel(self) -> None:
        from imgen_tui.ui.screens.funnel import FunnelScreen

        self.app.push_screen(FunnelScreen())


def _describe(session: SessionInfo) -> str:
    when = time.strftime("%d %b %H:%M", time.localtime(session.updated_at))
    count = session.image_count
    return f"{when}  {session.title[:50]}  ({count} image{'' if count == 1 else 's'})"
