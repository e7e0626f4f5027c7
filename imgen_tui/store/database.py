"""The SQLite side of the store: one connection, WAL, foreign keys, explicit transactions.

Blocking by nature; `SessionStore` calls it from a single worker thread, so
statements never interleave and the event loop never waits on the disk.
`synchronous=FULL` makes every commit durable before it returns, which is what
"committed before POST /prompt" has to mean.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from time import monotonic, sleep
from typing import Any

from imgen_tui.store.records import (
    GalleryImage,
    ImageLabel,
    ImageRecord,
    JobRow,
    JobRowState,
    RoundInfo,
    SessionDetails,
    SessionInfo,
    Verdict,
    loads_object,
)
from imgen_tui.store.schema import SCHEMA_VERSION, migrate

_JOB_COLUMNS = "id, round_id, position, spec, state, node_id, prompt_id, attempts, last_error"
_IMAGE_COLUMNS = (
    "images.id, job_id, jobs.round_id, output_index, path, thumb_path, sidecar_path, width, "
    "height, bytes, seed, images.node_id, seconds, parent_id, verdict, locks, images.created_at"
)


BUSY_TIMEOUT_MS = 15_000  # another process's transaction (or first open) is waited for this long


def new_id() -> str:
    return uuid.uuid4().hex


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    if not read_only:
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # A folder we may not write to cannot hold WAL's shared-memory file; when the
    # database is not being written (no -wal file beside it), read it as immutable.
    writable = os.access(path.parent, os.W_OK)
    wal = path.with_name(path.name + "-wal")
    immutable = "" if writable or wal.exists() else "&immutable=1"
    uri = f"{path.resolve().as_uri()}?mode=ro{immutable}"
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)


def _retry_while_locked(call: Callable[[], object], *, seconds: float = 15.0) -> None:
    """Switching to WAL can answer "locked" at once while another process sets it up."""
    deadline = monotonic() + seconds
    while True:
        try:
            call()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or monotonic() > deadline:
                raise
            sleep(0.05)


class Database:
    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self.connection = _connect(path, read_only)
        try:
            # The busy timeout comes first: every later statement, the switch to WAL
            # included, may meet another process opening the same folder.
            self.connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self.connection.execute("PRAGMA foreign_keys = ON")
            if read_only:
                self.migrated_from = self._version_for_reading()
                return
            _retry_while_locked(lambda: self.connection.execute("PRAGMA journal_mode = WAL"))
            self.connection.execute("PRAGMA synchronous = FULL")
            self.migrated_from = migrate(self.connection)
        except BaseException:
            self.connection.close()
            raise

    def _version_for_reading(self) -> int:
        (version,) = self.connection.execute("PRAGMA user_version").fetchone()
        if version != SCHEMA_VERSION:
            raise sqlite3.OperationalError(
                f"it has schema version {version}, not {SCHEMA_VERSION}; open it once with "
                "write access to bring it up to date"
            )
        return int(version)

    def close(self) -> None:
        self.connection.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    # -- sessions and rounds -----------------------------------------------------------------

    def create_session(self, flow: str, title: str, state: dict[str, Any]) -> SessionInfo:
        now = time.time()
        session = SessionInfo(new_id(), flow, title, now, now, state)
        with self.transaction() as db:
            db.execute(
                "INSERT INTO sessions (id, flow, title, created_at, updated_at, state) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (session.id, flow, title, now, now, json.dumps(state)),
            )
        return session

    def sessions(self, session_id: str | None = None) -> list[SessionInfo]:
        """Newest first, with image and job counts."""
        where, args = ("WHERE s.id = ?", (session_id,)) if session_id else ("", ())
        rows = self.connection.execute(
            f"""
            SELECT s.id, s.flow, s.title, s.created_at, s.updated_at, s.state,
                (SELECT count(*) FROM images i JOIN jobs j ON i.job_id = j.id
                    JOIN rounds r ON j.round_id = r.id WHERE r.session_id = s.id),
                (SELECT count(*) FROM jobs j JOIN rounds r ON j.round_id = r.id
                    WHERE r.session_id = s.id),
                (SELECT count(*) FROM jobs j JOIN rounds r ON j.round_id = r.id
                    WHERE r.session_id = s.id AND j.state = 'done')
            FROM sessions s {where} ORDER BY s.updated_at DESC
            """,
            args,
        ).fetchall()
        return [
            SessionInfo(
                id=row[0],
                flow=row[1],
                title=row[2],
                created_at=row[3],
                updated_at=row[4],
                state=loads_object(row[5]),
                image_count=row[6],
                job_count=row[7],
                jobs_done=row[8],
            )
            for row in rows
        ]

    def session_details(self, thumbs: int) -> dict[str, SessionDetails]:
        """Every session's picks, prompts and first `thumbs` picked thumbnails, in two queries."""
        prompts: dict[str, list[str]] = {}
        for session_id, prompt in self.connection.execute(
            "SELECT session_id, prompt FROM rounds ORDER BY session_id, position"
        ):
            if prompt and prompt not in prompts.setdefault(session_id, []):
                prompts[session_id].append(prompt)
        picks: dict[str, list[str]] = {}
        for session_id, thumb in self.connection.execute(
            "SELECT r.session_id, i.thumb_path FROM images i JOIN jobs j ON i.job_id = j.id "
            "JOIN rounds r ON j.round_id = r.id WHERE i.verdict = 'picked' "
            "ORDER BY r.session_id, r.position, j.position, i.output_index"
        ):
            picks.setdefault(session_id, []).append(thumb)
        return {
            session_id: SessionDetails(
                picks=len(picks.get(session_id, [])),
                prompts="\n".join(prompts.get(session_id, [])),
                picked_thumbs=tuple(Path(t) for t in picks.get(session_id, [])[:thumbs]),
            )
            for session_id in {*prompts, *picks}
        }

    def gallery(self, final_stage: str) -> list[GalleryImage]:
        """Every picked image and every image of a `final_stage` round, newest first."""
        rows = self.connection.execute(
            f"SELECT {_IMAGE_COLUMNS}, r.session_id, s.flow, r.prompt FROM images "
            "JOIN jobs ON images.job_id = jobs.id JOIN rounds r ON jobs.round_id = r.id "
            "JOIN sessions s ON r.session_id = s.id "
            "WHERE images.verdict = 'picked' OR r.stage = ? "
            "ORDER BY images.created_at DESC, r.position DESC, jobs.position",
            (final_stage,),
        ).fetchall()
        width = len(_IMAGE_COLUMNS.split(","))
        return [
            GalleryImage(_image_record(row[:width]), row[width], row[width + 1], row[width + 2])
            for row in rows
        ]

    def set_label(self, image_id: str, label: ImageLabel) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO labels (image_id, caption, tags, nsfw, model, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    image_id,
                    label.caption,
                    json.dumps(list(label.tags)),
                    int(label.nsfw),
                    label.model,
                    time.time(),
                ),
            )

    def labels(self, session_id: str) -> dict[str, ImageLabel]:
        """image id -> its label, for one session's images."""
        rows = self.connection.execute(
            "SELECT l.image_id, l.caption, l.tags, l.nsfw, l.model FROM labels l "
            "JOIN images i ON l.image_id = i.id JOIN jobs j ON i.job_id = j.id "
            "JOIN rounds r ON j.round_id = r.id WHERE r.session_id = ?",
            (session_id,),
        ).fetchall()
        return {row[0]: _label(row[1:]) for row in rows}

    def session_labels(self) -> dict[str, str]:
        """session id -> its labels as text, one per line: what the sessions search reads."""
        found: dict[str, list[str]] = {}
        for session_id, *label in self.connection.execute(
            "SELECT r.session_id, l.caption, l.tags, l.nsfw, l.model FROM labels l "
            "JOIN images i ON l.image_id = i.id JOIN jobs j ON i.job_id = j.id "
            "JOIN rounds r ON j.round_id = r.id ORDER BY r.session_id, l.created_at"
        ):
            found.setdefault(session_id, []).append(_label(label).text())
        return {session_id: "\n".join(lines) for session_id, lines in found.items()}

    def update_session(
        self, session_id: str, *, title: str | None = None, state: dict[str, Any] | None = None
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE sessions SET title = coalesce(?, title), state = coalesce(?, state), "
                "updated_at = ? WHERE id = ?",
                (title, None if state is None else json.dumps(state), time.time(), session_id),
            )

    def delete_session(self, session_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def add_round(
        self,
        session_id: str,
        stage: str,
        *,
        prompt: str = "",
        negative: str = "",
        parameters: dict[str, Any] | None = None,
    ) -> RoundInfo:
        parameters = parameters or {}
        with self.transaction() as db:
            (position,) = db.execute(
                "SELECT coalesce(max(position), 0) + 1 FROM rounds WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            round_info = RoundInfo(
                new_id(), session_id, position, stage, prompt, negative, parameters
            )
            db.execute(
                "INSERT INTO rounds (id, session_id, position, stage, prompt, negative, "
                "parameters, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    round_info.id,
                    session_id,
                    position,
                    stage,
                    prompt,
                    negative,
                    json.dumps(parameters),
                    time.time(),
                ),
            )
            self._touch(db, session_id)
        return round_info

    def rounds(self, session_id: str) -> list[RoundInfo]:
        rows = self.connection.execute(
            "SELECT id, session_id, position, stage, prompt, negative, parameters FROM rounds "
            "WHERE session_id = ? ORDER BY position",
            (session_id,),
        ).fetchall()
        return [
            RoundInfo(
                id=row[0],
                session_id=row[1],
                position=row[2],
                stage=row[3],
                prompt=row[4],
                negative=row[5],
                parameters=loads_object(row[6]),
            )
            for row in rows
        ]

    # -- jobs ---------------------------------------------------------------------------------

    def add_jobs(self, round_id: str, jobs: Sequence[tuple[str, str]]) -> None:
        """(job id, spec JSON) pairs, queued, in one transaction however many there are."""
        now = time.time()
        with self.transaction() as db:
            (start,) = db.execute(
                "SELECT coalesce(max(position), 0) FROM jobs WHERE round_id = ?", (round_id,)
            ).fetchone()
            db.executemany(
                "INSERT INTO jobs (id, round_id, position, spec, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    (job_id, round_id, start + offset, spec, now)
                    for offset, (job_id, spec) in enumerate(jobs, 1)
                ),
            )

    def job_submitted(self, job_id: str, node_id: str, prompt_id: str, attempts: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET state = 'submitted', node_id = ?, prompt_id = ?, attempts = ?, "
                "submitted_at = ?, finished_at = NULL WHERE id = ?",
                (node_id, prompt_id, attempts, time.time(), job_id),
            )

    def set_job_state(self, job_id: str, state: JobRowState, error: str | None = None) -> None:
        finished = time.time() if state in ("done", "failed", "cancelled") else None
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET state = ?, last_error = coalesce(?, last_error), "
                "finished_at = ? WHERE id = ? AND state != 'done'",
                (state, error, finished, job_id),
            )

    def jobs(self, session_id: str, states: Iterable[JobRowState] | None = None) -> list[JobRow]:
        query = (
            f"SELECT {', '.join('j.' + c.strip() for c in _JOB_COLUMNS.split(','))} "
            "FROM jobs j JOIN rounds r ON j.round_id = r.id WHERE r.session_id = ?"
        )
        args: list[Any] = [session_id]
        if states is not None:
            wanted = list(states)
            query += f" AND j.state IN ({', '.join('?' * len(wanted))})"
            args += wanted
        rows = self.connection.execute(query + " ORDER BY r.position, j.position", args)
        return [JobRow(*row) for row in rows.fetchall()]

    def job_place(self, job_id: str) -> tuple[str, str, int, str, int]:
        """(session, round, round position, stage, job position): where its files go, named."""
        row = self.connection.execute(
            "SELECT r.session_id, r.id, r.position, r.stage, j.position FROM jobs j "
            "JOIN rounds r ON j.round_id = r.id WHERE j.id = ?",
            (job_id,),
        ).fetchone()
        if row is None:
            raise KeyError(f"job {job_id} is not in the store")
        return (row[0], row[1], row[2], row[3], row[4])

    # -- images -------------------------------------------------------------------------------

    def finish_job_with_images(self, job_id: str, images: Sequence[ImageRecord]) -> bool:
        """Record the images and mark the job done together; False if it already was."""
        with self.transaction() as db:
            (state,) = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if state == "done":
                return False
            db.executemany(
                "INSERT INTO images (id, job_id, output_index, path, thumb_path, sidecar_path, "
                "width, height, bytes, seed, node_id, seconds, parent_id, verdict, locks, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        image.id,
                        job_id,
                        image.output_index,
                        str(image.path),
                        str(image.thumb_path),
                        str(image.sidecar_path),
                        image.width,
                        image.height,
                        image.bytes,
                        image.seed,
                        image.node_id,
                        image.seconds,
                        image.parent_id,
                        image.verdict,
                        json.dumps(list(image.locks)),
                        image.created_at,
                    )
                    for image in images
                ),
            )
            db.execute(
                "UPDATE jobs SET state = 'done', finished_at = ?, last_error = NULL WHERE id = ?",
                (time.time(), job_id),
            )
            db.execute(
                "UPDATE sessions SET updated_at = ? WHERE id = "
                "(SELECT r.session_id FROM rounds r JOIN jobs j ON j.round_id = r.id "
                "WHERE j.id = ?)",
                (time.time(), job_id),
            )
        return True

    def images(
        self, *, session_id: str | None = None, round_id: str | None = None
    ) -> list[ImageRecord]:
        query = (
            f"SELECT {_IMAGE_COLUMNS} FROM images JOIN jobs ON images.job_id = jobs.id "
            "JOIN rounds r ON jobs.round_id = r.id WHERE "
        )
        if round_id is not None:
            query, args = query + "jobs.round_id = ?", (round_id,)
        elif session_id is not None:
            query, args = query + "r.session_id = ?", (session_id,)
        else:
            raise ValueError("images() needs a session or a round")
        rows = self.connection.execute(
            query + " ORDER BY r.position, jobs.position, output_index", args
        )
        return [_image_record(row) for row in rows.fetchall()]

    def set_verdict(self, image_id: str, verdict: Verdict) -> None:
        with self.transaction() as db:
            db.execute("UPDATE images SET verdict = ? WHERE id = ?", (verdict, image_id))

    def set_locks(self, image_id: str, locks: Iterable[str]) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE images SET locks = ? WHERE id = ?", (json.dumps(sorted(locks)), image_id)
            )

    # -- the intent document ---------------------------------------------------------------------

    def intent(self, session_id: str) -> dict[str, Any]:
        row = self.connection.execute(
            "SELECT document FROM intents WHERE session_id = ?", (session_id,)
        ).fetchone()
        return loads_object(row[0]) if row else {}

    def set_intent(self, session_id: str, document: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO intents (session_id, document, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (session_id) DO UPDATE SET document = excluded.document, "
                "updated_at = excluded.updated_at",
                (session_id, json.dumps(document), time.time()),
            )

    def _touch(self, db: sqlite3.Connection, session_id: str) -> None:
        db.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (time.time(), session_id))


def _label(row: Sequence[Any]) -> ImageLabel:
    tags = json.loads(row[1]) if row[1] else []
    return ImageLabel(
        caption=str(row[0]),
        tags=tuple(str(tag) for tag in tags) if isinstance(tags, list) else (),
        nsfw=bool(row[2]),
        model=str(row[3]),
    )


def _image_record(row: Sequence[Any]) -> ImageRecord:
    return ImageRecord(
        id=row[0],
        job_id=row[1],
        round_id=row[2],
        output_index=row[3],
        path=Path(row[4]),
        thumb_path=Path(row[5]),
        sidecar_path=Path(row[6]),
        width=row[7],
        height=row[8],
        bytes=row[9],
        seed=row[10],
        node_id=row[11],
        seconds=row[12],
        parent_id=row[13],
        verdict=row[14],
        locks=tuple(json.loads(row[15])),
        created_at=row[16],
    )
