"""Animated outputs as real nodes report them (recorded), parsed and kept with their frames."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imgen_tui.comfy.outputs import animated_outputs
from imgen_tui.comfy.responses import HistoryEntry
from imgen_tui.store import CorruptImage, NewImage, SessionStore
from imgen_tui.store.animation import frames_of, inspect_output, read_animation

VIDEO = Path(__file__).parent / "fixtures" / "comfyui" / "video"


def recorded_history(run: str) -> dict[str, Any]:
    runs: dict[str, Any] = json.loads((VIDEO / "history_animated.json").read_text())
    return dict(runs[run])


def entry_of(run: str) -> HistoryEntry:
    recorded = recorded_history(run)
    return HistoryEntry.from_json(recorded["prompt_id"], recorded["entry"])


def test_core_animated_webp_sits_under_images_with_the_animated_flag() -> None:
    entry = entry_of("ad_gen2_webp")
    assert [ref.filename for ref in entry.saved_images] == ["gen2_00001_.webp"]
    (video,) = animated_outputs(entry.outputs)
    assert (video.node, video.subfolder, video.format) == ("7", "ad", "image/webp")
    assert video.frame_rate is None  # core keeps its rate inside the file


def test_vhs_lists_every_format_under_gifs_mp4_included() -> None:
    gif = entry_of("ad_gen1_vhs_gif")
    mp4 = entry_of("vhs_combine_h264")
    # before: only `images` was read, so a VHS run "saved no image" and was retried forever
    assert [ref.filename for ref in gif.saved_images] == ["gen1_00001.gif"]
    assert [ref.filename for ref in mp4.saved_images] == ["h264_00001.mp4"]
    (video,) = animated_outputs(mp4.outputs)
    assert video.format == "video/h264-mp4" and video.frame_rate == 8.0


def test_core_mp4_and_webm_are_images_that_say_animated() -> None:
    formats = {
        run: [video.format for video in animated_outputs(entry_of(run).outputs)]
        for run in ("anim_savevideo", "anim_webm", "anim_png")
    }
    assert formats == {
        "anim_savevideo": ["video/mp4"],
        "anim_webm": ["video/webm"],
        "anim_png": ["image/png"],
    }


def test_a_still_is_not_animated() -> None:
    outputs = {"9": {"images": [{"filename": "a_00001_.png", "subfolder": "", "type": "output"}]}}
    assert animated_outputs(outputs) == ()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SessionStore]:
    opened = await SessionStore.open(tmp_path / "data", thumbnail_side=128)
    yield opened
    await opened.close()


async def keep(store: SessionStore, data: bytes, fps: float | None = None) -> Any:
    session = await store.create_session("video", "a red fox")
    round_info = await store.add_round(session.id, "render", prompt="a red fox")
    await store.add_jobs(round_info.id, [("job0", "{}")])
    sidecar: dict[str, Any] = {"graph": {"7": {"class_type": "SaveAnimatedWEBP"}}}
    if fps is not None:
        sidecar["fps"] = fps
    (record,) = await store.save_images(
        "job0",
        [NewImage(data=data, seed=1, node_id="n", seconds=1.0, parent_id=None, sidecar=sidecar)],
    )
    return record


@pytest.mark.parametrize(
    ("name", "extension", "fps"),
    [
        ("ad_gen2_webp_output_7.webp", ".webp", None),
        ("ad_gen1_vhs_gif_output_7.gif", ".gif", 8.0),
        ("vhs_combine_h264_output_7.mp4", ".mp4", None),
        ("anim_webm_output_7.webm", ".webm", None),
        ("anim_png_output_7.png", ".png", None),
    ],
)
async def test_the_store_keeps_the_video_its_frame_thumbnails_and_a_sidecar(
    store: SessionStore, name: str, extension: str, fps: float | None
) -> None:
    data = (VIDEO / name).read_bytes()
    record = await keep(store, data, fps)
    assert record.path.read_bytes() == data and record.path.suffix == extension
    assert (record.width, record.height) == (64, 64)
    with Image.open(record.thumb_path) as thumb:
        assert thumb.format == "JPEG"
    sidecar = json.loads(record.sidecar_path.read_text())
    assert sidecar["animated"] is True and sidecar["frames"] == 8
    assert sidecar["fps"] == pytest.approx(8.0, abs=0.01)
    assert "graph" in sidecar
    animation = read_animation(record.sidecar_path)
    assert animation is not None and animation.frames == 8
    assert len(animation.frame_paths) == 8 and all(path.is_file() for path in animation.frame_paths)
    assert len(list(frames_of(record.path))) == 8
    assert inspect_output(record.path)[1:] == (64, 64)


async def test_a_still_has_no_animation(store: SessionStore) -> None:
    data = (Path(__file__).parent / "fixtures" / "comfyui" / "sample_output.png").read_bytes()
    record = await keep(store, data)
    assert read_animation(record.sidecar_path) is None
    assert not (record.thumb_path.parent / f"{record.path.stem}-frames").exists()


async def test_a_truncated_video_is_refused_and_leaves_nothing(store: SessionStore) -> None:
    data = (VIDEO / "vhs_combine_h264_output_7.mp4").read_bytes()
    with pytest.raises(CorruptImage, match="MP4"):
        await keep(store, data[: len(data) // 3])
    leftover = [
        path for path in store.data_dir.rglob("*") if path.is_file() and "sqlite" not in path.name
    ]
    assert leftover == []
