"""A concept-builder session on the farm: the builder, the store and the scheduler together.

Every operator action that touches the store goes through here — generate,
judge, lock, refine, describe, go back, cancel, reopen — so the concept
screen is only keys and painting, and the tests without a terminal run the
very code the screen runs. The session's state (fields, locks, position, the
pins the locks made, which cells each round shows) is written after every
change, so reopening is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from imgen_tui.flows.concept import FLOW, ConceptBuilder, ConceptError
from imgen_tui.flows.reference_pins import ReferencePins
from imgen_tui.flows.round_session import RoundSession, read_pictures
from imgen_tui.flows.rounds import Cell, Round
from imgen_tui.llm.field_refine import FieldRefinement, refine_fields
from imgen_tui.llm.field_stages import describe_into_fields
from imgen_tui.llm.ollama_stages import OllamaStages
from imgen_tui.llm.pipeline import Intent, StageListener
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.store import SessionStore


class ConceptSession(RoundSession):
    def __init__(self, builder: ConceptBuilder, store: SessionStore, scheduler: Scheduler) -> None:
        super().__init__(builder, store, scheduler, FLOW)
        self.builder = builder
        self.lock_pins: list[str] = []  # what the locks have pinned in the intent document
        self.references = ReferencePins(store, lambda: self.session_id, builder.maker)

    @property
    def session_id(self) -> str | None:
        return self.runner.session.id if self.runner.session else None

    # -- rounds ----------------------------------------------------------------------------------

    async def generate(self) -> Round:
        """A new round from the fields (ConceptError: a required field is empty).

        What the round on screen still has running is cancelled: the new
        round is what the operator wants the GPUs on now.
        """
        intent = await self.intent()
        self.builder.require_filled()
        await self.cancel_round()
        specs = self.builder.generate(intent.avoid)
        return await self._launch(specs)

    async def again(self) -> Round:
        """New seeds for the round on screen (picked and locked kept); `undo_again` goes back."""
        await self.cancel_round()
        return await self._launch(self.builder.again())

    async def go_to(self, index: int) -> Round:
        chosen = self.builder.go_to(index)
        await self._pins_changed()
        return chosen

    async def back(self) -> Round | None:
        chosen = self.builder.back()
        if chosen is not None:
            await self._pins_changed()
        return chosen

    # -- fields, verdicts, locks -------------------------------------------------------------------

    async def set_field(self, name: str, text: str) -> None:
        self.builder.set_field(name, text)
        await self._pins_changed()

    async def toggle_lock(self, name: str) -> bool:
        locked = self.builder.toggle_lock(name)
        await self._pins_changed()
        return locked

    # -- refinement and description ----------------------------------------------------------------

    async def intent(self) -> Intent:
        if self.session_id is None:
            return Intent(pinned=self.builder.pins())
        return Intent.from_document(await self.store.intent(self.session_id))

    async def refine(
        self,
        feedback: str,
        stages: OllamaStages | None,
        listener: StageListener | None = None,
    ) -> FieldRefinement:
        """Feedback → new texts for the unlocked fields (not yet applied: see `accept`)."""
        if not feedback.strip():
            raise ConceptError("Say what should change first (e.g. 'make the mood eerie').")
        intent = await self.intent()
        request = self.builder.refine_request(feedback, pinned=intent.pinned, avoid=intent.avoid)
        current = self.current
        picked = (
            next((c for c in current.cells if c.verdict == "picked"), None) if current else None
        )
        rejected = (
            next((c for c in current.cells if c.verdict == "rejected"), None) if current else None
        )
        request.picture, request.rejected_picture = await asyncio.to_thread(
            read_pictures, picked, rejected
        )
        result = await refine_fields(request, intent, stages, listener)
        if self.session_id is not None:
            await self.store.set_intent(self.session_id, intent.model_dump())
        return result

    async def accept(self, refinement: FieldRefinement, *, generate: bool = True) -> list[str]:
        """Take the refined fields (locked ones never change) and make the next round."""
        changed = self.builder.accept(refinement)
        await self._pins_changed()
        if generate:
            await self.generate()
        return changed

    async def describe_pick(self, cell: Cell, stages: OllamaStages | None) -> list[str]:
        """Fill the unlocked empty fields from what the vision model sees in a finished image."""
        if cell.image is None:
            raise ConceptError("That image is not finished yet.")
        wanted = self.builder.empty_unlocked()
        if not wanted:
            raise ConceptError("Every unlocked field has text already: empty one to fill it.")
        data = await asyncio.to_thread(cell.image.path.read_bytes)
        described = await describe_into_fields(stages, data, wanted)
        filled = self.builder.fill_described(described)
        await self.save()
        return filled

    # -- saving and reopening ----------------------------------------------------------------------

    async def save(self) -> None:
        await self.runner.save_state(self.builder.state(self.lock_pins))

    async def reopen(self, session_id: str) -> None:
        history, recipe_for = self.builder.history, self.builder.recipe_for
        state = await self.runner.reopen(session_id, history, recipe_for)
        self.lock_pins = self.builder.restore(state)
        await self.references.load()

    async def _launch(self, specs: Sequence[JobSpec]) -> Round:
        current = self.current
        assert current is not None
        title = self.builder.values.get(self.builder.names[0], "") or "concept"
        await self.runner.launch(current, specs, title=title, state=self.builder.state())
        await self._pins_changed()
        return current

    async def _pins_changed(self) -> None:
        """The intent's pins follow the locks; then the state is written."""
        if self.session_id is not None:
            intent = await self.intent()
            self.lock_pins = self.builder.pin_into(intent, self.lock_pins)
            await self.store.set_intent(self.session_id, intent.model_dump())
        await self.save()
