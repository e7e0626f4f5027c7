"""`imgen-tui loras` as a real process: the demo farm, a farm with a dead node, bad names."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli_helpers import home_dirs, run_cli, start_sim


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return home_dirs(tmp_path)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def farm_with_a_dead_node(tmp_path: Path, env: dict[str, str]) -> Iterator[Path]:
    """Two simulated nodes (premium, quality) in their own process, plus one that is gone."""
    farm_file = tmp_path / "farm.yaml"
    sim = start_sim(farm_file, env, nodes=2)
    try:
        farm = yaml.safe_load(farm_file.read_text())
        farm["nodes"].append({**farm["nodes"][1], "id": "gpu-gone", "port": unused_port()})
        farm_file.write_text(yaml.safe_dump(farm))
        yield farm_file
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def loras_json(*args: str, env: dict[str, str], code: int = 0) -> dict[str, Any]:
    result = run_cli("loras", "--json", *args, env=env)
    assert result.returncode == code, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_demo_farm_lists_every_lora_with_family_triggers_size_and_nodes(
    env: dict[str, str],
) -> None:
    data = loras_json("--demo", env=env)
    by_name = {entry["file"]: entry for entry in data["loras"]}
    assert sorted(by_name) == [
        "cinematic-light.safetensors",
        "detail-tweaker.safetensors",
        "film-grain.safetensors",
        # The FaceID LoRAs the face reference needs sit in the same folder on a real node.
        "ip-adapter-faceid-plusv2_sd15_lora.safetensors",
        "ip-adapter-faceid-plusv2_sdxl_lora.safetensors",
        "watercolor-style.safetensors",
    ]
    detail = by_name["detail-tweaker.safetensors"]
    assert detail["family"] == "sd15" and detail["trigger_words"][0] == "detailed"
    assert detail["nodes"] == ["gpu-premium", "gpu-quality", "gpu-standard", "gpu-draft"]
    watercolor = by_name["watercolor-style.safetensors"]
    assert watercolor["family"] == "sdxl" and watercolor["trigger_words"][0] == "wcstyle"
    assert watercolor["missing_on"] == ["gpu-quality", "gpu-draft"]
    assert by_name["film-grain.safetensors"]["family"] is None  # no header at all
    assert by_name["film-grain.safetensors"]["trigger_words"] == []
    assert all(entry["size"] > 1_000_000 for entry in data["loras"])
    assert all(node["ok"] for node in data["nodes"].values())


def test_the_table_names_file_family_triggers_size_and_nodes(env: dict[str, str]) -> None:
    result = run_cli("loras", "--demo", env=env)
    assert result.returncode == 0, result.stderr
    line = next(row for row in result.stdout.splitlines() if "watercolor-style" in row)
    assert "SDXL" in line and "wcstyle" in line and " MB" in line
    assert "on gpu-premium, gpu-standard; missing on" in line


def test_a_dead_node_is_named_in_one_line_and_the_rest_is_printed(
    farm_with_a_dead_node: Path, env: dict[str, str]
) -> None:
    result = run_cli("loras", "--config", str(farm_with_a_dead_node), env=env)
    assert result.returncode == 1
    problems = [row for row in result.stdout.splitlines() if "gpu-gone" in row]
    assert len(problems) == 1 and "unreachable" in problems[0], result.stdout
    assert "detail-tweaker.safetensors" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    data = loras_json("--config", str(farm_with_a_dead_node), env=env, code=1)
    assert data["nodes"]["gpu-gone"]["ok"] is False
    film = next(e for e in data["loras"] if e["file"] == "film-grain.safetensors")
    assert film["nodes"] == ["gpu-premium", "gpu-quality"] and film["missing_on"] == []


def test_the_second_run_reads_the_cache_and_refresh_reads_the_nodes(
    farm_with_a_dead_node: Path, env: dict[str, str]
) -> None:
    config = ("--config", str(farm_with_a_dead_node))
    first = loras_json(*config, env=env, code=1)
    assert "cache" not in first["nodes"]["gpu-premium"]["sources"]
    second = loras_json(*config, env=env, code=1)
    assert "cache" in second["nodes"]["gpu-premium"]["sources"]
    assert second["loras"] == first["loras"]
    fresh = loras_json(*config, "--refresh", env=env, code=1)
    assert "view_metadata" in fresh["nodes"]["gpu-premium"]["sources"]
    assert "cache" not in fresh["nodes"]["gpu-premium"]["sources"]


def test_an_unknown_lora_name_exits_2_with_one_sentence(env: dict[str, str]) -> None:
    result = run_cli("loras", "--demo", "no-such-lora.safetensors", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-lora.safetensors" in lines[0] and "lists" in lines[0]
    single = loras_json("--demo", "film-grain.safetensors", env=env)
    assert [entry["file"] for entry in single["loras"]] == ["film-grain.safetensors"]
