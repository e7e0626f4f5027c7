"""What a picture carries into another flow: one value object every screen hands on.

The gallery (and later the LoRA explorer) make a `Carried` from the picture under
the cursor; the chooser says where it goes; the target screen takes the prompt.
One mechanism for every source and target, so carrying means the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from imgen_tui.store.records import GalleryImage

#: The flows a picture can be carried into, as (key, what the chooser shows).
CARRY_TARGETS: tuple[tuple[str, str], ...] = (
    ("funnel", "the funnel"),
    ("concept", "the concept builder"),
    ("explorer", "the LoRA explorer"),
)


@dataclass(frozen=True)
class Carried:
    """A picture's prompt (and where it came from) on its way into a new flow."""

    prompt: str
    negative: str
    image_id: str


def carried_from_gallery(found: GalleryImage) -> Carried:
    """The gallery cell's prompt; its image id so the notification can name it."""
    return Carried(prompt=found.prompt, negative="", image_id=str(found.image.id))


def target_title(key: str) -> str:
    """The words the notification uses for a carry target."""
    return dict(CARRY_TARGETS).get(key, key)
