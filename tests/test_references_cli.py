"""`imgen-tui batch --ref` as a real process on the demo farm (issue 17, end to end)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imgen_tui.sim.references import difference
from tests.cli_helpers import home_dirs, run_cli
from tests.test_references_controls import is_pose_map

FIXTURES = Path(__file__).parent / "fixtures"
POSE = FIXTURES / "comfyui_v2" / "control_input_64.png"
FACE = FIXTURES / "comfyui" / "sample_output.png"


def batch(tmp_path: Path, name: str, *refs: str) -> tuple[dict[str, Any], Image.Image]:
    data = tmp_path / name
    done = run_cli(
        "batch", "--demo", "--data-dir", str(data), "--prompt", "a red fox", "--count", "1",
        "--steps", "3", "--seed", "fixed", "--seed-start", "42", *refs,
        env=home_dirs(tmp_path), timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [sidecar] = data.glob("sessions/*/*.json")
    with Image.open(sidecar.with_suffix(".png")) as picture:
        return json.loads(sidecar.read_text()), picture.convert("RGB")


def test_a_stacked_pose_and_face_job_runs_on_the_demo_farm(tmp_path: Path) -> None:
    sidecar, picture = batch(tmp_path, "refs", "--ref", f"pose:{POSE}", "--ref", f"face:{FACE}:0.6")
    # only gpu-premium has IP-Adapter FaceID with its models
    assert sidecar["node"] == "gpu-premium"
    ran = {node["class_type"] for node in sidecar["graph"].values()}
    assert {"DWPreprocessor", "ControlNetApplyAdvanced", "IPAdapterFaceID"} <= ran
    pose, face = sidecar["references"]
    assert (pose["kind"], pose["file"], pose["strength"]) == ("pose", str(POSE), 0.8)
    assert pose["models"] == ["control_v11p_sd15_openpose.pth"]
    assert any(node.endswith("DWPreprocessor") for node in pose["nodes"])
    assert is_pose_map(Path(pose["map"]))  # the preprocessor's map, kept as its own image
    assert (face["kind"], face["file"], face["strength"]) == ("face", str(FACE), 0.6)
    assert "ip-adapter-faceid-plusv2_sd15.bin" in face["models"]
    # the same seed without references makes a visibly different picture
    _, plain = batch(tmp_path, "plain")
    assert difference(picture, plain) > 5


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("hat:{pose}", "--ref 'hat:{pose}' is not KIND:IMAGE[:STRENGTH] with KIND one of pose,"),
        ("pose:{missing}", "{missing} is not a file; give an image to keep"),
        ("pose:{pose}:7", "strength 7 is out of range; give 0 to 2"),
        ("style:{text}", "is not an image Pillow can read"),
    ],
)
def test_a_bad_ref_exits_2_with_one_sentence(tmp_path: Path, ref: str, says: str) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    names = {"pose": POSE, "missing": tmp_path / "none.png", "text": text}
    done = run_cli(
        "batch", "--demo", "--data-dir", str(tmp_path / "d"), "--prompt", "a fox",
        "--ref", ref.format(**names), env=home_dirs(tmp_path),
    )  # fmt: skip
    assert done.returncode == 2
    assert says.format(**names) in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "d" / "sessions").exists()  # nothing ran
