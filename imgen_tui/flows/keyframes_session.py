"""The keyframe flow on the farm: rounds saved and submitted, renders built for a real node.

What the round view asks of a flow comes from `RoundSession` like every
flow's; this adds the flow's own steps (a round of stills for a keyframe,
locking a still, a render, export) and reopening: the timeline and every
round — stills, picks, locks, renders — are in the session's state after
each change, the pins in its intent document.
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
from imgen_tui.flows.round_session import RoundSession
from imgen_tui.flows.rounds import Cell, Round
from imgen_tui.graphs.reference_pin import PinnedReference
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.store import SessionStore


class KeyframeSession(RoundSession):
    def __init__(self, flow: KeyframeFlow, store: SessionStore, scheduler: Scheduler) -> None:
        super().__init__(flow, store, scheduler, FLOW)
        self.flow = flow
        self.scheduler = scheduler
        # P / F / S as on every flow; and the first locked still becomes the subject reference.
        self.references = ReferencePins(store, lambda: self.session_id, flow.maker)

    @property
    def session_id(self) -> str | None:
        return self.runner.session.id if self.runner.session else None

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
        return await self._locked(index)

    async def use_file(self, index: int, path: Path) -> PinnedReference | None:
        """A picture file as keyframe `index`'s look, copied into the session first.

        The file is checked as a node's picture is (CorruptImage, OSError for
        the caller's sentence); after that it is a still like any other: on the
        timeline, a subject reference if it is the first, a starting latent.
        """
        self.flow.slot(index)  # a keyframe that is not there fails before anything is copied
        session = await self.runner.open_session(self._title())
        image = await self.runner.store.import_picture(session.id, path)
        self.flow.use_image(index, image)
        return await self._locked(index)

    async def _locked(self, index: int) -> PinnedReference | None:
        await self.save()
        still = self.flow.keyframes[index].still
        first_lock = sum(slot.locked for slot in self.flow.keyframes) == 1
        has_subject = any(pin.kind == "subject" for pin in self.references.pins)
        if first_lock and not has_subject and still is not None:
            return await self.references.pin("subject", still)
        return None

    async def render(self, kind: RenderKind) -> tuple[Round, str]:
        """A motion preview or full render; returns it and the node it was built for.

        The files it would upload are read first (in a thread): a still gone
        or damaged on disk is refused in one sentence and nothing is made.
        """
        node = node_for(kind, self.animating_nodes())
        await asyncio.to_thread(self.flow.check_images)
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

    async def select(self, index: int) -> Round | None:
        """Keyframe `index` becomes the selected one, its last round of stills on screen (saved)."""
        slot = self.flow.select(index)
        last = self.flow.last_round(slot)
        if last is not None:
            self.history.go_to(self.history.rounds.index(last))
        await self.save()
        return last

    async def again(self) -> Round:
        """The stills of the round on screen once more (not a render: `v` / `V` make those)."""
        self.flow.stills_round()
        await self.cancel_round()
        return await self._launch(self.flow.again())

    # -- saving and reopening ----------------------------------------------------------------------

    async def save(self) -> None:
        await self.runner.save_state(self.flow.state())

    def _title(self) -> str:
        return self.flow.scene or (
            self.flow.keyframes[0].description if self.flow.keyframes else "video"
        )

    async def reopen(self, session_id: str) -> None:
        """The session as it was left: timeline, stills, picks, locks, renders, pins.

        The timeline is read first so the rounds' labels name their keyframes;
        the locked stills are then found among the session's images (a round's,
        or a picture file brought in with `use_file`).
        """
        saved = await self.store.session(session_id)
        self.flow.restore(saved.state, {})
        state = await self.runner.reopen(session_id, self.history, self.flow.recipe_for)
        found = await self.store.images(session_id=session_id)
        self.flow.restore(state, {image.id: image for image in found})
        await self.references.load()

    async def _launch(self, specs: Sequence[JobSpec]) -> Round:
        current = self.current
        assert current is not None
        await self.runner.launch(current, specs, title=self._title(), state=self.flow.state())
        await self.save()  # now with the new round's id: the state above could not name it
        return current
