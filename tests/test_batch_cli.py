"""`imgen-tui batch` as real processes against a simulated farm in another process.

The farm outlives the batch, as real ComfyUI servers outlive a crashed
client: that is what makes SIGKILL + `--resume` a real test of exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cli_helpers import CLI, farm_ports, home_dirs, run_cli, start_sim

COUNT = 20
TWENTY_FOXES = ("--prompt", "a red fox", "--count", str(COUNT), "--seed", "increment")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return home_dirs(tmp_path)


@pytest.fixture
def farm(tmp_path: Path, env: dict[str, str]) -> Iterator[Path]:
    """Four simulated nodes at a quarter of the seed farm's real time per step."""
    farm_file = tmp_path / "farm.yaml"
    sim = start_sim(farm_file, env, speed=0.25)
    yield farm_file
    sim.send_signal(signal.SIGINT)
    sim.communicate(timeout=20)


def batch_args(farm_file: Path, data_dir: Path, *extra: str) -> list[str]:
    return [*CLI, "batch", "--config", str(farm_file), "--data-dir", str(data_dir), *extra]


def start_batch(farm_file: Path, data_dir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        batch_args(farm_file, data_dir, *TWENTY_FOXES),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env, "COLUMNS": "120"},
    )


def image_rows(data_dir: Path) -> dict[str, tuple[str, str, str]]:
    """job id -> (image id, path, prompt id), read as another process would."""
    database = data_dir / "imgen.sqlite3"
    if not database.exists():
        return {}
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as db:
        try:
            rows = db.execute(
                "SELECT i.job_id, i.id, i.path, j.prompt_id FROM images i JOIN jobs j "
                "ON i.job_id = j.id"
            ).fetchall()
        except sqlite3.OperationalError:  # the schema is not there yet
            return {}
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def wait_for_images(process: subprocess.Popen[str], data_dir: Path, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while len(image_rows(data_dir)) < at_least:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.05)


def prompts_run_by_the_farm(farm_file: Path) -> int:
    total = 0
    for port in farm_ports(farm_file):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/history") as response:
            total += len(json.load(response))
    return total


def pictures_on_disk(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "sessions").glob("*/*.png"))


def test_sigkill_mid_batch_then_resume_keeps_every_image_exactly_once(
    tmp_path: Path, farm: Path, env: dict[str, str]
) -> None:
    data_dir = tmp_path / "data"
    batch = start_batch(farm, data_dir, env)
    wait_for_images(batch, data_dir, 5)
    batch.kill()  # SIGKILL: no cleanup, no goodbye
    batch.communicate(timeout=10)
    before = image_rows(data_dir)
    assert 5 <= len(before) < COUNT
    stamps = {path: path.stat().st_mtime_ns for path in pictures_on_disk(data_dir)}

    resumed = run_cli(
        "batch", "--config", str(farm), "--data-dir", str(data_dir), "--resume", env=env
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{COUNT} of {COUNT}" in resumed.stdout
    after = image_rows(data_dir)
    assert len(after) == COUNT  # one image per job, no more, no fewer
    for job_id, row in before.items():
        assert after[job_id] == row  # the same image, from the same prompt: not made again
    pictures = pictures_on_disk(data_dir)
    assert len(pictures) == COUNT
    assert all(path.stat().st_mtime_ns == stamp for path, stamp in stamps.items())
    assert not list(data_dir.rglob("*.tmp"))
    # The farm ran each prompt once: nothing that had finished (or was queued) ran twice.
    assert prompts_run_by_the_farm(farm) == COUNT


def test_ctrl_c_cancels_cleanly_and_the_session_resumes(
    tmp_path: Path, farm: Path, env: dict[str, str]
) -> None:
    data_dir = tmp_path / "data"
    batch = start_batch(farm, data_dir, env)
    wait_for_images(batch, data_dir, 3)
    batch.send_signal(signal.SIGINT)
    out, err = batch.communicate(timeout=30)
    assert batch.returncode == 130, out + err
    assert "Resume with: imgen-tui batch --resume" in out
    assert "Traceback" not in err
    kept = image_rows(data_dir)
    assert len(kept) < COUNT

    resumed = run_cli(
        "batch", "--config", str(farm), "--data-dir", str(data_dir), "--resume", env=env
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = image_rows(data_dir)
    assert len(after) == COUNT and len(pictures_on_disk(data_dir)) == COUNT
    assert all(after[job_id] == row for job_id, row in kept.items())


def test_a_full_disk_stops_with_a_sentence_and_leaves_nothing_half_written(
    tmp_path: Path, farm: Path, env: dict[str, str]
) -> None:
    data_dir = tmp_path / "data"
    limit = 400 * 1024  # no file this process writes may grow past it: the disk is "full"

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        batch_args(farm, data_dir, *TWENTY_FOXES),
        preexec_fn=small_disk,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env, "COLUMNS": "200"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "free some space or choose another folder with --data-dir" in " ".join(output.split())
    assert "Traceback" not in output
    assert not list(data_dir.rglob("*.tmp"))
    recorded = {Path(row[1]).name for row in image_rows(data_dir).values()}
    assert {path.name for path in pictures_on_disk(data_dir)} == recorded


def _make_read_only(folder: Path) -> None:
    if os.geteuid() != 0:
        folder.chmod(0o555)
    else:  # root writes through permissions; the immutable flag stops even root
        subprocess.run(["chattr", "+i", str(folder)], check=False, capture_output=True)
    with contextlib.suppress(OSError):
        (folder / "probe").write_text("x")
        (folder / "probe").unlink()
        _make_writable(folder)
        pytest.skip("this machine cannot make a folder read-only for the current user")


def _make_writable(folder: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], check=False, capture_output=True)
    folder.chmod(0o755)


def test_a_read_only_data_dir_is_a_clear_error(tmp_path: Path, env: dict[str, str]) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _make_read_only(data_dir)
    try:
        result = run_cli(
            "batch", "--demo", "--data-dir", str(data_dir), "--prompt", "a fox", env=env
        )
    finally:
        _make_writable(data_dir)
    assert result.returncode == 1
    assert result.stderr.startswith(f"imgen-tui: cannot write to the data folder {data_dir}")
    assert result.stderr.rstrip().endswith("choose another with --data-dir")
    assert list(data_dir.iterdir()) == []


def test_bad_batch_input_is_one_line_and_exit_2(tmp_path: Path, env: dict[str, str]) -> None:
    cards = tmp_path / "cards.csv"
    cards.write_text("value,suit\nAce,Spades\n")
    cases = [
        (["--set", str(cards), "--template", "{value} of {colour}"], "no column 'colour'"),
        (["--prompt", "fox", "--count", "3", "--seed", "fixed"], "same picture 3 times"),
        (["--prompt", "fox", "--workflow", "sd15_img2img"], "needs a source image"),
        (["--prompt", "fox", "--workflow", "nope"], "no workflow named 'nope'"),
        (["--prompt", "fox", "--param", "cfg"], "is not NAME=VALUE"),
        (["--set", str(cards)], "--set needs a --template"),
    ]
    for args, message in cases:
        result = run_cli("batch", "--demo", "--data-dir", str(tmp_path / "d"), *args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "d").exists()  # nothing was created for input that was refused


def test_a_ten_thousand_row_set_plans_in_a_dry_run(tmp_path: Path, env: dict[str, str]) -> None:
    cards = tmp_path / "cards.csv"
    cards.write_text("value,suit\n" + "".join(f"{i},Spades\n" for i in range(10_000)))
    result = run_cli(
        "batch", "--demo", "--set", str(cards), "--template", "{value} of {suit}",
        "--prompt", "a playing card", "--dry-run", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "10000 jobs with workflow sd15_txt2img" in result.stdout
    assert "a playing card, 0 of Spades" in result.stdout


def test_two_resumes_of_one_session_run_it_once(
    tmp_path: Path, farm: Path, env: dict[str, str]
) -> None:
    """Issue 12, item 16: both used to run (31 executions for 24 jobs)."""
    data_dir = tmp_path / "data"
    batch = start_batch(farm, data_dir, env)
    wait_for_images(batch, data_dir, 3)
    batch.kill()  # kill -9: its lock goes with it
    batch.communicate(timeout=10)

    resumes = [
        subprocess.Popen(
            batch_args(farm, data_dir, "--resume"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env, "COLUMNS": "200"},
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in resumes]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    refused = next(err for code, _, err in results if code == 1)
    assert "is being run by another imgen-tui (pid " in refused
    assert "wait for it to finish or stop it, then try again" in refused
    assert refused.count("\n") == 1
    assert len(image_rows(data_dir)) == COUNT == len(pictures_on_disk(data_dir))
    assert prompts_run_by_the_farm(farm) == COUNT  # no prompt ran twice


def test_without_a_terminal_a_node_going_down_is_one_line(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Issue 12, item 8: piped to a log, a batch never said that a node went down."""
    farms = [tmp_path / "a.yaml", tmp_path / "b.yaml"]
    sims = [start_sim(path, env, speed=0.25, nodes=1) for path in farms]
    try:
        config = yaml.safe_load(farms[0].read_text())
        second = yaml.safe_load(farms[1].read_text())["nodes"][0]
        config["nodes"].append({**second, "id": "gpu-second"})
        farm_file = tmp_path / "farm.yaml"
        farm_file.write_text(yaml.safe_dump(config))
        batch = subprocess.Popen(
            batch_args(farm_file, tmp_path / "data", *TWENTY_FOXES),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env, "COLUMNS": "200"},
        )
        wait_for_images(batch, tmp_path / "data", 3)
        sims[1].kill()  # the second node's ComfyUI dies mid-batch
        out, err = batch.communicate(timeout=120)
    finally:
        for sim in sims:
            sim.kill()
            sim.communicate(timeout=20)
    assert batch.returncode == 0, out + err  # the first node finished the batch
    down = [line for line in out.splitlines() if "gpu-second: down" in line]
    assert len(down) == 1, out
    assert down[0].split(" ", 1)[0].count(":") == 2  # a time stamp first, for the log
    assert "(" in down[0]  # with the reason
    assert "gpu-premium: " not in out  # a node that stayed up is not announced


def test_a_nodes_note_says_its_bar_counts_steps_and_how_many_images_it_made() -> None:
    # The node bars read "10/10 9 made": steps of the running job beside a count of images.
    from imgen_tui.commands.batch import _images_made

    assert _images_made(1) == "steps; 1 image made here"
    assert _images_made(9) == "steps; 9 images made here"
