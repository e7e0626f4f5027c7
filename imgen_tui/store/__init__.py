"""Sessions, rounds, jobs and images: SQLite plus files, crash-safe and exactly once."""

from imgen_tui.store.errors import CorruptImage, StoreError
from imgen_tui.store.records import ImageRecord, JobRow, NewImage, RoundInfo, SessionInfo
from imgen_tui.store.store import SessionStore

__all__ = [
    "CorruptImage",
    "ImageRecord",
    "JobRow",
    "NewImage",
    "RoundInfo",
    "SessionInfo",
    "SessionStore",
    "StoreError",
]
