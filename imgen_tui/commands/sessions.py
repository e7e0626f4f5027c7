"""`imgen-tui sessions`: list, delete and export the sessions in the data folder."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from imgen_tui.store import SessionStore
from imgen_tui.store.store import NoSessions


async def list_sessions(console: Console, data_dir: Path | None) -> int:
    """Listing writes nothing: a read-only folder (a mounted backup) lists too."""
    try:
        store = await SessionStore.open_for_listing(data_dir)
    except NoSessions as nothing:
        console.print(f"{str(nothing)[0].upper()}{str(nothing)[1:]}.", markup=False)
        return 0
    try:
        sessions = await store.sessions()
    finally:
        await store.close()
    if not sessions:
        console.print(f"No sessions yet in {store.data_dir}.", markup=False)
        return 0
    table = Table(title=f"Sessions in {store.data_dir}", title_justify="left")
    for column, justify in (
        ("id", "left"),
        ("flow", "left"),
        ("title", "left"),
        ("updated", "left"),
        ("images", "right"),
        ("jobs done", "right"),
        ("disk", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for session in sessions:
        table.add_row(
            session.id[:8],
            session.flow,
            Text(session.title),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(session.updated_at)),
            str(session.image_count),
            f"{session.jobs_done}/{session.job_count}",
            _size(session.disk_bytes),
        )
    console.print(table)
    return 0


async def delete_session(console: Console, data_dir: Path | None, wanted: str) -> int:
    store = await SessionStore.open(data_dir)
    try:
        session = await store.find_session(wanted)
        left = await store.delete_session(session.id)
    finally:
        await store.close()
    if left:
        console.print(
            f"Deleted session {session.id[:8]} ({session.title}) from the list, but "
            f"{len(left)} of its files could not be removed, e.g. {left[0]}.",
            markup=False,
        )
        return 1
    console.print(
        f"Deleted session {session.id[:8]} ({session.title}) and its files.", markup=False
    )
    return 0


async def export_session(
    console: Console, data_dir: Path | None, wanted: str, destination: Path
) -> int:
    store = await SessionStore.open(data_dir)
    try:
        session = await store.find_session(wanted)
        copies = await store.export_picked(session.id, destination)
    finally:
        await store.close()
    pictures = len(copies) // 2
    if not pictures:
        console.print(f"Session {session.id[:8]} has no picked images: nothing exported.")
        return 1
    console.print(f"Exported {pictures} picked images with their sidecars to {destination}.")
    return 0


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
