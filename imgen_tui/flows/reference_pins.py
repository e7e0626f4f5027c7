"""A session's pinned references: P / F / S on a picture, nudged and dropped from their chips.

They live in the session's intent document (`Intent.references`), so they
hold across refinement (which rewrites the intent but keeps what it does not
touch) and come back when the session is reopened; the round maker makes
every new job with them. One reference per kind: pinning a second pose
replaces the first, while a pose and a face stack.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from imgen_tui.flows.round_maker import RoundMaker
from imgen_tui.graphs.reference_pin import PinKind, PinnedReference
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
        return await self._replace(
            PinnedReference(kind=kind, path=str(image.path), image_id=image.id)
        )

    async def _replace(self, new: PinnedReference) -> PinnedReference:
        """The new pin, in place of one of its kind if there was one; saved in the intent."""
        index = next((i for i, p in enumerate(self.pins) if p.kind == new.kind), None)
        if index is None:
            self.pins.append(new)
        else:
            self.pins[index] = new
        await self._save()
        return new

    async def pin_file(self, kind: PinKind, path: str, strength: float) -> PinnedReference:
        """Keep `kind` of a picture file the operator named (uploaded to the node that runs it)."""
        if self._session_id() is None:
            raise ValueError("make a round first: references belong to the session")
        return await self._replace(PinnedReference(kind=kind, path=path, strength=strength))

    async def nudge(
        self,
        index: int,
        steps: int,
        what: Literal["strength", "start", "end"] = "strength",
    ) -> PinnedReference:
        """Move the pin's strength, start or end a step (clamped); saved for the next rounds."""
        changed = self.pins[index].nudged(what, steps)
        self.pins[index] = changed
        await self._save()
        return changed

    async def learn_from(self, image: ImageRecord) -> bool:
        """What a finished job says of the pins: a pose's map was kept, which way a style ran.

        Read from the image's sidecar (in a thread), where the recorder wrote
        it; saved in the intent, so the chips show it again after a reopen.
        True if a pin changed.
        """
        entries = await asyncio.to_thread(_sidecar_references, image.sidecar_path)
        changed = False
        for index, pin in enumerate(self.pins):
            for entry in entries:
                if entry.get("kind") != pin.kind or entry.get("file") != pin.path:
                    continue
                update: dict[str, str] = {}
                if isinstance(entry.get("map"), str) and entry["map"] != pin.map_path:
                    update["map_path"] = entry["map"]
                if isinstance(entry.get("via"), str) and entry["via"] != pin.via:
                    update["via"] = entry["via"]
                if update:
                    self.pins[index] = pin.model_copy(update=update)
                    changed = True
        if changed:
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


def _sidecar_references(path: Path) -> list[dict[str, Any]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    entries = document.get("references") if isinstance(document, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
