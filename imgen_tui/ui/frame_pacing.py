"""A screen's next frame goes out one frame interval after the last, not two.

Textual paints a screen from an interval timer that is paused while nothing
changed and resumed when something did. When a tick comes late (the timer was
resumed after an idle spell, which is every key after a quiet moment) its skip
arithmetic (`count = int((now - start) / interval + 1)`, then
`start + (count + 1) * interval`) puts the next tick two slots ahead of now.
The frame after it, a cursor move's repaint for instance, then waited 8 to 17
ms at 120 frames a second with the loop idle (`imgen-tui bench ui` traced it:
a key handled 7 ms after it was sent, then 10 idle milliseconds, then its
frame). Textual (8.x) has no hook for the timer a screen paints from, so
`Screen._update_timer` is swapped once for one that makes a `FrameTimer`.

`FrameTimer` keeps what the frame cap is for, at most one frame per interval,
and adds no wait beyond it: a frame is due one interval after the previous one
started, or at once if that moment has passed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from textual.screen import UPDATE_PERIOD, Screen
from textual.timer import EventTargetGone, Timer

_SLOT = "_Screen__update_timer"  # where Screen keeps its repaint timer


class FrameTimer(Timer):
    """An interval timer that ticks as soon as one interval has passed since its last tick.

    Made for a screen's repaint timer: its callback pauses it, and something
    changing on screen resumes it. Neither `reset()` nor `repeat` is used there,
    so neither is honoured.
    """

    clock: Callable[[], float] = staticmethod(time.monotonic)
    sleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)

    async def _run(self) -> None:
        active: asyncio.Event = self._active
        last_tick = -math.inf
        count = 0
        while True:
            await active.wait()
            wait = last_tick + self._interval - self.clock()
            if wait > 0:
                await self.sleep(wait)
                continue  # paused meanwhile? then wait for the resume again
            last_tick = self.clock()
            count += 1
            try:
                await self._tick(next_timer=last_tick, count=count)
            except EventTargetGone:
                return


def _paced_update_timer(screen: Screen[Any]) -> Timer:
    """Screen's own `_update_timer`, but the timer it makes is a `FrameTimer`."""
    timer: Timer | None = getattr(screen, _SLOT, None)
    if timer is None:
        timer = FrameTimer(
            screen,
            UPDATE_PERIOD,
            name="screen_update",
            callback=screen._on_timer_update,
            pause=True,
        )
        timer._start()
        screen._timers.add(timer)
        setattr(screen, _SLOT, timer)
    return timer


def pace_screen_repaints() -> None:
    """Every screen paints from a `FrameTimer` (once; a Textual without the hook is left as is)."""
    current = getattr(Screen, "_update_timer", None)
    if not isinstance(current, property) or current.fget is _paced_update_timer:
        return
    Screen._update_timer = property(_paced_update_timer)  # type: ignore[method-assign,assignment]
