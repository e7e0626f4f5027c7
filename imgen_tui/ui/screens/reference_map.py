"""A pinned reference's map (a pose's skeleton) as large as the terminal allows.

The map is what the ControlNet was actually given, so seeing it answers
"why does the pose come out like that" without opening ComfyUI. It is read
and scaled in a thread, like the lightbox's pictures.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from imgen_tui.graphs.reference_pin import PinnedReference
from imgen_tui.ui.graphics import image_widget
from imgen_tui.ui.screens.lightbox import LIGHTBOX_MAX_SIDE
from imgen_tui.ui.widgets.thumbs import load_picture


class ReferenceMapScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "close", "Close", id="refmap.close")]
    DEFAULT_CSS = """
    ReferenceMapScreen #refmap { width: 100%; height: 100%; background: $surface; }
    ReferenceMapScreen #refmap-large { height: 1fr; }
    ReferenceMapScreen #refmap-about { height: auto; padding: 0 1; }
    """

    def __init__(self, pin: PinnedReference) -> None:
        super().__init__()
        self.pin = pin

    def compose(self) -> ComposeResult:
        renderer = str(getattr(self.app, "renderer", "halfcell"))
        with Vertical(id="refmap"):
            yield image_widget(renderer)(None, id="refmap-large")
            yield Static(self._about(), id="refmap-about")
        yield Footer()

    def _about(self) -> Text:
        text = Text(f"{self.pin.kind} map of {Path(self.pin.path).name}\n", style="bold")
        text.append(f"{self.pin.map_path}", style="dim italic")
        return text

    async def on_mount(self) -> None:
        assert self.pin.map_path is not None
        try:
            picture = await load_picture(Path(self.pin.map_path), LIGHTBOX_MAX_SIDE)
        except OSError as error:
            self.notify(
                f"The {self.pin.kind} map {self.pin.map_path} cannot be read ({error}).",
                severity="error",
            )
            self.dismiss(None)
            return
        self.query_one("#refmap-large").image = picture  # type: ignore[attr-defined]

    def action_close(self) -> None:
        self.dismiss(None)
