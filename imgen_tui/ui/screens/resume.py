"""Which screen reopens a session of each flow, for the sessions screen and the gallery.

The one table of flows is Home's (`FLOWS` and `flow_screen`); this module only
says which of them can reopen a session. A session of a flow that cannot (a
headless `batch`, a workflow-browser run) is listed,
searched, exported and deleted, but not opened.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.screen import Screen

from imgen_tui.ui.screens.home import RESUMABLE_FLOWS, flow_screen


def resumer_for(flow: str) -> Callable[[str], Screen[None]] | None:
    """The screen that reopens a session of `flow`, or None when that flow cannot."""
    if flow not in RESUMABLE_FLOWS:
        return None

    def resume(session_id: str) -> Screen[None]:
        screen = flow_screen(flow, resume=session_id)
        assert screen is not None  # every resumable flow has a screen
        return screen

    return resume
