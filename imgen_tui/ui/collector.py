"""Full garbage collections when nobody is waiting on the screen.

Measured with `imgen-tui bench ui` on a 2-core machine: CPython's full
(generation 2) collections walk every container object in the process —
about 100,000 once the app is up (modules, classes, Textual's CSS), twice that
once a funnel has been drawn (Textual keeps each rendered line as a `Strip`
with seven small caches of its own). Each took 60-370 ms, about every 7 s while
drafts streamed, and they were most of the key → repaint and finished →
painted tails (a key pressed during one waits for it to end).

So, while the app runs:

- what exists once the app is up is moved to the permanent generation
  (`gc.freeze`): no collection walks it again. Reference counting still frees
  it; only a cycle among those objects waits for the next sweep (below).
- automatic full collections are off. One runs when the operator has not
  pressed a key or used the mouse for `QUIET_SECONDS` (and as much has piled
  up as CPython waits for: ten middle-generation collections), and at the
  latest `LONGEST_SECONDS` after the last one, whatever happens. What it
  leaves is frozen too, so each collects only what was made since the last
  (a screen's widgets and Textual's line caches were 100,000 objects more,
  200-400 ms a pass even at quiet moments, where a finished picture waited).
- every `SWEEP_SECONDS`, at a quiet moment, everything is unfrozen and
  collected once (the cycles frozen meanwhile, e.g. a closed screen's widgets)
  and frozen again; and on exit everything is unfrozen.
- young collections (generations 0 and 1: the objects made since, a few
  milliseconds) run as always, so most short-lived cycles are freed at once.

Textual does the same for its smooth scrolling (`App.PAUSE_GC_ON_SCROLL`).
This module is plain `gc` and a clock; the app feeds it input and ticks.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

QUIET_SECONDS = 2.0  # no key or mouse for this long: a pause now is felt by nobody
LONGEST_SECONDS = 60.0  # a full collection at least this often, even while typing
SWEEP_SECONDS = 600.0  # a whole-heap collection (frozen objects too) at most this often
TICK_SECONDS = 0.5  # how often the app asks whether now is the moment
NEVER = 2**31 - 1  # a generation-2 threshold the young collections never reach


class QuietCollector:
    """Freezes the startup heap and moves full collections to quiet moments."""

    def __init__(
        self,
        *,
        quiet: float = QUIET_SECONDS,
        longest: float = LONGEST_SECONDS,
        sweep: float = SWEEP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet, self.longest, self.sweep, self.clock = quiet, longest, sweep, clock
        self.full_collections = 0  # run by this collector (tests and the bench read it)
        self.longest_pause = 0.0  # seconds, the slowest of them
        self._thresholds: tuple[int, int, int] | None = None
        self._last_input = self._last_full = self._last_sweep = clock()

    @property
    def running(self) -> bool:
        return self._thresholds is not None

    def start(self) -> None:
        """Collect once, freeze what is left, stop automatic full collections."""
        if self.running:
            return
        started = time.perf_counter()
        gc.collect()
        gc.freeze()
        self._thresholds = gc.get_threshold()
        young, middle, _ = self._thresholds
        gc.set_threshold(young, middle, NEVER)
        self._last_input = self._last_full = self._last_sweep = self.clock()
        log.info(
            "froze %d objects after startup (%.0f ms); full collections wait for quiet",
            gc.get_freeze_count(),
            (time.perf_counter() - started) * 1000,
        )

    def stop(self) -> None:
        """Back to CPython's own schedule; the frozen objects are collectable again."""
        if self._thresholds is None:
            return
        gc.set_threshold(*self._thresholds)
        self._thresholds = None
        gc.unfreeze()

    def touched(self) -> None:
        """The operator pressed a key or used the mouse."""
        self._last_input = self.clock()

    def due(self) -> bool:
        """Quiet and as much has piled up as CPython waits for; or too long since the last."""
        if self._thresholds is None:
            return False
        now = self.clock()
        piled_up = gc.get_count()[2] >= self._thresholds[2]
        quiet = now - self._last_input >= self.quiet
        return (quiet and piled_up) or now - self._last_full >= self.longest

    def tick(self) -> bool:
        """Run a full collection if now is the moment; True when one ran."""
        if not self.due():
            return False
        now = self.clock()
        sweeping = now - self._last_input >= self.quiet and now - self._last_sweep >= self.sweep
        started = time.perf_counter()
        if sweeping:
            gc.unfreeze()
        gc.collect()
        gc.freeze()  # what is left is long-lived: the next collection skips it
        pause = time.perf_counter() - started
        self._last_full = self.clock()
        if sweeping:
            self._last_sweep = self._last_full
        self.full_collections += 1
        self.longest_pause = max(self.longest_pause, pause)
        log.debug("full collection (sweep: %s): %.0f ms", sweeping, pause * 1000)
        return True
