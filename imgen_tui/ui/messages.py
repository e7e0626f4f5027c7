"""Messages the app sends down to its screens: scheduler news, already on the UI's terms."""

from __future__ import annotations

from textual.message import Message

from imgen_tui.scheduler.events import JobEvent


class JobUpdate(Message):
    """A scheduler event for whichever screen shows that job."""

    def __init__(self, event: JobEvent) -> None:
        super().__init__()
        self.event = event
