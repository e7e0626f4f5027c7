"""`imgen-tui batch --demo` with the shipped video templates, as a real process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from imgen_tui.graphs import load_library
from imgen_tui.locations import bundled_dir
from tests.cli_helpers import home_dirs, run_cli

SMALL = ("--width", "64", "--height", "64", "--steps", "2")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return home_dirs(tmp_path)


def session_files(data_dir: Path) -> tuple[Path, dict[str, object]]:
    (video,) = [
        path for path in (data_dir / "sessions").rglob("*.webp") if "thumbs" not in path.parts
    ]
    return video, json.loads(video.with_suffix(".json").read_text())


def test_the_video_templates_are_in_the_library_with_their_needs() -> None:
    library = load_library([bundled_dir("workflows")])
    plain, smooth = library["sd15_animatediff"], library["sd15_animatediff_interpolated"]
    assert plain.task == smooth.task == "video"
    assert set(plain.requires) == {"sd15", "animatediff", "video"}
    assert set(smooth.requires) == {"sd15", "animatediff", "interpolation", "video"}
    assert plain.required == {"prompt"}


@pytest.mark.parametrize(
    ("workflow", "frames", "fps", "nodes"),
    [
        ("sd15_animatediff", 24, 8.0, {"gpu-premium", "gpu-standard"}),
        ("sd15_animatediff_interpolated", 47, 16.0, {"gpu-premium"}),
    ],
)
def test_batch_demo_keeps_the_animated_webp_with_all_its_frames(
    tmp_path: Path, env: dict[str, str], workflow: str, frames: int, fps: float, nodes: set[str]
) -> None:
    data_dir = tmp_path / "data"
    done = run_cli(
        "batch", "--demo", "--workflow", workflow, "--prompt", "a red fox in snow",
        "--data-dir", str(data_dir), *SMALL, env=env, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    video, sidecar = session_files(data_dir)
    with Image.open(video) as picture:
        assert getattr(picture, "n_frames", 1) == frames and picture.size == (64, 64)
    assert sidecar["frames"] == frames and sidecar["fps"] == fps
    assert sidecar["animated"] is True and sidecar["node"] in nodes
    assert sidecar["prompt"] == "a red fox in snow"
    assert sidecar["prompt_schedule"] == [
        [0, "a red fox in snow"],
        [16, "a red fox in snow, slow camera pan, gentle motion"],
    ]
    graph = sidecar["graph"]
    assert isinstance(graph, dict)
    assert "ADE_StandardUniformContextOptions" in {node["class_type"] for node in graph.values()}
    thumbs = sorted((video.parent / "thumbs" / f"{video.stem}-frames").iterdir())
    assert len(thumbs) == frames


def test_a_missing_motion_model_fails_the_job_with_the_reason(
    tmp_path: Path, env: dict[str, str]
) -> None:
    done = run_cli(
        "batch", "--demo", "--workflow", "sd15_animatediff_interpolated", "--prompt", "a fox",
        "--data-dir", str(tmp_path / "data"), *SMALL, "--param", "motion_model=missing.ckpt",
        env=env, timeout=180,
    )  # fmt: skip
    text = " ".join((done.stdout + done.stderr).split())
    assert (
        "ADE_LoadAnimateDiffModel: model_name 'missing.ckpt' is not installed on gpu-premium"
        in text
    )
    assert "gpu-quality: no animatediff, interpolation" in text  # classes, but no motion model
    assert "Traceback" not in text
