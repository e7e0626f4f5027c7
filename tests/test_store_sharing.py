"""Two processes on one data folder, and a data folder in a bad state (issue 12, items 16, 24).

Real SQLite files, real threads and processes, real file locks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from imgen_tui.store import SessionStore, StoreError
from imgen_tui.store.database import Database
from imgen_tui.store.lock import SessionBusy, SessionLock
from imgen_tui.store.schema import SCHEMA_VERSION
from tests.cli_helpers import home_dirs, run_cli
from tests.test_store import a_round_with_jobs, output, png


def test_two_first_opens_of_a_new_folder_at_once_both_succeed(tmp_path: Path) -> None:
    """Before: 'table sessions already exists' / 'duplicate column name' in most pairs."""
    failures: list[str] = []
    for pair in range(30):
        path = tmp_path / f"folder{pair}" / "imgen.sqlite3"
        path.parent.mkdir()
        barrier = threading.Barrier(2)

        def open_it(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                Database(path).close()
            except Exception as error:  # the test reports every kind of failure
                failures.append(repr(error))

        threads = [threading.Thread(target=open_it) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        database = Database(path)
        (version,) = database.connection.execute("PRAGMA user_version").fetchone()
        database.close()
        assert version == SCHEMA_VERSION
    assert failures == []


OPEN_AT = """
import asyncio, sys, time
from imgen_tui.store import SessionStore
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
async def main():
    store = await SessionStore.open(__import__("pathlib").Path(sys.argv[1]))
    await store.create_session("batch", "from " + sys.argv[3])
    await store.close()
asyncio.run(main())
"""


def test_two_processes_opening_a_new_folder_at_once_both_succeed(tmp_path: Path) -> None:
    for pair in range(4):
        folder = tmp_path / f"data{pair}"
        at = str(time.time() + 1.5)
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_AT, str(folder), at, name],
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("a", "b")
        ]
        for process in processes:
            _, errors = process.communicate(timeout=60)
            assert process.returncode == 0, errors


async def test_a_session_is_run_by_one_process_at_a_time(tmp_path: Path) -> None:
    store = await SessionStore.open(tmp_path / "data")
    try:
        session_id, _, _ = await a_round_with_jobs(store)
        held = await store.lock_session(session_id)
        with pytest.raises(SessionBusy) as busy:
            await store.lock_session(session_id)
        message = str(busy.value)
        assert message.startswith(f"session {session_id[:8]} is being run by another imgen-tui")
        assert f"(pid {os.getpid()} on {socket.gethostname()} since " in message
        with pytest.raises(SessionBusy):
            await store.delete_session(session_id)  # nor deleted under the running process
        held.release()
        (await store.lock_session(session_id)).release()  # free again once let go
    finally:
        await store.close()


HOLD = """
import sys, time
from pathlib import Path
from imgen_tui.store.lock import SessionLock
lock = SessionLock(Path(sys.argv[1]), "feedfacecafe").acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_lock_left_by_a_killed_process_is_stale_and_taken_over(tmp_path: Path) -> None:
    folder = tmp_path / "session"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(SessionBusy, match=f"pid {holder.pid} on "):
            SessionLock(folder, "feedfacecafe").acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (folder / ".running.lock").exists()  # left behind by kill -9 ...
    lock = SessionLock(folder, "feedfacecafe").acquire()  # ... and not held by anyone
    lock.release()
    assert not (folder / ".running.lock").exists()


async def test_an_emptied_database_beside_sessions_is_refused_not_taken_as_new(
    tmp_path: Path,
) -> None:
    """Before: a 0-byte database opened as a new one and every session left the list."""
    data = tmp_path / "data"
    store = await SessionStore.open(data)
    _, _, (job_id, _) = await a_round_with_jobs(store)
    await store.save_images(job_id, [output(png())])
    await store.close()
    (data / "imgen.sqlite3").write_bytes(b"")
    for wal in data.glob("imgen.sqlite3-*"):
        wal.unlink()
    with pytest.raises(StoreError, match=r"is empty \(0 bytes\) while .* holds 1 session folder"):
        await SessionStore.open(data)
    assert (data / "imgen.sqlite3").stat().st_size == 0  # nothing was written over it
    result = run_cli("sessions", "--data-dir", str(data), env=home_dirs(tmp_path))
    assert result.returncode == 1 and "the database was truncated or lost" in result.stderr


async def test_an_empty_database_file_in_a_new_folder_is_just_new(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "imgen.sqlite3").write_bytes(b"")
    store = await SessionStore.open(tmp_path / "data")
    assert await store.sessions() == []
    await store.close()


async def test_temporary_files_left_by_a_kill_are_removed_at_the_next_open(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    store = await SessionStore.open(data)
    session_id, _, _ = await a_round_with_jobs(store)
    folder = store.session_dir(session_id)
    await store.close()
    (folder / "thumbs").mkdir(parents=True)
    old = [folder / ".r01-drafts-0001.png.k2j3h4.tmp", folder / "thumbs" / ".x.jpg.a1.tmp"]
    fresh = folder / ".r01-drafts-0002.png.zz9.tmp"  # another process may be writing it now
    keep = folder / "r01-drafts-0001.png"
    for path in [*old, fresh, keep]:
        path.write_bytes(b"partial")
    an_hour_ago = time.time() - 3600
    for path in [*old, keep]:
        os.utime(path, (an_hour_ago, an_hour_ago))
    store = await SessionStore.open(data)
    await store.close()
    assert [path.exists() for path in old] == [False, False]
    assert fresh.exists() and keep.exists()


def _make_immutable(folder: Path) -> bool:
    if os.geteuid() != 0:
        folder.chmod(0o555)
    else:  # root writes through permissions; the immutable flag stops even root
        subprocess.run(["chattr", "+i", str(folder)], check=False, capture_output=True)
    try:
        (folder / "probe").write_text("x")
    except OSError:
        return True
    (folder / "probe").unlink()
    return False


def _make_mutable(folder: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], check=False, capture_output=True)
    folder.chmod(0o755)


async def test_sessions_lists_a_read_only_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = await SessionStore.open(data)
    await a_round_with_jobs(store)
    await store.close()
    if not _make_immutable(data):
        _make_mutable(data)
        pytest.skip("this machine cannot make a folder read-only for the current user")
    try:
        result = run_cli("sessions", "--data-dir", str(data), env=home_dirs(tmp_path))
    finally:
        _make_mutable(data)
    assert result.returncode == 0, result.stderr
    assert "a red fox" in result.stdout and "0/2" in result.stdout


async def test_deleting_a_session_whose_folder_is_a_link_deletes_nothing_and_says_so(
    tmp_path: Path,
) -> None:
    """Before: 'Deleted … and its files' while every file behind the link remained."""
    data = tmp_path / "data"
    store = await SessionStore.open(data)
    session_id, _, (job_id, _) = await a_round_with_jobs(store)
    await store.save_images(job_id, [output(png())])
    folder = store.session_dir(session_id)
    await store.close()
    elsewhere = tmp_path / "elsewhere"
    folder.rename(elsewhere)
    folder.symlink_to(elsewhere)
    files_before = sorted(elsewhere.rglob("*"))
    result = run_cli("sessions", "delete", session_id[:8], "--data-dir", str(data),
                     env=home_dirs(tmp_path))  # fmt: skip
    assert result.returncode == 1
    assert "is a symbolic link to" in result.stderr and "nothing was deleted" in result.stderr
    assert "Deleted" not in result.stdout
    assert sorted(elsewhere.rglob("*")) == files_before
    listed = run_cli("sessions", "--data-dir", str(data), env=home_dirs(tmp_path))
    assert session_id[:8] in listed.stdout  # still in the list: nothing half-deleted


async def test_deleting_a_session_removes_its_rows_and_every_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = await SessionStore.open(data)
    session_id, _, (job_id, _) = await a_round_with_jobs(store)
    await store.save_images(job_id, [output(png())])
    await store.close()
    result = run_cli("sessions", "delete", session_id[:8], "--data-dir", str(data),
                     env=home_dirs(tmp_path))  # fmt: skip
    assert result.returncode == 0 and "and its files" in result.stdout
    assert not (data / "sessions" / session_id).exists()
