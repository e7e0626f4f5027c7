"""Where to export a session, and what: the picks with their sidecars, or everything."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label


@dataclass(frozen=True)
class ExportChoice:
    folder: Path
    everything: bool


class ExportDialog(ModalScreen[ExportChoice | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export.cancel")]

    def __init__(self, what: str, suggestion: Path) -> None:
        super().__init__()
        self.what = what
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(f"Export {self.what} to the folder:")
            yield Input(str(self.suggestion), id="export-folder")
            yield Checkbox("every image, not only the picks", id="export-everything")
            yield Label("[b]enter[/] export   [b]esc[/] cancel", classes="dim")

    def on_mount(self) -> None:
        self.query_one("#export-folder", Input).focus()

    @on(Input.Submitted, "#export-folder")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.notify("Type the folder to export to (it is made if missing).", severity="warning")
            return
        everything = self.query_one("#export-everything", Checkbox).value
        self.dismiss(ExportChoice(Path(text).expanduser(), everything))

    def action_cancel(self) -> None:
        self.dismiss(None)
