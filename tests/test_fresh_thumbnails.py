"""A thumbnail the store just made is painted from memory, with the file's own pixels.

The first paint of a finished draft used to read back the file the store had
just written, one more thread hop behind a busy event loop. The store now keeps
the decoded thumbnail (decoded from the bytes it wrote, so the pixels are the
file's) and the grid takes it from there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from imgen_tui.sim.images import encode_png, render_picture
from imgen_tui.store import CorruptImage, NewImage, SessionStore, StoreError
from imgen_tui.store.fresh_thumbnails import FRESH, FreshThumbnails
from imgen_tui.ui.widgets.thumbs import load_picture


def _output(seed: int, data: bytes | None = None) -> NewImage:
    if data is None:
        data = encode_png(render_picture("a red fox", seed, 256, 256), {}, {})
    return NewImage(data, seed, "gpu-premium", 1.0, None, {"prompt": "a red fox"})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SessionStore]:
    FRESH.keep()  # as the TUI does: this process paints thumbnails
    opened = await SessionStore.open(tmp_path / "data", thumbnail_side=128)
    yield opened
    await opened.close()


async def test_a_process_that_paints_no_thumbnails_keeps_none(tmp_path: Path) -> None:
    """The batch CLI: nothing decoded, nothing held; a later painter gets the files."""
    FRESH.keep(0)
    try:
        opened = await SessionStore.open(tmp_path / "data", thumbnail_side=128)
        (job_id,) = await _job(opened)
        (record,) = await opened.save_images(job_id, [_output(8)])
        assert not FRESH.wanted and FRESH.get(record.thumb_path) is None
        loaded = await load_picture(record.thumb_path)
        with Image.open(record.thumb_path) as on_disk:
            assert ImageChops.difference(loaded, on_disk.convert("RGB")).getbbox() is None
        await opened.close()
    finally:
        FRESH.keep()


async def _job(store: SessionStore, count: int = 1) -> list[str]:
    session = await store.create_session("funnel", "a red fox")
    round_info = await store.add_round(session.id, "drafts", prompt="a red fox")
    job_ids = [f"{session.id}-job{index}" for index in range(count)]
    await store.add_jobs(round_info.id, [(job_id, "{}") for job_id in job_ids])
    return job_ids


async def test_a_saved_thumbnail_is_kept_decoded_with_exactly_the_files_pixels(
    store: SessionStore,
) -> None:
    (job_id,) = await _job(store)
    (record,) = await store.save_images(job_id, [_output(3)])

    kept = FRESH.get(record.thumb_path)
    assert kept is not None
    with Image.open(record.thumb_path) as on_disk:
        assert ImageChops.difference(kept, on_disk.convert("RGB")).getbbox() is None

    shown = await load_picture(record.thumb_path)
    assert shown is kept  # no disk read, no thread hop
    record.thumb_path.unlink()
    assert await load_picture(record.thumb_path) is kept
    with pytest.raises(FileNotFoundError):  # a sized load (the lightbox's) still reads the file
        await load_picture(record.thumb_path, 64)


async def test_reopening_reads_the_file_once_the_picture_is_no_longer_kept(
    store: SessionStore,
) -> None:
    (job_id,) = await _job(store)
    (record,) = await store.save_images(job_id, [_output(4)])
    FRESH.forget(record.thumb_path)  # as after a restart, or once evicted

    (reopened,) = await store.images(session_id=None, round_id=record.round_id)
    assert reopened.thumb_path == record.thumb_path
    loaded = await load_picture(reopened.thumb_path)
    assert loaded is not FRESH.get(reopened.thumb_path)
    with Image.open(record.thumb_path) as on_disk:
        assert ImageChops.difference(loaded, on_disk.convert("RGB")).getbbox() is None


async def test_a_corrupt_output_or_a_failed_write_remembers_nothing(
    store: SessionStore, tmp_path: Path
) -> None:
    first, second = await _job(store, 2)
    with pytest.raises(CorruptImage):
        await store.save_images(first, [_output(5, b"<html>502 Bad Gateway</html>")])

    session_dir = store.session_dir((await store.sessions())[0].id)
    session_dir.mkdir(parents=True, exist_ok=True)
    (session_dir / "thumbs").write_text("a file where the thumbnails folder goes")
    with pytest.raises(StoreError):
        await store.save_images(second, [_output(6)])
    assert FRESH.get(session_dir / "thumbs" / "r01-drafts-0002.jpg") is None
    assert not [path for path in session_dir.rglob("*.png")]


def test_keeping_fewer_drops_the_oldest_at_once() -> None:
    kept = FreshThumbnails(kept=3)
    for name in "abc":
        kept.remember(Path(name), Image.new("RGB", (4, 4)))
    kept.keep(1)
    assert [kept.get(Path(name)) is not None for name in "abc"] == [False, False, True]
    kept.keep(0)
    assert not kept.wanted and kept.get(Path("c")) is None


def test_only_the_newest_are_kept_and_a_look_counts_as_use() -> None:
    kept = FreshThumbnails(kept=2)
    pictures = {name: Image.new("RGB", (4, 4)) for name in "abc"}
    kept.remember(Path("a"), pictures["a"])
    kept.remember(Path("b"), pictures["b"])
    assert kept.get(Path("a")) is pictures["a"]  # now newer than b
    kept.remember(Path("c"), pictures["c"])
    assert kept.get(Path("b")) is None
    assert kept.get(Path("a")) is pictures["a"] and kept.get(Path("c")) is pictures["c"]
    kept.remember(Path("a"), pictures["b"])  # the same name written again: the new picture
    assert kept.get(Path("a")) is pictures["b"]
