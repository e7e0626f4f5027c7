"""Where a finished picture's bytes go between the node and the store.

A picture up to `READ_AT_ONCE` is checked and read back in the thread hop that
wrote its last piece; a bigger one is read once the job's pictures together
passed the pixel budget. Either way every download file is gone afterwards.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.flows import recorder
from imgen_tui.scheduler.events import JobDone, JobEvent, JobRetrying
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.store import CorruptImage, SessionStore
from tests.conftest import FAST_NODE
from tests.pilot_helpers import start_drafts, until
from tests.test_scheduler_farm import LIBRARY
from tests.test_scheduler_store import node_of, run_and_stop, stored_jobs
from tests.test_ui_funnel import SIZE, all_done, current_cells, demo_app


@pytest.mark.parametrize("read_at_once", [recorder.READ_AT_ONCE, 0], ids=["small", "big"])
async def test_every_draft_is_stored_and_no_download_is_left(
    tmp_path: Path, read_at_once: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder, "READ_AT_ONCE", read_at_once)
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        cells = current_cells(screen)
        assert len(cells) == 20 and all(cell.image is not None for cell in cells)
        assert all(cell.image.path.is_file() for cell in cells if cell.image is not None)
    downloads = tmp_path / ".downloads"  # made by the first download, kept for the next
    assert downloads.is_dir() and list(downloads.iterdir()) == []


# -- where a picture is decoded ----------------------------------------------------------------


def spy_checks(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Which thread ran the store's own check hop (`check`) and the bytes' check (`check_data`)."""
    calls: dict[str, list[str]] = {"check": [], "check_data": []}
    for name in calls:
        real = getattr(SessionStore, name)

        def spied(
            self: SessionStore, *args: Any, _real: Any = real, _name: str = name, **kw: Any
        ) -> Any:
            calls[_name].append(threading.current_thread().name)
            return _real(self, *args, **kw)

        monkeypatch.setattr(SessionStore, name, spied)
    return calls


def batch_of(pictures: int, seed: int) -> JobSpec:
    graph = LIBRARY["sd15_txt2img"].render(
        {"prompt": "a red fox", "seed": seed, "steps": 2, "batch_size": pictures}, DEFAULT_MODELS
    )
    return JobSpec.from_graph(graph, "sd15")


async def run_batches(tmp_path: Path, specs: list[JobSpec]) -> tuple[list[JobEvent], list[Any]]:
    store = await SessionStore.open(tmp_path / "data")
    try:
        farm = await node_of(FAST_NODE)
        session_id = await stored_jobs(store, specs)
        events = await run_and_stop(farm, store, specs)
        return events, await store.images(session_id=session_id)
    finally:
        await store.close()


async def test_a_jobs_only_picture_is_decoded_in_its_downloads_last_hop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No hop of the store's own: the thumbnail is made where the file was last written."""
    calls = spy_checks(monkeypatch)
    events, images = await run_batches(tmp_path, [batch_of(1, seed) for seed in (1, 2)])
    assert len([event for event in events if isinstance(event, JobDone)]) == 2
    assert calls["check"] == [] and len(calls["check_data"]) == 2
    assert threading.main_thread().name not in calls["check_data"]
    for image in images:  # what was kept is the picture and its thumbnail, as before
        with PILImage.open(image.path) as picture, PILImage.open(image.thumb_path) as thumb:
            assert picture.size == (512, 512) and thumb.size == (384, 384)
    assert not list((tmp_path / "data" / ".downloads").iterdir())


async def test_several_pictures_are_decoded_only_after_their_pixel_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy_checks(monkeypatch)
    events, images = await run_batches(tmp_path, [batch_of(2, 5)])
    assert len([event for event in events if isinstance(event, JobDone)]) == 1
    assert len(images) == 2 and len(calls["check"]) == 2  # the store's hop, each via check_data
    assert len(calls["check_data"]) == 2


async def test_a_picture_that_does_not_decode_names_node_and_file_and_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its header and checksums pass; its pixels do not: refused in the hop, nothing left."""
    real = SessionStore.check_data
    refused: list[bool] = []

    def undecodable(self: SessionStore, data: bytes, *args: Any, **kwargs: Any) -> Any:
        if not refused:
            refused.append(True)
            raise CorruptImage("it is not a readable image (broken data stream)")
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(SessionStore, "check_data", undecodable)
    events, images = await run_batches(tmp_path, [batch_of(1, 9)])
    retries = [event for event in events if isinstance(event, JobRetrying)]
    assert len(retries) == 1, [r.reason for r in retries]
    (retry,) = retries
    assert (
        retry.reason.startswith(f"{FAST_NODE.id}: 'imgen_")
        and "from /view: it is not" in retry.reason
    )
    assert len(images) == 1
    assert not list((tmp_path / "data" / ".downloads").iterdir())
