"""One subscriber's events, coalesced where that loses nothing.

A subscriber that falls behind (a UI busy painting, a store writing) would
otherwise read a backlog of progress steps and previews that were stale
before it got to them. A newer progress or preview of a job replaces one of
the same job that has not been read yet, keeping its place in the line, so a
job's events still arrive in order and the backlog is bounded by the number
of running jobs. Every other event — queued, assigned, started, done, failed,
retrying, cancelled — is delivered as it was sent, each one.
"""

from __future__ import annotations

import asyncio
from collections import deque

from imgen_tui.scheduler.events import JobEvent, JobPreview, JobProgress

_Key = tuple[type, str]


class _Slot:
    __slots__ = ("event",)

    def __init__(self, event: JobEvent) -> None:
        self.event = event


class EventMailbox:
    def __init__(self) -> None:
        self._line: deque[_Slot] = deque()
        self._unread: dict[_Key, _Slot] = {}  # the replaceable slot of each (kind, job)
        self._arrived = asyncio.Event()

    def __len__(self) -> int:
        return len(self._line)

    def put(self, event: JobEvent) -> None:
        key = _key(event)
        if key is not None:
            slot = self._unread.get(key)
            if slot is not None:
                slot.event = event
                return
        slot = _Slot(event)
        self._line.append(slot)
        if key is not None:
            self._unread[key] = slot
        self._arrived.set()

    async def get(self) -> JobEvent:
        while not self._line:
            self._arrived.clear()
            await self._arrived.wait()
        slot = self._line.popleft()
        key = _key(slot.event)
        if key is not None and self._unread.get(key) is slot:
            del self._unread[key]
        return slot.event


def _key(event: JobEvent) -> _Key | None:
    if isinstance(event, JobProgress | JobPreview):
        return (type(event), event.job.job_id)
    return None
