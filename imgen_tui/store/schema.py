"""The database schema as a list of forward migrations, versioned by `PRAGMA user_version`.

A migration is never edited once released: a change is a new entry at the
end. Opening a database runs the entries past its `user_version`, each in its
own transaction, so an old session file keeps every row and gains the new
columns with their defaults.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: sessions, rounds, jobs, images
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        flow TEXT NOT NULL,
        title TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        state TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE rounds (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        stage TEXT NOT NULL,
        prompt TEXT NOT NULL DEFAULT '',
        negative TEXT NOT NULL DEFAULT '',
        parameters TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        UNIQUE (session_id, position)
    );
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        round_id TEXT NOT NULL REFERENCES rounds(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        spec TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'queued'
            CHECK (state IN ('queued', 'submitted', 'running', 'done', 'failed', 'cancelled')),
        node_id TEXT,
        prompt_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at REAL NOT NULL,
        submitted_at REAL,
        finished_at REAL
    );
    CREATE INDEX jobs_by_round ON jobs (round_id, position);
    CREATE INDEX jobs_by_state ON jobs (state);
    CREATE TABLE images (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        output_index INTEGER NOT NULL,
        path TEXT NOT NULL,
        thumb_path TEXT NOT NULL,
        sidecar_path TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        seed INTEGER,
        node_id TEXT NOT NULL,
        seconds REAL,
        parent_id TEXT REFERENCES images(id) ON DELETE SET NULL,
        verdict TEXT NOT NULL DEFAULT 'none' CHECK (verdict IN ('none', 'picked', 'rejected')),
        created_at REAL NOT NULL,
        UNIQUE (job_id, output_index)
    );
    CREATE INDEX images_by_job ON images (job_id);
    """,
    # 2: per-image locks and the session's intent document (prompt refinement)
    """
    ALTER TABLE images ADD COLUMN locks TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE intents (
        session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
        document TEXT NOT NULL DEFAULT '{}',
        updated_at REAL NOT NULL
    );
    """,
    # 3: image labels from the vision model (caption, tags, NSFW flag), searchable
    """
    CREATE TABLE labels (
        image_id TEXT PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
        caption TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        nsfw INTEGER NOT NULL DEFAULT 0,
        model TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class NewerSchema(Exception):
    """The file was written by a newer imgen-tui: opening it could lose data."""


def migrate(connection: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the database up to `target`; returns the version it started at.

    Two processes may open a new data folder at the same moment. Each step
    therefore takes the write lock first (`BEGIN IMMEDIATE`, which waits out
    the connection's busy timeout), reads the version again under that lock
    and does nothing if the other process has already made the step.
    """
    (start,) = connection.execute("PRAGMA user_version").fetchone()
    _refuse_newer(start)
    while True:
        connection.execute("BEGIN IMMEDIATE")
        try:
            (current,) = connection.execute("PRAGMA user_version").fetchone()
            _refuse_newer(current)
            if current >= target:
                connection.execute("COMMIT")
                return int(start)
            for statement in statements(MIGRATIONS[current]):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {current + 1}")
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise


def statements(script: str) -> list[str]:
    """A migration's statements one by one: `executescript` would commit our transaction."""
    found: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    if pending.strip():
        found.append(pending.strip())
    return found


def _refuse_newer(version: int) -> None:
    if version > SCHEMA_VERSION:
        raise NewerSchema(
            f"schema version {version} is newer than this imgen-tui understands "
            f"({SCHEMA_VERSION}); upgrade imgen-tui to open it"
        )
