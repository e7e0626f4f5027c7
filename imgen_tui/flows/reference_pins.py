"""A session's pinned references: P / F / S on a picture, nudged and dropped from their chips.

They live in the session's intent document (`Intent.references`), so they
hold across refinement (which rewrites the intent but keeps what it does not
touch) and come back when the session is reopened; the round maker makes
every new job with them. One reference per kind: pinning a second pose
replaces the first, while a pose and a face stack.
"""

from __future__ import annotations

from collections.abc import Callable

from imgen_tui.flows.round_maker import RoundMaker
from imgen_tui.graphs.reference_pin import (
    MAX_STRENGTH,
    MIN_STRENGTH,
    STRENGTH_STEP,
    PinKind,
    PinnedReference,
)
from imgen_tui.llm.pipeline import Intent
from imgen_tui.store import SessionStore
from imgen_tui.store.records import ImageRecord


class ReferencePins:
    def __init__(
        self, store: SessionStore, session_id: Callable[[], str | None], maker: RoundMaker
    ) -> None:
        self.store = store
        self._session_id = session_id
        self.maker = maker

    @property
    def pins(self) -> list[PinnedReference]:
        return self.maker.references

    async def load(self) -> list[PinnedReference]:
        """The session's pins (after a reopen): the next rounds are made with them."""
        session_id = self._session_id()
        if session_id is not None:
            intent = Intent.from_document(await self.store.intent(session_id))
            self.maker.references = list(intent.references)
        return self.pins

    async def pin(self, kind: PinKind, image: ImageRecord) -> PinnedReference:
        """Keep `kind` of this picture from the next round on (replacing a pin of that kind)."""
        if self._session_id() is None:
            raise ValueError("make a round first: references belong to the session")
        new = PinnedReference(kind=kind, path=str(image.path), image_id=image.id)
        index = next((i for i, p in enumerate(self.pins) if p.kind == kind), None)
        if index is None:
            self.pins.append(new)
        else:
            self.pins[index] = new
        await self._save()
        return new

    async def nudge(self, index: int, steps: int) -> PinnedReference:
        pin = self.pins[index]
        strength = round(pin.strength + steps * STRENGTH_STEP, 2)
        changed = pin.model_copy(
            update={"strength": min(MAX_STRENGTH, max(MIN_STRENGTH, strength))}
        )
        self.pins[index] = changed
        await self._save()
        return changed

    async def drop(self, index: int) -> PinnedReference:
        dropped = self.pins.pop(index)
        await self._save()
        return dropped

    async def _save(self) -> None:
        session_id = self._session_id()
        if session_id is None:
            return
        intent = Intent.from_document(await self.store.intent(session_id))
        intent.references = list(self.pins)
        await self.store.set_intent(session_id, intent.model_dump())
