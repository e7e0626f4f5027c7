"""Waiting for the app under Pilot: poll a condition instead of sleeping a guessed time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from imgen_tui.ui.screens.funnel import FunnelScreen
from imgen_tui.ui.screens.home import HomeScreen


async def until(pilot: Pilot[Any], check: Callable[[], bool], seconds: float = 30) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError("the app never got there")


def notices(app: Any) -> list[str]:
    """The notifications on screen now (each stays a few seconds)."""
    return [notification.message for notification in app._notifications]


async def start_drafts(pilot: Pilot[Any], prompt: str = "a red fox in the snow") -> FunnelScreen:
    """From Home: open the funnel, type the prompt (no cursor blink), wait for the round."""
    await until(pilot, lambda: isinstance(pilot.app.screen, HomeScreen))
    await pilot.press("f")
    await until(pilot, lambda: isinstance(pilot.app.screen, FunnelScreen))
    screen = pilot.app.screen
    assert isinstance(screen, FunnelScreen)
    field = screen.query_one("#prompt", Input)
    field.cursor_blink = False
    field.value = prompt
    await pilot.press("enter")
    await until(pilot, lambda: screen.funnel is not None and screen.funnel.current is not None)
    return screen
