"""`imgen-tui batch` refuses what cannot work before a session exists (issue 12, items 3, 6, 21).

Each case runs the real CLI against the simulated demo farm, in a process of
its own, and checks the one-sentence answer, the exit code and that no
session (not even a database) was written for input that was refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgen_tui.flows.batch import BatchRequest, parse_lora, plan_jobs
from imgen_tui.graphs.templates import load_library
from imgen_tui.locations import bundled_dir
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.routing import NodeView, refusal
from imgen_tui.yamlfile import ConfigError
from tests.cli_helpers import home_dirs, run_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return home_dirs(tmp_path)


def batch(tmp_path: Path, env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    return run_cli("batch", "--demo", "--data-dir", str(tmp_path / "d"), *args, env=env)


def test_a_dry_run_routes_and_refuses_a_job_no_node_can_run(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Before: '1 jobs', exit 0; the real run then made a session that could never finish."""
    too_big = ("--prompt", "fox", "--workflow", "sdxl_txt2img", "--width", "2048")
    for extra in (("--dry-run",), ()):
        result = batch(tmp_path, env, *too_big, "--height", "2048", *extra)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith("imgen-tui: no node can run job 1 of the batch (sdxl")
        assert "gpu-premium: 2048 px is over its 1536 px limit" in result.stderr
        assert "gpu-draft: no sdxl" in result.stderr
        assert result.stderr.count("\n") == 1
        assert not (tmp_path / "d").exists()  # no session, no database


def test_a_dry_run_names_the_nodes_that_can_take_the_jobs(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = batch(tmp_path, env, "--prompt", "fox", "--workflow", "sdxl_txt2img", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "nodes that can run them: gpu-premium, gpu-quality, gpu-standard." in result.stdout
    assert not (tmp_path / "d").exists()


def test_a_lora_is_chained_in_and_only_nodes_that_have_it_run_the_jobs(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Only gpu-premium and gpu-standard list watercolor-style in their /object_info."""
    result = batch(
        tmp_path, env, "--prompt", "a fox", "--count", "6", "--seed", "increment",
        "--lora", "watercolor-style.safetensors:0.7", "--lora", "film-grain.safetensors",
    )  # fmt: skip
    # film-grain is on premium and quality only: the two together only on premium
    assert result.returncode == 0, result.stdout + result.stderr
    sidecars = sorted((tmp_path / "d" / "sessions").glob("*/*.json"))
    assert len(sidecars) == 6
    for sidecar in sidecars:
        document = json.loads(sidecar.read_text())
        assert document["node"] == "gpu-premium"
        loras = [
            (node["inputs"]["lora_name"], node["inputs"]["strength_model"])
            for node in document["graph"].values()
            if node["class_type"] == "LoraLoader"
        ]
        assert loras == [("watercolor-style.safetensors", 0.7), ("film-grain.safetensors", 1.0)]
        sampler = next(n for n in document["graph"].values() if n["class_type"] == "KSampler")
        assert document["graph"][sampler["inputs"]["model"][0]]["class_type"] == "LoraLoader"


def test_a_lora_no_node_has_is_refused_with_the_nearest_name(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = batch(tmp_path, env, "--prompt", "fox", "--lora", "watercolor", "--dry-run")
    assert result.returncode == 2
    assert "gpu-draft: LoRA watercolor is not installed" in result.stderr
    assert "did you mean --lora watercolor-style.safetensors" in result.stderr
    assert not (tmp_path / "d").exists()


def write_user_workflow(env: dict[str, str], family: str, defaults: str = "") -> None:
    folder = Path(env["XDG_CONFIG_HOME"]) / "imgen-tui" / "workflows"
    folder.mkdir(parents=True)
    # the bundled SD1.5 graph with literal settings, {{avoid}} (the user's own
    # placeholder, no default) as the negative prompt, and {{checkpoint}} left open
    template = load_library([bundled_dir("workflows")])["sd15_txt2img"]
    kept = {name: f"{{{{{name}}}}}" for name in ("prompt", "seed", "checkpoint")}
    graph = template.render({**kept, "negative": "{{avoid}}"})
    (folder / "mine.json").write_text(json.dumps(graph))
    (folder / "manifest.yaml").write_text(
        "workflows:\n  mine:\n    file: mine.json\n"
        f"    family: {family}\n    task: txt2img\n    defaults: {{{defaults}}}\n"
    )


BAD_ARGUMENTS = {
    "a word for a width": (["--param", "width=abc"], "width (node 4 width) must be a whole number"),
    "a zero width": (["--width", "0"], "width (node 4 width) must be at least 8 (got 0)"),
    "text for cfg": (["--param", "cfg=lots"], "cfg (node 5 cfg) must be a number (got 'lots')"),
    "a zero thumbnail": (["--thumbnail-size", "0"], "--thumbnail-size must be between 16"),
    "a zero timeout": (["--timeout", "0"], "--timeout must be a positive number of seconds"),
    "a negative timeout": (["--timeout", "-1"], "--timeout must be a positive number"),
    "an infinite timeout": (["--timeout", "inf"], "--timeout must be a positive number"),
    "a lora strength": (["--lora", "x.safetensors:strong"], "the strength after ':' must be"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARGUMENTS))
def test_bad_arguments_are_one_sentence_and_exit_2_before_anything_runs(
    tmp_path: Path, env: dict[str, str], case: str
) -> None:
    """Before: 'unexpected error' (exit 1), or each job run three times for nothing."""
    args, message = BAD_ARGUMENTS[case]
    result = batch(tmp_path, env, "--prompt", "fox", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert "unexpected" not in result.stderr
    assert not (tmp_path / "d").exists()


def test_a_family_any_workflow_asks_for_its_checkpoint(tmp_path: Path, env: dict[str, str]) -> None:
    write_user_workflow(env, "any", "avoid: blur")
    result = batch(tmp_path, env, "--prompt", "fox", "--workflow", "mine", "--dry-run")
    assert result.returncode == 2, result.stderr
    assert "workflow mine needs a value for checkpoint (family any has no entry" in result.stderr
    assert "give --param checkpoint=VALUE" in result.stderr
    fixed = batch(
        tmp_path, env, "--prompt", "fox", "--workflow", "mine", "--dry-run",
        "--param", "checkpoint=v1-5-pruned-emaonly.safetensors",
    )  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr


def test_param_fills_a_placeholder_of_the_users_without_a_default(
    tmp_path: Path, env: dict[str, str]
) -> None:
    write_user_workflow(env, "sd15")
    refused = batch(tmp_path, env, "--prompt", "fox", "--workflow", "mine", "--dry-run")
    assert refused.returncode == 2
    assert "workflow mine needs a value for avoid; give --param avoid=VALUE" in refused.stderr
    assert "txt2img" not in refused.stderr  # it is one: do not tell the user to choose one
    made = batch(tmp_path, env, "--prompt", "fox", "--workflow", "mine", "--param", "avoid=blur")
    assert made.returncode == 0, made.stdout + made.stderr
    (sidecar,) = (tmp_path / "d" / "sessions").glob("*/*.json")
    assert json.loads(sidecar.read_text())["negative"] == "blur"


def test_lora_arguments_parse() -> None:
    assert parse_lora("a.safetensors").strength_model == 1.0
    assert parse_lora("a.safetensors:0.5").strength_model == 0.5
    assert parse_lora("a.safetensors:-1").strength_model == -1.0
    assert parse_lora("dir:a.safetensors").name == "dir:a.safetensors"  # no number after ':'
    for bad in ("", ":0.5", "a:nan", "a:99"):
        with pytest.raises(ConfigError):
            parse_lora(bad)


def test_routing_refuses_a_node_without_the_lora_and_keeps_it_in_the_stored_spec() -> None:
    library = load_library([bundled_dir("workflows")])
    request = BatchRequest("sd15_txt2img", ["fox"], loras=(parse_lora("grain.safetensors"),))
    (spec,) = plan_jobs(request, library, {"sd15": "v1-5-pruned-emaonly.safetensors"})
    assert spec.loras == {"grain.safetensors"}
    assert JobSpec.from_json(spec.to_json()).loras == spec.loras
    node = NodeView("gpu-a", "draft", "up", frozenset({"sd15"}), 1024, loras=frozenset())
    assert refusal(spec, node) == "gpu-a: LoRA grain.safetensors is not installed"
    unknown = NodeView("gpu-b", "draft", "up", frozenset({"sd15"}), 1024)  # not asked yet
    assert refusal(spec, unknown) is None


def test_a_dry_run_shows_a_huge_csv_cell_cut_and_at_once(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Issue 12, item 24: one 100k-character cell took over 60 s to print (Rich wrapping)."""
    cards = tmp_path / "cards.csv"
    cards.write_text("value,suit\n" + "A" * 100_000 + ",Spades\n[red] Queen,Hearts\n")
    result = run_cli(
        "batch", "--demo", "--set", str(cards), "--template", "{value} of {suit}",
        "--prompt", "a card", "--dry-run", env=env, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "(100,018 characters in all)" in " ".join(result.stdout.split())
    assert len(result.stdout) < 2_000
    assert "[red] Queen of Hearts" in result.stdout  # a prompt is text, never markup
