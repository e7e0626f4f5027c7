"""Where a finished picture's bytes go between the node and the store.

A picture up to `READ_AT_ONCE` is checked and read back in the thread hop that
wrote its last piece; a bigger one is read once the job's pictures together
passed the pixel budget. Either way every download file is gone afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imgen_tui.flows import recorder
from tests.pilot_helpers import start_drafts, until
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
