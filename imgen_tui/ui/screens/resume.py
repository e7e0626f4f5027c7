"""Which screen reopens a session of each flow: one table, one line per flow.

A flow that saves sessions adds its line here; the sessions screen (and
anything else that reopens a session) looks the flow's name up and pushes
what it returns. A session of a flow with no line (a headless `batch`) is
listed, searched, exported and deleted, but not opened.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.screen import Screen


def _funnel(session_id: str) -> Screen[None]:
    from imgen_tui.ui.screens.funnel import FunnelScreen

    return FunnelScreen(resume=session_id)


def _concept(session_id: str) -> Screen[None]:
    from imgen_tui.ui.screens.concept import ConceptScreen

    return ConceptScreen(resume=session_id)


#: flow name (as the store keeps it) -> the screen that resumes a session of it
RESUMERS: dict[str, Callable[[str], Screen[None]]] = {
    "funnel": _funnel,
    "concept": _concept,
}


def resumer_for(flow: str) -> Callable[[str], Screen[None]] | None:
    return RESUMERS.get(flow)
