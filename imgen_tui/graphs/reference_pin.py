"""A reference pinned in a session's intent document: it holds across rounds and resumes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

PinKind = Literal["pose", "depth", "edges", "style", "face", "subject"]
MIN_STRENGTH, MAX_STRENGTH, STRENGTH_STEP = 0.0, 2.0, 0.1


class PinnedReference(BaseModel):
    """One "keep this pose/face/style" an operator asked for, with the picture it keeps."""

    kind: PinKind
    path: str  # the local image file, uploaded to whichever node runs a job
    image_id: str | None = None  # the store's image, when it was a pick from a round
    strength: float = Field(default=0.8, ge=MIN_STRENGTH, le=MAX_STRENGTH)
    start: float = Field(default=0.0, ge=0, le=1)
    end: float = Field(default=1.0, ge=0, le=1)

    def label(self) -> str:
        return f"{self.kind} {self.strength:.1f}"
