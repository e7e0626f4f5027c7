"""`imgen-tui workflows` and `batch --workflow FILE` as real processes (demo farm, saved dumps)."""

from __future__ import annotations

import contextlib
import gzip
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from tests.cli_helpers import home_dirs, run_cli
from tests.ui_workflows import FIXTURES

SD15_UI = FIXTURES / "sd15_editor_ui.json"
FLUX_UI = FIXTURES / "flux_modern_subgraph_ui.json"
SHOW_KEYS = {"format", "family", "task", "classes", "models", "missing_classes", "parameters"}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return home_dirs(tmp_path)


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    """The recorded 780-class /object_info, saved as `curl .../object_info` would."""
    path = tmp_path / "object_info.json"
    with gzip.open(FIXTURES / "object_info_full_with_packs.json.gz", "rb") as source:
        path.write_bytes(source.read())
    return path


def show_json(*args: str, env: dict[str, str]) -> dict[str, Any]:
    result = run_cli("workflows", "show", *args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_show_json_of_a_ui_file_offline(dump: Path, env: dict[str, str]) -> None:
    data = show_json(str(SD15_UI), "--object-info", str(dump), env=env)
    assert set(data) == SHOW_KEYS
    assert (data["format"], data["family"], data["task"]) == ("ui", "sd15", "txt2img")
    assert data["missing_classes"] == []
    assert "KSampler" in data["classes"] and "Reroute" not in data["classes"]
    assert data["models"] == [
        {
            "node": "4",
            "input": "ckpt_name",
            "name": "v1-5-pruned-emaonly.safetensors",
            "folder": "checkpoints",
        }
    ]
    by_role = {p["role"]: p for p in data["parameters"] if p["role"]}
    assert by_role["prompt"]["value"] == "a red fox in snow"
    assert by_role["negative"]["value"] == "blurry"
    assert by_role["seed"]["value"] == 42 and by_role["seed"]["kind"] == "int"
    assert by_role["sampler"]["kind"] == "combo" and "euler" in by_role["sampler"]["options"]
    assert by_role["steps"]["minimum"] == 1
    assert {p["role"] for p in data["parameters"]} >= {
        "prompt",
        "negative",
        "seed",
        "steps",
        "cfg",
        "sampler",
        "scheduler",
        "width",
        "height",
        "checkpoint",
        "denoise",
        None,
    }
    for parameter in data["parameters"]:
        assert {"node", "input", "kind", "role", "value"} <= set(parameter)


def test_missing_classes_are_information_not_an_error(
    tmp_path: Path, dump: Path, env: dict[str, str]
) -> None:
    classes = json.loads(dump.read_text())
    del classes["LoraLoader"]
    trimmed = tmp_path / "trimmed.json"
    trimmed.write_text(json.dumps(classes))
    workflow = json.loads(SD15_UI.read_text())
    next(node for node in workflow["nodes"] if node["id"] == 10)["mode"] = 0  # un-bypass the LoRA
    path = tmp_path / "with_lora.json"
    path.write_text(json.dumps(workflow))
    data = show_json(str(path), "--object-info", str(trimmed), env=env)
    assert data["missing_classes"] == ["LoraLoader"]


def test_show_reads_api_files_and_comfyui_pngs(
    tmp_path: Path, dump: Path, env: dict[str, str]
) -> None:
    recorded = json.loads((FIXTURES / "recorded_graphs.json").read_text())
    api = tmp_path / "controlnet.json"
    api.write_text(json.dumps(recorded["v2/controlnet_txt2img"]))
    data = show_json(str(api), "--object-info", str(dump), env=env)
    assert (data["format"], data["task"]) == ("api", "txt2img")
    assert {ref["folder"] for ref in data["models"]} == {"checkpoints", "controlnet"}
    png = tmp_path / "ComfyUI_00001_.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(recorded["v2/controlnet_txt2img"]))
    info.add_text("workflow", SD15_UI.read_text())
    Image.new("RGB", (8, 8)).save(png, pnginfo=info)
    assert show_json(str(png), "--object-info", str(dump), env=env)["format"] == "ui"


def test_show_prints_what_was_inferred_and_the_parameters(dump: Path, env: dict[str, str]) -> None:
    result = run_cli("workflows", "show", str(FLUX_UI), "--object-info", str(dump), env=env)
    assert result.returncode == 0, result.stderr
    assert "family flux, task txt2img" in result.stdout
    assert "diffusion_models/flux1-dev.safetensors" in result.stdout
    assert "noise_seed" in result.stdout and "SamplerCustomAdvanced" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"hello": 1}', "is neither a ComfyUI workflow"),
        (None, "no such workflow file"),
    ],
)
def test_unreadable_files_exit_2_with_one_sentence(
    tmp_path: Path, dump: Path, env: dict[str, str], content: str | None, message: str
) -> None:
    path = tmp_path / "broken.json"
    if content is not None:
        path.write_text(content)
    result = run_cli("workflows", "show", str(path), "--object-info", str(dump), env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and message in lines[0]
    assert "Traceback" not in result.stderr


def test_a_file_that_cannot_be_converted_exits_2(
    tmp_path: Path, dump: Path, env: dict[str, str]
) -> None:
    workflow = json.loads(FLUX_UI.read_text())
    del workflow["definitions"]
    path = tmp_path / "no_definitions.json"
    path.write_text(json.dumps(workflow))
    result = run_cli("workflows", "show", str(path), "--object-info", str(dump), env=env)
    assert result.returncode == 2
    assert "node 4 is a subgraph whose definition" in result.stderr


def test_a_bad_object_info_dump_exits_2(tmp_path: Path, env: dict[str, str]) -> None:
    bad = tmp_path / "dump.json"
    bad.write_text('{"a": [1]}')
    result = run_cli("workflows", "show", str(SD15_UI), "--object-info", str(bad), env=env)
    assert result.returncode == 2 and "is not an /object_info answer" in result.stderr


IPADAPTER_GRAPH = {
    "1": {
        "class_type": "CheckpointLoaderSimple",
        "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"},
    },
    "2": {"class_type": "LoadImage", "inputs": {"image": "face.png"}},
    "3": {
        "class_type": "IPAdapterAdvanced",
        "inputs": {"model": ["1", 0], "image": ["2", 0], "weight": 0.8},
    },
}


def rows(output: str) -> dict[str, list[str]]:
    """workflow name -> its table cells, from rich's box table."""
    table: dict[str, list[str]] = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if len(cells) > 6 and cells[0] and line.startswith("│"):
            table[cells[0]] = cells
    return table


def test_listing_shows_ready_and_missing_per_demo_node(tmp_path: Path, env: dict[str, str]) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(SD15_UI, folder / "editor.json")
    (folder / "face.json").write_text(json.dumps(IPADAPTER_GRAPH))
    (folder / "broken.json").write_text("{")
    result = run_cli("workflows", "--demo", "--dir", str(folder), env={**env, "COLUMNS": "220"})
    assert result.returncode == 2  # one file could not be read; everything else is listed
    table = rows(result.stdout)
    header = next(line for line in result.stdout.splitlines() if "workflow" in line and "┃" in line)
    assert [cell.strip() for cell in header.strip("┃").split("┃")][6:] == [
        "gpu-premium",
        "gpu-quality",
        "gpu-standard",
        "gpu-draft",
    ]
    assert table["sd15_txt2img"][6:] == ["Ready"] * 4
    assert table["sdxl_txt2img"][6:] == ["Ready", "Ready", "Ready", "Missing 1"]
    assert table["editor"][2:6] == ["ui", "sd15", "txt2img", "text → image"]
    assert table["sd15_lora_editor"][1:3] == ["shipped", "ui"]  # the shipped UI-format example
    assert table["sd15_lora_editor"][6:] == ["Ready"] * 4
    assert table["face"][6:] == ["Ready", "Missing 1", "Missing 1", "Missing 1"]
    assert (
        "face on gpu-quality, gpu-standard, gpu-draft: missing class IPAdapterAdvanced"
        in result.stdout
    )
    assert (
        "sdxl_txt2img on gpu-draft: missing checkpoints/sd_xl_base_1.0.safetensors" in result.stdout
    )
    assert "broken.json, line 1: is not valid JSON" in result.stdout.replace("\n", "")


# -- batch --workflow FILE ------------------------------------------------------------------


def job_graphs(data_dir: Path) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(data_dir / "imgen.sqlite3")) as db:
        specs = [json.loads(row[0]) for row in db.execute("SELECT spec FROM jobs")]
    return [spec["graph"] for spec in specs]


def test_a_ui_file_runs_end_to_end_on_the_demo_farm(tmp_path: Path, env: dict[str, str]) -> None:
    data_dir = tmp_path / "data"
    result = run_cli(
        "batch",
        "--demo",
        "--data-dir",
        str(data_dir),
        "--workflow",
        str(SD15_UI),
        "--prompt",
        "a blue heron",
        "--count",
        "2",
        "--seed",
        "increment",
        "--seed-start",
        "5",
        "--param",
        "steps=4",
        "--param",
        "3.cfg=6.5",
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 of 2" in result.stdout
    graphs = job_graphs(data_dir)
    assert sorted(graph["3"]["inputs"]["seed"] for graph in graphs) == [5, 6]
    for graph in graphs:
        assert graph["6"]["inputs"]["text"] == "a blue heron"
        assert graph["7"]["inputs"]["text"] == "blurry"  # the negative is the file's
        assert graph["3"]["inputs"]["steps"] == 4 and graph["3"]["inputs"]["cfg"] == 6.5
        assert "12" not in graph and "10" not in graph  # reroute gone, bypassed LoRA gone
    assert len(sorted((data_dir / "sessions").glob("*/*.png"))) == 2


def test_batch_keeps_the_files_prompt_without_prompt(tmp_path: Path, env: dict[str, str]) -> None:
    result = run_cli(
        "batch",
        "--demo",
        "--dry-run",
        "--data-dir",
        str(tmp_path / "d"),
        "--workflow",
        str(SD15_UI),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "1 jobs" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--param", "steps=0"), "steps of node 3 is at least 1, not 0"),
        (("--param", "sampler=nope"), "sampler_name of node 3 is one of"),
        (("--param", "frobnicate=1"), "has no parameter 'frobnicate'"),
    ],
)
def test_bad_parameters_for_a_file_exit_2(
    tmp_path: Path, env: dict[str, str], extra: tuple[str, ...], message: str
) -> None:
    result = run_cli(
        "batch",
        "--demo",
        "--dry-run",
        "--data-dir",
        str(tmp_path / "d"),
        "--workflow",
        str(SD15_UI),
        *extra,
        env=env,
    )
    assert result.returncode == 2, result.stdout
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_file_needing_a_class_no_node_has_is_refused(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "flux.json"
    shutil.copy(FLUX_UI, path)
    result = run_cli(
        "batch",
        "--demo",
        "--dry-run",
        "--data-dir",
        str(tmp_path / "d"),
        "--workflow",
        str(path),
        env=env,
    )
    assert result.returncode == 2
    assert "needs the custom node classes 'BasicGuider', 'BasicScheduler'" in result.stderr
    assert "which no node has" in result.stderr


def test_sweeps_over_a_file_are_counted_estimated_and_grouped_by_model(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = run_cli(
        "batch",
        "--demo",
        "--dry-run",
        "--data-dir",
        str(tmp_path / "d"),
        "--workflow",
        str(SD15_UI),
        "--count",
        "2",
        "--seed",
        "increment",
        "--sweep",
        "cfg=4..8 step 2",
        "--sweep",
        "sampler=euler, dpmpp_2m",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "12 jobs, about" in result.stdout and "on the farm (" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--sweep", "steps=0..2"), "steps of node 3 is at least 1, not 0"),
        (("--sweep", "frobnicate=a,b"), "has no parameter 'frobnicate'"),
        (("--sweep", "cfg=1,2", "--sweep", "steps=3,4,5", "--zip"), "equal length"),
        (("--sweep", "cfg"), "is not NAME=VALUES"),
    ],
)
def test_bad_sweeps_exit_2(
    tmp_path: Path, env: dict[str, str], extra: tuple[str, ...], message: str
) -> None:
    result = run_cli(
        "batch",
        "--demo",
        "--dry-run",
        "--data-dir",
        str(tmp_path / "d"),
        "--workflow",
        str(SD15_UI),
        *extra,
        env=env,
    )
    assert result.returncode == 2, result.stdout
    assert message in result.stderr


def test_sweep_with_a_template_is_refused(tmp_path: Path, env: dict[str, str]) -> None:
    result = run_cli(
        "batch",
        "--demo",
        "--dry-run",
        "--data-dir",
        str(tmp_path / "d"),
        "--prompt",
        "x",
        "--sweep",
        "cfg=1,2",
        env=env,
    )
    assert result.returncode == 2 and "--sweep needs a workflow file" in result.stderr
