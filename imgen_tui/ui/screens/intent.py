"""The session's intent document, as YAML to read and edit (`i` on the funnel)."""

from __future__ import annotations

import yaml
from pydantic import ValidationError
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, TextArea

from imgen_tui.llm.pipeline import Intent


class IntentScreen(ModalScreen[Intent | None]):
    """ctrl+s keeps the edit (if it is a valid intent document), escape drops it."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="intent.save"),
        Binding("escape", "cancel", "Cancel", id="intent.cancel"),
    ]
    HELP = (
        "**Intent.** What this session always avoids and what it pins, learnt from "
        "your feedback; every refinement follows it. Edit the YAML, **ctrl+s** saves."
    )

    def __init__(self, intent: Intent) -> None:
        super().__init__()
        self.intent = intent

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide tall"):
            yield Label("Session intent: what refinement keeps (pinned), avoids and has heard")
            text = yaml.safe_dump(self.intent.model_dump(), sort_keys=False, allow_unicode=True)
            yield TextArea(text, language="yaml", id="intent-edit")
            yield Label("ctrl+s: save   escape: cancel", classes="dim")

    def action_save(self) -> None:
        text = self.query_one(TextArea).text
        try:
            intent = Intent.model_validate(yaml.safe_load(text) or {})
        except (yaml.YAMLError, ValidationError) as error:
            first = str(error).splitlines()[0]
            self.notify(
                f"The intent is not valid ({first}); it needs lists under "
                "feedback, preferences, avoid and pinned.",
                severity="error",
            )
            return
        self.dismiss(intent)

    def action_cancel(self) -> None:
        self.dismiss(None)
