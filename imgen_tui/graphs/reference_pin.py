"""A reference pinned in a session's intent document: it holds across rounds and resumes.

Strength, start and end are kept here (and so saved and reloaded with the
session); out-of-range numbers from a hand-edited or older document are
clamped into range rather than refusing the whole session, because a pin
that is a little off is still what the operator asked for.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, field_validator, model_validator

PinKind = Literal["pose", "depth", "edges", "style", "face", "subject"]
MIN_STRENGTH, MAX_STRENGTH, STRENGTH_STEP = 0.0, 2.0, 0.1
#: start and end are shares of the sampling steps; a window narrower than this does nothing
WINDOW_STEP = 0.05
MIN_WINDOW = WINDOW_STEP


def clamp(value: float, low: float, high: float) -> float:
    return round(min(high, max(low, value)), 2)


class PinnedReference(BaseModel):
    """One "keep this pose/face/style" an operator asked for, with the picture it keeps."""

    kind: PinKind
    path: str  # the local image file, uploaded to whichever node runs a job
    image_id: str | None = None  # the store's image, when it was a pick from a round
    strength: float = 0.8
    start: float = 0.0  # share of the steps before the reference starts to act
    end: float = 1.0  # share of the steps after which it stops
    #: the preprocessor's map (a pose's skeleton), kept in the session folder once a job made it
    map_path: str | None = None
    #: how the last job carried a style reference: "ipadapter", "style model" or "img2img"
    via: str | None = None

    @field_validator("strength", "start", "end", mode="before")
    @classmethod
    def _a_number(cls, value: Any) -> float:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"must be a finite number (got {value!r})")
        return number

    @model_validator(mode="after")
    def _clamped(self) -> PinnedReference:
        self.strength = clamp(self.strength, MIN_STRENGTH, MAX_STRENGTH)
        self.end = clamp(self.end, MIN_WINDOW, 1.0)
        self.start = clamp(self.start, 0.0, self.end - MIN_WINDOW)
        return self

    def label(self) -> str:
        return f"{self.kind} {self.strength:.1f}"

    def window(self) -> str:
        """Where in the steps it acts, as the chip shows it ("0-100%")."""
        return f"{round(self.start * 100)}-{round(self.end * 100)}%"

    def nudged(self, what: Literal["strength", "start", "end"], steps: int) -> PinnedReference:
        """A copy with one parameter moved `steps` steps, kept in range (start stays before end)."""
        if what == "strength":
            return self.model_copy(
                update={
                    "strength": clamp(
                        self.strength + steps * STRENGTH_STEP, MIN_STRENGTH, MAX_STRENGTH
                    )
                }
            )
        if what == "start":
            start = clamp(self.start + steps * WINDOW_STEP, 0.0, self.end - MIN_WINDOW)
            return self.model_copy(update={"start": start})
        end = clamp(self.end + steps * WINDOW_STEP, self.start + MIN_WINDOW, 1.0)
        return self.model_copy(update={"end": end})
