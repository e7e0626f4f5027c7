"""A funnel session on the farm: the funnel, the store and the scheduler together.

Every operator action that touches the store goes through here — start,
judge, lock, again, more like this, upscale, go forward and back, refine,
cancel, reopen — so the funnel screen is only keys and painting, and the
tests run the very code the screen runs. Saving and reopening are the round
machinery's (`RoundRunner`, the rounds document in the session's state);
what is the funnel's own is the story a final image carries in its sidecar.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from imgen_tui.flows.final import final_story, write_story
from imgen_tui.flows.funnel import FLOW, Funnel
from imgen_tui.flows.reference_pins import ReferencePins
from imgen_tui.flows.round_session import RoundSession
from imgen_tui.flows.rounds import Cell, Round
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.store import SessionInfo, SessionStore


class FunnelSession(RoundSession):
    def __init__(self, funnel: Funnel, store: SessionStore, scheduler: Scheduler) -> None:
        super().__init__(funnel, store, scheduler, FLOW)
        self.funnel = funnel
        # P / F / S on a draft keep its pose, face or style for every later stage.
        self.references = ReferencePins(store, lambda: self.session_id, funnel.maker)

    @property
    def session(self) -> SessionInfo | None:
        return self.runner.session

    @property
    def session_id(self) -> str | None:
        return self.runner.session.id if self.runner.session else None

    # -- rounds ----------------------------------------------------------------------------------

    async def start(self, prompt: str) -> Round:
        """A new funnel (and session) from a prompt; whatever the old one had running stops."""
        if self.current is not None:
            await self.cancel_all()
        self.runner.session = None
        self.references.pins.clear()  # a new prompt is a new session: its pins start empty
        return await self._launch(self.funnel.start(prompt))

    async def advance(self) -> bool:
        """The next stage from the picks; False when it was made already and is only shown."""
        if self.funnel.next_is_made():
            self.funnel.advance()
            await self.save()
            return False
        await self.cancel_round()
        await self._launch(self.funnel.advance())
        return True

    async def back(self) -> bool:
        moved = self.funnel.back()
        if moved:
            await self.save()
        return moved

    async def again(self, prompt: str | None = None, negative: str | None = None) -> Round:
        """The stage once more (a new prompt: locked seeds kept); `undo_again` goes back."""
        await self.cancel_round()
        return await self._launch(self.funnel.again(prompt=prompt, negative=negative))

    async def image_arrived(self, cell: Cell) -> None:
        """A verdict or lock given before the image existed goes on its row; a final, its story."""
        await super().image_arrived(cell)
        owner = self.history.owner_of(cell)
        if cell.image is not None and owner is not None and self.funnel.is_final(owner):
            await asyncio.to_thread(write_story, cell.image, final_story(self.funnel, owner, cell))

    # -- saving and reopening ----------------------------------------------------------------------

    async def save(self) -> None:
        await self.runner.save_state(self.funnel.state())

    async def reopen(self, session_id: str) -> None:
        state = await self.runner.reopen(session_id, self.funnel.history, self.funnel.recipe_for)
        self.funnel.restore(state)
        await self.references.load()

    async def _launch(self, specs: Sequence[JobSpec]) -> Round:
        current = self.current
        assert current is not None
        await self.runner.launch(current, specs, title=current.prompt, state=self.funnel.state())
        await self.save()  # now with the new round's id: the state above could not name it
        return current
