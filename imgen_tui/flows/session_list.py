"""The sessions list as plain data: what a row says, what a search matches, how it sorts.

The sessions screen draws this; keeping search and sort here lets them be
tested on hundreds of sessions without a terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from imgen_tui.store.records import SessionDetails, SessionInfo


@dataclass(frozen=True)
class SessionRow:
    info: SessionInfo
    details: SessionDetails
    labels: str = ""  # captions and tags of its labelled images, for search
    disk_bytes: int | None = None  # None until measured (off the loop)

    @property
    def id(self) -> str:
        return self.info.id

    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.info.updated_at))

    def haystack(self) -> str:
        """Everything a search looks through, lower-cased: prompts, labels, dates, flow."""
        created = time.localtime(self.info.created_at)
        updated = time.localtime(self.info.updated_at)
        dates = " ".join(
            time.strftime(pattern, moment)
            for moment in (created, updated)
            for pattern in ("%Y-%m-%d", "%d %b %Y", "%B", "%A")
        )
        parts = (self.info.flow, self.info.title, self.details.prompts, self.labels, dates)
        return "\n".join(parts).lower()


def matches(row: SessionRow, query: str) -> bool:
    """Every word of the query appears somewhere (flow, title, prompts, labels, dates)."""
    haystack = row.haystack()
    return all(word in haystack for word in query.lower().split())


SORTS: dict[str, tuple[str, Callable[[SessionRow], Any], bool]] = {
    # name -> (what the footer says, key, reversed)
    "newest": ("newest first", lambda row: row.info.updated_at, True),
    "oldest": ("oldest first", lambda row: row.info.updated_at, False),
    "title": ("by title", lambda row: row.info.title.lower(), False),
    "flow": ("by flow", lambda row: (row.info.flow, -row.info.updated_at), False),
    "images": ("most images first", lambda row: row.info.image_count, True),
    "picks": ("most picks first", lambda row: row.details.picks, True),
    "disk": ("largest first", lambda row: row.disk_bytes or 0, True),
}
SORT_ORDER = tuple(SORTS)


def next_sort(current: str) -> str:
    return SORT_ORDER[(SORT_ORDER.index(current) + 1) % len(SORT_ORDER)]


def shown_rows(rows: Sequence[SessionRow], query: str, sort: str) -> list[SessionRow]:
    """The rows a search keeps, in the chosen order."""
    _, key, reverse = SORTS[sort]
    return sorted((row for row in rows if matches(row, query)), key=key, reverse=reverse)
