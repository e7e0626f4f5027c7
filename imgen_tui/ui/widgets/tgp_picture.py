"""A TGP picture whose placeholder cells cost as few bytes as Kitty allows.

textual-image sends the picture once and then draws it with Unicode
placeholder cells, which is right for SSH; but it writes every cell in full
(placeholder, row, column and id diacritics: 10 bytes). Kitty's protocol lets
a cell leave out its diacritics when it continues the row of the cell before
it, so only the first cell of each row needs them: the same picture in about
40% of the bytes every time its region is repainted (a cursor border moving
next to it, a caption ticking under it).
"""

from __future__ import annotations

from collections.abc import Iterator

from rich.segment import Segment
from rich.style import Style
from textual_image.renderable.tgp import _NUMBER_TO_DIACRITIC, _PLACEHOLDER
from textual_image.renderable.tgp import Image as TGPRenderable
from textual_image.widget._base import Image as BaseImage


def placeholder_rows(image_id: int, width: int, height: int) -> Iterator[str]:
    """Each row: one cell with its row, column and id-byte diacritics, then bare cells."""
    placeholder = chr(_PLACEHOLDER)
    id_byte = chr(_NUMBER_TO_DIACRITIC[(image_id >> 24) & 255])
    first_column = chr(_NUMBER_TO_DIACRITIC[0])
    for row in range(height):
        first = f"{placeholder}{chr(_NUMBER_TO_DIACRITIC[row])}{first_column}{id_byte}"
        yield first + placeholder * (width - 1)


class CompactTGPRenderable(TGPRenderable):
    def _render_diacritics(self, width: int, height: int) -> Iterator[Segment]:
        image_id = self.terminal_image_id
        assert image_id
        # The low three bytes of the id travel in the foreground colour.
        style = Style(
            color=f"rgb({(image_id >> 16) & 255}, {(image_id >> 8) & 255}, {image_id & 255})"
        )
        for line in placeholder_rows(image_id, width, height):
            yield Segment(line + "\n", style=style)


class TGPPicture(BaseImage, Renderable=CompactTGPRenderable):
    """textual-image's TGP widget, drawing with `CompactTGPRenderable`."""
