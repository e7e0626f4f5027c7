"""One process at a time runs a session: a lock file that names its holder.

Two `batch --resume` of one session would both post its unfinished jobs and
make pictures twice. The lock is an OS file lock (`flock`) on a file in the
session's folder, so it is released when its process ends however it ends
(kill -9 included): a lock file whose lock nobody holds is stale and is
simply taken over. The file's text names the holder (pid, host, since when)
for the sentence the second process prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from imgen_tui.store.errors import StoreError

if sys.platform != "win32":
    import fcntl

LOCK_NAME = ".running.lock"


class SessionBusy(StoreError):
    """Another live process is running this session."""


class SessionLock:
    """Held from `acquire()` until `release()` (or the end of the process)."""

    def __init__(self, folder: Path, session_id: str) -> None:
        self.path = folder / LOCK_NAME
        self.session_id = session_id
        self._handle: IO[str] | None = None

    def acquire(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held while running
        try:
            if not _try_lock(handle, self.path):
                holder = _holder(self.path)
                if not holder:  # it was let go (and its file removed) just now: once more
                    handle.close()
                    return self.acquire()
                raise SessionBusy(self._busy_sentence(holder))
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(_me()))
            handle.flush()
        except BaseException:
            handle.close()
            raise
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # while still held: nobody can take a lock on a file we remove
        self._handle.close()
        self._handle = None

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _busy_sentence(self, holder: dict[str, object]) -> str:
        since = holder.get("since")
        when = (
            time.strftime(" since %H:%M:%S", time.localtime(since))
            if isinstance(since, int | float)
            else ""
        )
        return (
            f"session {self.session_id[:8]} is being run by another imgen-tui "
            f"(pid {holder.get('pid', '?')} on {holder.get('host', 'an unknown host')}{when}); "
            "wait for it to finish or stop it, then try again"
        )


def is_locked(folder: Path) -> dict[str, object] | None:
    """The holder of a session folder's lock, or None when no live process holds it."""
    path = folder / LOCK_NAME
    if not path.is_file():
        return None
    with open(path, "a+", encoding="utf-8") as handle:
        if _try_lock(handle, path):
            return None  # stale: released when it closes here
    return _holder(path)


def _try_lock(handle: IO[str], path: Path) -> bool:
    if sys.platform == "win32":  # no flock: a live pid on this host holds it
        holder = _holder(path)
        return not (holder.get("host") == socket.gethostname() and _alive(holder.get("pid")))
    else:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        # The holder removes the file as it lets go: a lock on a removed file is no lock.
        try:
            return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            return False


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _me() -> dict[str, object]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
