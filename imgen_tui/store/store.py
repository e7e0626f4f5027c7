"""The session store: rows in SQLite, pictures on disk, all work off the event loop.

Database statements run one after another on a single worker thread (one
connection, never shared between threads at once); image decoding and
thumbnails run on the default thread pool, several at a time, and a finished
job's files are written on the database's thread just before the transaction
that records them. Paths in
the database are relative to the data folder, so a moved folder still opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from PIL import Image as PILImage

from imgen_tui.locations import user_data_dir
from imgen_tui.store.animation import (
    CheckedAnimation,
    animation_sidecar,
    check_output,
    frame_thumbnail_names,
)
from imgen_tui.store.database import Database, new_id
from imgen_tui.store.errors import StoreError
from imgen_tui.store.files import (
    DEFAULT_THUMBNAIL_SIDE,
    CheckedImage,
    remove_quietly,
    safe_name,
    tree_size,
    write_atomic,
    write_json_atomic,
)
from imgen_tui.store.fresh_thumbnails import FRESH
from imgen_tui.store.lock import SessionBusy, SessionLock, is_locked
from imgen_tui.store.records import (
    GalleryImage,
    ImageLabel,
    ImageRecord,
    JobRow,
    JobRowState,
    NewImage,
    RoundInfo,
    SessionDetails,
    SessionInfo,
    Verdict,
)
from imgen_tui.store.reference_maps import map_path, write_map
from imgen_tui.store.schema import NewerSchema

P = ParamSpec("P")
T = TypeVar("T")

DATABASE_NAME = "imgen.sqlite3"
IMPORTED_STAGE = "imported"  # the round a picture brought in from a file sits in


class NoSessions(StoreError):
    """A read-only open found no database: there is nothing to list."""


class SessionStore:
    def __init__(self, data_dir: Path, database: Database, *, thumbnail_side: int) -> None:
        self.data_dir = data_dir
        self.thumbnail_side = thumbnail_side
        self._database = database
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-db")
        #: session id -> (its updated_at when measured, bytes): a folder is walked again only
        #: after the session changed, so the sessions screen reopens with its sizes at once
        self._disk_use: dict[str, tuple[float, int]] = {}

    @classmethod
    async def open(
        cls,
        data_dir: Path | None = None,
        *,
        thumbnail_side: int = DEFAULT_THUMBNAIL_SIDE,
        read_only: bool = False,
    ) -> SessionStore:
        """Open (creating and migrating as needed); `read_only` only reads what is there.

        A read-only store raises `NoSessions` when the folder has no database yet.
        """
        folder = (data_dir or user_data_dir()).expanduser().resolve()
        opener = _open_for_reading if read_only else _open_database
        database = await asyncio.to_thread(opener, folder)
        return cls(folder, database, thumbnail_side=thumbnail_side)

    @classmethod
    async def open_for_listing(cls, data_dir: Path | None = None) -> SessionStore:
        """Read-write when the folder allows it, else read-only: a list needs no writing."""
        folder = (data_dir or user_data_dir()).expanduser().resolve()
        writable = await asyncio.to_thread(
            lambda: os.access(folder, os.W_OK) if folder.exists() else True
        )
        return await cls.open(folder, read_only=not writable)

    async def close(self) -> None:
        await self._db(self._database.close)
        self._executor.shutdown(wait=True)

    # -- sessions ----------------------------------------------------------------------------

    async def create_session(
        self, flow: str, title: str, state: dict[str, Any] | None = None
    ) -> SessionInfo:
        return await self._db(self._database.create_session, flow, title, state or {})

    async def sessions(self, *, disk_use: bool = True) -> list[SessionInfo]:
        """Newest first, each with its image count and (walking its folder) its disk use."""
        found = await self._db(self._database.sessions)
        if not disk_use:
            return found
        sizes = await asyncio.to_thread(lambda: [tree_size(self.session_dir(s.id)) for s in found])
        return [
            dataclasses.replace(s, disk_bytes=size) for s, size in zip(found, sizes, strict=True)
        ]

    async def session_details(self, *, thumbs: int = 6) -> dict[str, SessionDetails]:
        """Picks, prompts and the first picked thumbnails (absolute paths) of every session."""
        found = await self._db(self._database.session_details, thumbs)
        return {
            session_id: dataclasses.replace(
                details, picked_thumbs=tuple(self.data_dir / t for t in details.picked_thumbs)
            )
            for session_id, details in found.items()
        }

    def cached_disk_use(self, session: SessionInfo) -> int | None:
        """The session's size if it was measured since it last changed; None: not known yet."""
        known = self._disk_use.get(session.id)
        return known[1] if known is not None and known[0] == session.updated_at else None

    async def disk_use(self, sessions: Sequence[SessionInfo]) -> dict[str, int]:
        """Each session's folder size, walking (in a thread) only those changed since last time."""
        stale = [s for s in sessions if self.cached_disk_use(s) is None]
        if stale:
            sizes = await asyncio.to_thread(
                lambda: [tree_size(self.session_dir(s.id)) for s in stale]
            )
            for session, size in zip(stale, sizes, strict=True):
                self._disk_use[session.id] = (session.updated_at, size)
        return {s.id: self._disk_use[s.id][1] for s in sessions}

    async def session(self, session_id: str) -> SessionInfo:
        found = await self._db(self._database.sessions, session_id)
        if not found:
            raise StoreError(f"there is no session {session_id} in {self.data_dir}")
        return found[0]

    async def find_session(self, prefix: str) -> SessionInfo:
        """A session by id or a unique prefix of it, as a person would type it."""
        matches = [s for s in await self._db(self._database.sessions) if s.id.startswith(prefix)]
        if len(matches) != 1:
            what = "no session" if not matches else f"{len(matches)} sessions"
            raise StoreError(
                f"{what} in {self.data_dir} match '{prefix}'; `imgen-tui sessions` lists them"
            )
        return matches[0]

    async def update_session(
        self, session_id: str, *, title: str | None = None, state: dict[str, Any] | None = None
    ) -> None:
        await self._db(self._database.update_session, session_id, title=title, state=state)

    async def delete_session(self, session_id: str) -> list[Path]:
        """Rows first, then files: a crash in between leaves only unreferenced files.

        Refused (before anything is deleted) for a session another process is
        running and for a session folder that is a symbolic link: its files are
        outside the data folder and not ours to remove. Returns the files that
        could not be removed, so the caller can say so.
        """
        folder = self.session_dir(session_id)
        if folder.is_symlink():
            raise StoreError(
                f"the folder of session {session_id[:8]} ({folder}) is a symbolic link to "
                f"{os.readlink(folder)}; imgen-tui only deletes files inside its data folder, "
                "so nothing was deleted: remove the link (and what it points to) yourself"
            )
        holder = await asyncio.to_thread(is_locked, folder)
        if holder is not None:
            raise SessionBusy(SessionLock(folder, session_id)._busy_sentence(holder))
        await self._db(self._database.delete_session, session_id)
        return await asyncio.to_thread(_remove_tree, folder)

    async def lock_session(self, session_id: str) -> SessionLock:
        """This process runs the session until `release()`; `SessionBusy` if another does."""
        lock = SessionLock(self.session_dir(session_id), session_id)
        try:
            return await asyncio.to_thread(lock.acquire)
        except OSError as error:
            raise StoreError(
                f"cannot lock session {session_id[:8]} in {self.data_dir} "
                f"({error.strerror or error}); choose another folder with --data-dir"
            ) from error

    async def export_picked(self, session_id: str, destination: Path) -> list[Path]:
        """Copy the picked originals and their sidecars to a folder; returns the copies."""
        return await self.export_session(session_id, destination)

    async def export_session(
        self, session_id: str, destination: Path, *, everything: bool = False
    ) -> list[Path]:
        """Copy the picks (or every image) with their sidecars; returns the copies.

        A file already in the folder is never overwritten: a copy of another
        picture with the same name gets a numbered name beside it. A folder
        that cannot be made or written is one `StoreError` sentence.
        """
        images = await self.images(session_id=session_id)
        chosen = images if everything else [i for i in images if i.verdict == "picked"]
        try:
            return await asyncio.to_thread(_copy_images, chosen, destination)
        except OSError as error:
            place = error.filename or destination
            raise StoreError(
                f"could not export to {destination} ({place}: {error.strerror or error}); "
                "type a folder you can write to"
            ) from error

    # -- rounds and jobs ------------------------------------------------------------------------

    async def add_round(
        self,
        session_id: str,
        stage: str,
        *,
        prompt: str = "",
        negative: str = "",
        parameters: dict[str, Any] | None = None,
    ) -> RoundInfo:
        return await self._db(
            self._database.add_round,
            session_id,
            stage,
            prompt=prompt,
            negative=negative,
            parameters=parameters,
        )

    async def rounds(self, session_id: str) -> list[RoundInfo]:
        return await self._db(self._database.rounds, session_id)

    async def add_jobs(self, round_id: str, jobs: Sequence[tuple[str, str]]) -> None:
        await self._db(self._database.add_jobs, round_id, jobs)

    async def job_submitted(self, job_id: str, node_id: str, prompt_id: str, attempts: int) -> None:
        await self._db(self._database.job_submitted, job_id, node_id, prompt_id, attempts)

    async def set_job_state(
        self, job_id: str, state: JobRowState, error: str | None = None
    ) -> None:
        await self._db(self._database.set_job_state, job_id, state, error)

    async def jobs(
        self, session_id: str, states: Iterable[JobRowState] | None = None
    ) -> list[JobRow]:
        return await self._db(self._database.jobs, session_id, states)

    # -- images --------------------------------------------------------------------------------

    async def save_images(
        self,
        job_id: str,
        outputs: Sequence[NewImage],
        checked: Sequence[tuple[CheckedImage, PILImage.Image | None]] | None = None,
    ) -> list[ImageRecord]:
        """Check, write and record a finished job's outputs; all of them or none.

        The pictures are decoded and thumbnailed on the thread pool, several at
        a time; then one call on the database's thread names the files after
        the round and the job's place in it (never after anything the node
        said), writes them and records the images with the job marked done in
        one transaction. If anything fails, the files written for this job are
        removed again. The names are stable, so a retry after a crash
        overwrites rather than duplicates. Two hops off the loop, not one per
        step: each hop waits for a busy loop to come round (a Textual frame),
        and that wait, not the work, was most of a finished picture's delay.
        `checked`: what `check` made of each output already, in a hop that ran
        anyway (the recorder's download), which leaves the database's one.
        """
        if checked is None:
            checked = await asyncio.gather(
                *(asyncio.to_thread(self.check, output, job_id) for output in outputs)
            )
        records = await self._db(
            self._write_and_record, job_id, outputs, [done for done, _ in checked]
        )
        stored = [self._absolute(record) for record in records]
        for record, (_, picture) in zip(stored, checked, strict=True):
            if picture is not None:
                FRESH.remember(record.thumb_path, picture)  # its first paint needs no disk read
        return stored

    def check(
        self, output: NewImage, job_id: str | None = None
    ) -> tuple[CheckedImage, PILImage.Image | None]:
        """The checked output, and its thumbnail decoded from the bytes the file will hold
        when this process paints thumbnails (`FRESH.keep()`).

        CPU work for a thread; safe in any. A keeper may run it in a hop of its
        own (its download's last one) and hand the result to `save_images`.
        """
        fps = output.sidecar.get("fps")
        return self.check_data(output.data, fps if isinstance(fps, float) else None, job_id)

    def check_data(
        self, data: bytes, fps_hint: float | None = None, job_id: str | None = None
    ) -> tuple[CheckedImage, PILImage.Image | None]:
        """`check` for bytes whose record is not made yet (`fps_hint`: the graph's rate;
        `job_id`: the job that made it, for a painter's `FRESH.prepare_with`)."""
        checked = check_output(data, self.thumbnail_side, fps_hint=fps_hint)
        return checked, FRESH.decoded(checked.thumbnail, job_id) if FRESH.wanted else None

    def _write_and_record(
        self, job_id: str, outputs: Sequence[NewImage], checked: Sequence[CheckedImage]
    ) -> list[ImageRecord]:
        """On the database's thread: the job's files, then the one transaction that records them."""
        session_id, round_id, round_position, stage, job_position = self._database.job_place(job_id)
        folder = self.session_dir(session_id)
        stem = f"r{round_position:02d}-{safe_name(stage, limit=24)}-{job_position:04d}"
        written: list[Path] = []
        try:
            records = [
                self._write_image(folder, stem, job_id, round_id, index, output, done, written)
                for index, (output, done) in enumerate(zip(outputs, checked, strict=True))
            ]
            self._database.finish_job_with_images(job_id, records)
        except BaseException:
            remove_quietly(*written)
            raise
        return records

    def _write_image(
        self,
        folder: Path,
        stem: str,
        job_id: str,
        round_id: str,
        index: int,
        output: NewImage,
        checked: CheckedImage,
        written: list[Path],
    ) -> ImageRecord:
        name = safe_name(stem, limit=80) + (f"-{index + 1}" if index else "")
        original = folder / f"{name}{checked.extension}"
        thumb = folder / "thumbs" / f"{name}.jpg"
        sidecar = folder / f"{name}.json"
        frame_files: list[tuple[Path, bytes]] = []
        animation: dict[str, Any] = {}
        if isinstance(checked, CheckedAnimation):  # a video: its frames' thumbnails too
            names = frame_thumbnail_names(name, checked.frames)
            frame_files = [
                (folder / "thumbs" / frame, data)
                for frame, data in zip(names, checked.frame_thumbnails, strict=True)
            ]
            animation = animation_sidecar(checked, names)
        record = ImageRecord(
            id=new_id(),
            job_id=job_id,
            round_id=round_id,
            output_index=index,
            path=self._relative(original),
            thumb_path=self._relative(thumb),
            sidecar_path=self._relative(sidecar),
            width=checked.width,
            height=checked.height,
            bytes=len(output.data),
            seed=output.seed,
            node_id=output.node_id,
            seconds=output.seconds,
            parent_id=output.parent_id,
            verdict="none",
            locks=(),
            created_at=time.time(),
        )
        try:
            document = {**_sidecar(record, output), **animation}
            for path, write in (
                (original, functools.partial(write_atomic, original, output.data)),
                (thumb, functools.partial(write_atomic, thumb, checked.thumbnail)),
                *(
                    (path, functools.partial(write_atomic, path, data))
                    for path, data in frame_files
                ),
                (sidecar, functools.partial(write_json_atomic, sidecar, document)),
            ):
                write()
                written.append(path)
        except OSError as error:
            raise StoreError(
                f"could not write {error.filename or folder}: {error.strerror or error}; "
                f"free some space or choose another folder with --data-dir"
            ) from error
        return record

    async def images(
        self, *, session_id: str | None = None, round_id: str | None = None
    ) -> list[ImageRecord]:
        records = await self._db(self._database.images, session_id=session_id, round_id=round_id)
        return [self._absolute(record) for record in records]

    async def set_verdict(self, image_id: str, verdict: Verdict) -> None:
        await self._db(self._database.set_verdict, image_id, verdict)

    async def set_locks(self, image_id: str, locks: Iterable[str]) -> None:
        await self._db(self._database.set_locks, image_id, tuple(locks))

    async def gallery(self, final_stage: str = "final") -> list[GalleryImage]:
        """All picked and final images across sessions (absolute paths), newest first."""
        found = await self._db(self._database.gallery, final_stage)
        return [dataclasses.replace(g, image=self._absolute(g.image)) for g in found]

    async def set_label(self, image: ImageRecord, label: ImageLabel) -> None:
        """Into the DB and into the image's sidecar (its `label` key), so it travels with it."""
        await self._db(self._database.set_label, image.id, label)
        sidecar = image.sidecar_path
        await asyncio.to_thread(_add_to_sidecar, sidecar, "label", dataclasses.asdict(label))

    async def labels(self, session_id: str) -> dict[str, ImageLabel]:
        return await self._db(self._database.labels, session_id)

    async def session_labels(self) -> dict[str, str]:
        return await self._db(self._database.session_labels)

    async def intent(self, session_id: str) -> dict[str, Any]:
        return await self._db(self._database.intent, session_id)

    async def set_intent(self, session_id: str, document: dict[str, Any]) -> None:
        await self._db(self._database.set_intent, session_id, document)

    # -- plumbing -------------------------------------------------------------------------------

    async def import_picture(self, session_id: str, path: Path) -> ImageRecord:
        """Copy a picture file into the session as an image of its own (an "imported" round).

        Checked and thumbnailed like a node's picture, so a damaged or foreign
        file is a CorruptImage naming what is wrong and nothing is recorded; a
        file that cannot be read is the OSError. The round's stage is no flow's,
        so no flow shows it as one of its rounds; the image is there by its id.
        """
        data = await asyncio.to_thread(path.read_bytes)
        round_info = await self.add_round(session_id, IMPORTED_STAGE, prompt=path.name)
        job_id = new_id()
        await self.add_jobs(round_info.id, [(job_id, "{}")])  # no job made it: no spec
        (record,) = await self.save_images(
            job_id,
            [
                NewImage(
                    data=data, seed=None, node_id="file", seconds=None, parent_id=None,
                    sidecar={"imported_from": str(path)},
                )
            ],
        )  # fmt: skip
        return record

    async def save_reference_map(
        self, job_id: str, kind: str, reference: str, data: bytes, about: dict[str, Any]
    ) -> Path:
        """Keep a preprocessor's map of `reference` in the job's session folder; its path."""
        session_id, *_ = await self._db(self._database.job_place, job_id)
        path = map_path(self.session_dir(session_id), kind, reference)
        try:
            return await asyncio.to_thread(write_map, path, data, about, self.thumbnail_side)
        except OSError as error:
            raise StoreError(
                f"could not write {error.filename or path}: {error.strerror or error}; "
                f"free some space or choose another folder with --data-dir"
            ) from error

    def session_dir(self, session_id: str) -> Path:
        return self.data_dir / "sessions" / safe_name(session_id)

    def _relative(self, path: Path) -> Path:
        return path.relative_to(self.data_dir)

    def _absolute(self, record: ImageRecord) -> ImageRecord:
        return dataclasses.replace(
            record,
            path=self.data_dir / record.path,
            thumb_path=self.data_dir / record.thumb_path,
            sidecar_path=self.data_dir / record.sidecar_path,
        )

    async def _db(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, functools.partial(call, *args, **kwargs)
            )
        except sqlite3.Error as error:
            raise StoreError(_database_problem(self._database.path, error)) from error


def _open_database(folder: Path) -> Database:
    """Create the folder, prove it is writable, then open (and migrate) the database."""
    path = folder / DATABASE_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # A probe of our own: another process may be probing the same folder right now.
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".write-test.", suffix=".tmp")
        os.close(handle)
        os.unlink(probe)
        _refuse_an_emptied_database(folder, path)
        database = Database(path)
    except OSError as error:
        raise StoreError(
            f"cannot write to the data folder {folder} ({error.strerror or error}); "
            f"choose another with --data-dir"
        ) from error
    except NewerSchema as error:
        raise StoreError(f"{path}: {error}") from error
    except sqlite3.Error as error:
        raise StoreError(_database_problem(path, error, opening=True)) from error
    remove_stale_temp_files(folder)
    return database


def _open_for_reading(folder: Path) -> Database:
    path = folder / DATABASE_NAME
    if not path.is_file():
        raise NoSessions(f"no sessions yet in {folder}")
    _refuse_an_emptied_database(folder, path)
    try:
        return Database(path, read_only=True)
    except sqlite3.Error as error:
        raise StoreError(f"cannot read the session database {path} ({error})") from error


def _refuse_an_emptied_database(folder: Path, path: Path) -> None:
    """A zero-length database beside session folders was lost, not new: do not start over.

    SQLite takes an empty file for a new database, and the sessions on disk
    would silently vanish from every list.
    """
    try:
        empty = path.stat().st_size == 0
    except FileNotFoundError:
        return
    sessions = folder / "sessions"
    if not empty or not sessions.is_dir():
        return
    count = sum(1 for entry in sessions.iterdir() if entry.is_dir())
    if count:
        raise StoreError(
            f"{path} is empty (0 bytes) while {sessions} holds {count} session folder(s): the "
            "database was truncated or lost; restore it from a backup, or move it aside to "
            "start a new list (the session folders are kept)"
        )


#: a temporary file this old is a leftover of a killed process, not a write in progress
STALE_TEMP_SECONDS = 120.0


def remove_stale_temp_files(folder: Path, *, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Remove `write_atomic` leftovers (`.NAME.xxxx.tmp`) that a kill -9 left behind."""
    cutoff = time.time() - older_than
    removed = 0
    places: list[tuple[str, list[str]]] = [(str(folder), os.listdir(folder))]
    places += [(root, names) for root, _, names in os.walk(folder / "sessions")]
    for root, names in places:
        for name in names:
            if not (name.startswith(".") and name.endswith(".tmp")):
                continue
            path = os.path.join(root, name)
            with contextlib.suppress(OSError):
                if os.lstat(path).st_mtime < cutoff:
                    os.unlink(path)
                    removed += 1
    return removed


def _database_problem(path: Path, error: sqlite3.Error, *, opening: bool = False) -> str:
    """Say what SQLite's error means: busy is not full, full is not damaged."""
    text = str(error)
    if "locked" in text or "busy" in text:
        return (
            f"the session database {path} is busy in another imgen-tui process ({text}); "
            "try again when it has finished"
        )
    if "full" in text or "disk I/O" in text:
        return (
            f"the session database {path} could not be written ({text}); free some space or "
            "choose another folder with --data-dir"
        )
    if opening:
        return (
            f"cannot open the session database {path} ({text}); if the file is damaged, move "
            "it aside, or choose another folder with --data-dir"
        )
    return f"the session database {path} failed ({text}); details are in the log"


def _remove_tree(folder: Path) -> list[Path]:
    """Remove a session's folder; returns what could not be removed (not silently ignored)."""
    left: list[Path] = []

    def note(_function: object, path: str, _error: object) -> None:
        left.append(Path(path))

    if folder.exists():
        shutil.rmtree(folder, onerror=note)
    return [path for path in left if path.exists()]


def _sidecar(record: ImageRecord, output: NewImage) -> dict[str, Any]:
    """Seed 001's metadata sidecar: enough to understand and redo the image without the app."""
    return {
        "image": record.path.name,
        "id": record.id,
        "job": record.job_id,
        "seed": record.seed,
        "node": record.node_id,
        "seconds": record.seconds,
        "parent": record.parent_id,
        "width": record.width,
        "height": record.height,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(record.created_at)),
        **output.sidecar,
    }


def _copy_images(images: Sequence[ImageRecord], destination: Path) -> list[Path]:
    if destination.exists() and not destination.is_dir():
        raise NotADirectoryError(20, "it is a file, not a folder", str(destination))
    destination.mkdir(parents=True, exist_ok=True)
    copies: list[Path] = []
    for image in images:
        for source in (image.path, image.sidecar_path):
            data = source.read_bytes()
            target = _free_name(destination / source.name, data)
            write_atomic(target, data)
            copies.append(target)
    return copies


def _add_to_sidecar(path: Path, key: str, value: Any) -> None:
    """Set one key of a sidecar, keeping the rest; a missing or unreadable one is started anew."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        document = {}
    if not isinstance(document, dict):
        document = {}
    document[key] = value
    write_json_atomic(path, document)


def _free_name(target: Path, data: bytes) -> Path:
    """`target`, or `name-2.ext`, `name-3.ext`…: never over a different file already there."""
    candidate, number = target, 1
    while candidate.exists() and candidate.read_bytes() != data:
        number += 1
        candidate = target.with_name(f"{target.stem}-{number}{target.suffix}")
    return candidate
