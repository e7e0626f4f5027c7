"""The session store on a real SQLite file and real image files."""

from __future__ import annotations

import io
import json
import sqlite3
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from imgen_tui.sim.images import encode_png, render_picture
from imgen_tui.store import CorruptImage, NewImage, SessionStore, StoreError
from imgen_tui.store.files import safe_name
from imgen_tui.store.schema import MIGRATIONS, SCHEMA_VERSION


def png(seed: int = 1, size: int = 512) -> bytes:
    picture = render_picture("a red fox", seed, size, size)
    return encode_png(picture, {"3": {"inputs": {"seed": seed}}}, {"workflow": {}})


async def a_round_with_jobs(store: SessionStore, count: int = 2) -> tuple[str, str, list[str]]:
    session = await store.create_session("batch", "a red fox")
    round_info = await store.add_round(session.id, "drafts", prompt="a red fox")
    job_ids = [f"job{i}" for i in range(count)]
    await store.add_jobs(round_info.id, [(job_id, "{}") for job_id in job_ids])
    return session.id, round_info.id, job_ids


def output(data: bytes, seed: int = 1) -> NewImage:
    return NewImage(
        data=data,
        seed=seed,
        node_id="gpu-premium",
        seconds=1.5,
        parent_id=None,
        sidecar={"prompt": "a red fox"},
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SessionStore]:
    opened = await SessionStore.open(tmp_path / "data", thumbnail_side=128)
    yield opened
    await opened.close()


async def test_an_image_is_kept_byte_for_byte_with_thumbnail_and_sidecar(
    store: SessionStore,
) -> None:
    session_id, round_id, (job_id, _) = await a_round_with_jobs(store)
    data = png(7)
    (record,) = await store.save_images(job_id, [output(data, seed=7)])

    assert record.path.read_bytes() == data  # PNG text chunks survive: reopens in ComfyUI
    assert "prompt" in Image.open(record.path).info
    assert record.path.parent == store.session_dir(session_id)
    assert record.path.name == "r01-drafts-0001.png"
    with Image.open(record.thumb_path) as thumb:
        assert max(thumb.size) == 128 and thumb.format == "JPEG"
    sidecar = json.loads(record.sidecar_path.read_text())
    assert sidecar["seed"] == 7 and sidecar["prompt"] == "a red fox"
    assert sidecar["node"] == "gpu-premium" and sidecar["width"] == 512

    (stored,) = await store.images(round_id=round_id)
    assert stored == record
    jobs = {job.id: job.state for job in await store.jobs(session_id)}
    assert jobs == {"job0": "done", "job1": "queued"}
    assert not list(store.session_dir(session_id).rglob("*.tmp"))


async def test_a_job_is_kept_once_even_if_its_outputs_arrive_twice(store: SessionStore) -> None:
    session_id, _, (job_id, _) = await a_round_with_jobs(store)
    await store.save_images(job_id, [output(png(1))])
    await store.save_images(job_id, [output(png(1))])
    assert len(await store.images(session_id=session_id)) == 1


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"<html>502 Bad Gateway</html>", id="not-an-image"),
        pytest.param(lambda data: b"", id="empty"),
    ],
)
async def test_a_corrupt_image_fails_its_job_and_leaves_nothing(
    store: SessionStore, damage: object
) -> None:
    session_id, _, (job_id, _) = await a_round_with_jobs(store)
    with pytest.raises(CorruptImage):
        await store.save_images(job_id, [output(damage(png(3)))])  # type: ignore[operator]
    assert await store.images(session_id=session_id) == []
    assert {job.state for job in await store.jobs(session_id)} == {"queued"}
    folder = store.session_dir(session_id)
    assert not folder.exists() or not [p for p in folder.rglob("*") if p.is_file()]


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny file whose header claims a huge picture: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


async def test_a_decompression_bomb_is_refused(store: SessionStore) -> None:
    _, _, (job_id, _) = await a_round_with_jobs(store)
    with pytest.raises(CorruptImage, match="safety limit"):
        await store.save_images(job_id, [output(_bomb_png(20_000, 20_000))])


async def test_sessions_list_counts_and_disk_use_then_delete_removes_rows_and_files(
    store: SessionStore,
) -> None:
    session_id, _, job_ids = await a_round_with_jobs(store, 3)
    for index, job_id in enumerate(job_ids[:2]):
        await store.save_images(job_id, [output(png(index))])
    other = await store.create_session("funnel", "empty one")

    listed = {session.id: session for session in await store.sessions()}
    assert listed[session_id].image_count == 2 and listed[session_id].jobs_done == 2
    assert listed[session_id].job_count == 3 and not listed[session_id].finished
    files = [p for p in store.session_dir(session_id).rglob("*") if p.is_file()]
    expected_bytes = sum(p.stat().st_size for p in files)
    assert listed[session_id].disk_bytes == expected_bytes > 0
    assert listed[other.id].image_count == 0

    await store.delete_session(session_id)
    assert [s.id for s in await store.sessions()] == [other.id]
    assert not store.session_dir(session_id).exists()
    assert await store.jobs(session_id) == []


async def test_export_copies_only_the_picked_images_and_their_sidecars(
    store: SessionStore, tmp_path: Path
) -> None:
    session_id, _, job_ids = await a_round_with_jobs(store, 2)
    picked, rejected = [
        (await store.save_images(job_id, [output(png(i))]))[0] for i, job_id in enumerate(job_ids)
    ]
    await store.set_verdict(picked.id, "picked")
    await store.set_verdict(rejected.id, "rejected")
    copies = await store.export_picked(session_id, tmp_path / "export")
    assert sorted(p.name for p in copies) == ["r01-drafts-0001.json", "r01-drafts-0001.png"]
    assert (tmp_path / "export" / "r01-drafts-0001.png").read_bytes() == picked.path.read_bytes()


async def test_locks_and_the_intent_document_round_trip(store: SessionStore) -> None:
    session_id, _, (job_id, _) = await a_round_with_jobs(store)
    (image,) = await store.save_images(job_id, [output(png())])
    await store.set_locks(image.id, ["seed", "prompt"])
    await store.set_intent(session_id, {"avoid": ["text"], "prefer": ["warm light"]})
    (again,) = await store.images(session_id=session_id)
    assert again.locks == ("prompt", "seed")
    assert await store.intent(session_id) == {"avoid": ["text"], "prefer": ["warm light"]}


async def test_a_database_from_the_previous_schema_version_keeps_every_row(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    old = sqlite3.connect(data_dir / "imgen.sqlite3", isolation_level=None)
    old.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")  # the first release
    old.executescript(
        """
        INSERT INTO sessions VALUES ('s1', 'funnel', 'old session', 1.0, 2.0, '{"stage": 2}');
        INSERT INTO rounds VALUES ('r1', 's1', 1, 'drafts', 'a fox', 'blurry', '{}', 1.0);
        INSERT INTO jobs VALUES ('j1', 'r1', 1, '{}', 'done', 'gpu-a', 'p1', 1, NULL, 1.0, 1.5, 2.0);
        INSERT INTO jobs VALUES ('j2', 'r1', 2, '{}', 'submitted', 'gpu-b', 'p2', 1, NULL, 1.0, 1.5, NULL);
        INSERT INTO images VALUES ('i1', 'j1', 0, 'sessions/s1/a.png', 'sessions/s1/thumbs/a.jpg',
            'sessions/s1/a.json', 512, 512, 1000, 42, 'gpu-a', 3.0, NULL, 'picked', 2.0);
        """
    )
    old.close()

    store = await SessionStore.open(data_dir)
    try:
        (session,) = await store.sessions()
        assert (session.title, session.state, session.image_count) == (
            "old session",
            {"stage": 2},
            1,
        )
        assert [(j.id, j.state, j.prompt_id) for j in await store.jobs("s1")] == [
            ("j1", "done", "p1"),
            ("j2", "submitted", "p2"),
        ]
        (image,) = await store.images(session_id="s1")
        assert (image.seed, image.verdict, image.locks) == (42, "picked", ())
        assert image.path == store.data_dir / "sessions/s1/a.png"
        assert await store.intent("s1") == {}
    finally:
        await store.close()
    check = sqlite3.connect(data_dir / "imgen.sqlite3")
    assert check.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


async def test_a_database_from_a_newer_imgen_tui_is_left_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    sqlite3.connect(data_dir / "imgen.sqlite3").execute(
        f"PRAGMA user_version = {SCHEMA_VERSION + 1}"
    )
    with pytest.raises(StoreError, match="newer than this imgen-tui understands"):
        await SessionStore.open(data_dir)


async def test_a_data_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match=r"cannot write to the data folder .*--data-dir"):
        await SessionStore.open(blocker)


@given(st.text())
def test_safe_names_never_leave_their_folder(text: str) -> None:
    name = safe_name(text)
    assert name and "/" not in name and "\\" not in name
    assert not name.startswith(".") and ".." not in name.split("/")
    assert (Path("/base") / name).resolve().parent == Path("/base")


def test_thumbnails_keep_the_aspect_ratio() -> None:
    from imgen_tui.store.files import check_and_thumbnail

    picture = Image.new("RGB", (1024, 512), "red")
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    checked = check_and_thumbnail(buffer.getvalue(), 384)
    with Image.open(io.BytesIO(checked.thumbnail)) as thumb:
        assert thumb.size == (384, 192)
    assert (checked.width, checked.height, checked.format) == (1024, 512, "PNG")
