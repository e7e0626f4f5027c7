"""The keyframe flow on the farm: rounds saved and submitted, renders built for a real node.

What the round view asks of a flow (`RoundActions`) plus this flow's own
steps; the screen and the tests drive this one path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from imgen_tui.flows.keyframes import (
    FLOW,
    AnimatingNode,
    KeyframeError,
    KeyframeFlow,
    RenderKind,
    node_for,
)
from imgen_tui.flows.keyframes_export import export_video
from imgen_tui.flows.reference_pins import ReferencePins
from imgen_tui.flows.round_store import RoundRunner
from imgen_tui.flows.rounds import Cell, Round, RoundHistory
from imgen_tui.graphs.reference_pin import PinnedReference
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.store import SessionStore
from imgen_tui.store.records import Verdict


class KeyframeSession:
    def __init__(self, flow: KeyframeFlow, store: SessionStore, scheduler: Scheduler) -> None:
        self.flow = flow
        self.store = store
        self.scheduler = scheduler
        self.runner = RoundRunner(store, scheduler, FLOW)
        # P / F / S as on every flow; and the first locked still becomes the subject reference.
        self.references = ReferencePins(store, lambda: self.session_id, flow.maker)

    @property
    def session_id(self) -> str | None:
        return self.runner.session.id if self.runner.session else None

    @property
    def current(self) -> Round | None:
        return self.flow.history.current

    @property
    def history(self) -> RoundHistory:
        return self.flow.history

    # -- this flow's steps -------------------------------------------------------------------

    async def refine(self, index: int) -> Round:
        """A round of stills for keyframe `index`."""
        return await self._launch(self.flow.refine(index))

    async def lock_still(self, index: int, cell: Cell) -> PinnedReference | None:
        """Lock the still; the first one locked is pinned as the subject (returned then).

        Subject consistency: the other keyframes' stills and every render are
        made with an IP-Adapter reference to it, so the fox stays the same fox.
        A subject the operator pinned or dropped by hand is left as it is.
        """
        self.flow.lock(index, cell)
        if cell.verdict != "picked":
            await self.runner.judge(cell, "picked")
        await self.save()
        first_lock = sum(slot.locked for slot in self.flow.keyframes) == 1
        has_subject = any(pin.kind == "subject" for pin in self.references.pins)
        if first_lock and not has_subject and cell.image is not None:
            return await self.references.pin("subject", cell.image)
        return None

    async def render(self, kind: RenderKind) -> tuple[Round, str]:
        """A motion preview or full render; returns it and the node it was built for."""
        node = node_for(kind, self.animating_nodes())
        checkpoint = self.flow.models.get("sd15")
        new, spec = self.flow.render(kind, node.classes, node=node.id, checkpoint=checkpoint)
        await self._launch([spec])
        return new, node.id

    def animating_nodes(self) -> list[AnimatingNode]:
        return [
            AnimatingNode(
                runtime.id,
                runtime.config.tier,
                runtime.capabilities if runtime.confirmed else frozenset(),
                runtime.object_info.classes if runtime.object_info else {},
            )
            for runtime in self.scheduler.nodes.values()
            if runtime.state != "down"
        ]

    async def export(self, destination: Path) -> list[Path]:
        try:
            return await asyncio.to_thread(
                export_video, self.flow.latest_video(), list(self.flow.keyframes), destination
            )
        except ValueError as error:
            raise KeyframeError(str(error)) from None
        except OSError as error:
            raise KeyframeError(
                f"could not write {error.filename or destination}: {error.strerror or error}"
            ) from None

    # -- RoundActions ----------------------------------------------------------------------------

    async def judge(self, cell: Cell, verdict: Verdict) -> Verdict:
        return await self.runner.judge(cell, verdict)

    async def toggle_seed_lock(self, cell: Cell) -> bool:
        return await self.runner.toggle_seed_lock(cell)

    async def more_like_this(self, cell: Cell, denoise: float) -> Round:
        current = self._stills_round()
        await self._launch([self.flow.maker.more_like_this(current, cell, denoise)])
        return current

    async def upscale(self, cell: Cell) -> Round:
        current = self._stills_round()
        await self._launch([self.flow.maker.upscale(current, cell)])
        return current

    async def again(self) -> Round:
        self._stills_round()
        await self.runner.cancel(self.current.unfinished_jobs() if self.current else [])
        return await self._launch(self.flow.maker.again(self.flow.history))

    async def undo_again(self) -> Round | None:
        undone = self.flow.history.undo_again()
        if undone is not None:
            await self.runner.cancel(undone.unfinished_jobs())
            await self.save()
        return undone

    async def image_arrived(self, cell: Cell) -> None:
        await self.runner.image_arrived(cell)

    async def cancel_all(self) -> None:
        await self.runner.cancel(self.flow.history.unfinished_jobs())

    async def save(self) -> None:
        await self.runner.save_state(self.flow.state())

    # -- plumbing --------------------------------------------------------------------------------

    def _stills_round(self) -> Round:
        current = self.current
        if current is None or "render" in current.meta:
            raise KeyframeError("that works on a round of stills: refine a keyframe first")
        return current

    async def _launch(self, specs: Sequence[JobSpec]) -> Round:
        current = self.current
        assert current is not None
        title = self.flow.scene or (
            self.flow.keyframes[0].description if self.flow.keyframes else "video"
        )
        await self.runner.launch(current, specs, title=title, state=self.flow.state())
        return current
