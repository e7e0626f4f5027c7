"""The misbehaving-node cases of issue 12, as the real CLI meets them, and their measurement.

Each `Case` sets up a `HostileNode` (beside one healthy simulated node unless
`alone`) and runs `imgen-tui batch` (or `nodes`) as a subprocess. The tests
assert on the outcome; `python -m tests.hostile_cases` prints the table the
issue's closing note needs (exit code, images, seconds, peak RSS), and with
`--code /work/main` measures another checkout's app against the same nodes:

    .venv/bin/python -m tests.hostile_cases                    # this tree
    .venv/bin/python -m tests.hostile_cases --code /work/main  # before the fix
    .venv/bin/python -m tests.hostile_cases --only 9a 19a      # some cases
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from tests.cli_helpers import CLI, home_dirs
from tests.hostile_node import (
    Answer,
    HostileNode,
    farm_in_thread,
    finished_frames,
    healthy_sim,
    history_entry,
    image_ref,
    status_frame,
    write_farm,
)


@dataclass(frozen=True)
class Case:
    key: str
    what: str
    arrange: Callable[[HostileNode, Path], None]
    args: tuple[str, ...] = ("--count", "2", "--seed", "increment")
    command: str = "batch"
    alone: bool = False  # no healthy node beside the hostile one
    limit: float = 60.0  # seconds before the run counts as hung and is killed


@dataclass
class Outcome:
    exit_code: int | None  # None: hung, killed at the limit
    images: int
    seconds: float
    peak_rss_mb: float
    stdout: str = field(repr=False)
    stderr: str = field(repr=False)
    files: list[Path] = field(default_factory=list, repr=False)
    image_nodes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


# -- arrangements ---------------------------------------------------------------------------


def _frame_before_finish(bad: str) -> Callable[[HostileNode, Path], None]:
    """A malformed frame in the middle of an otherwise good run."""

    def arrange(node: HostileNode, _: Path) -> None:
        def script(prompt_id: str) -> list[object]:
            frames = finished_frames(prompt_id)
            return [*frames[:4], bad.replace("PID", prompt_id), *frames[4:]]

        node.script = script  # type: ignore[assignment]

    return arrange


def _answer(path: str, answer: Answer) -> Callable[[HostileNode, Path], None]:
    def arrange(node: HostileNode, _: Path) -> None:
        node.answers[path] = answer

    return arrange


def _history(heard: bool = True, **fields: object) -> Callable[[HostileNode, Path], None]:
    """/history answers with these fields; its `executed` frames agree, or are not heard."""

    def arrange(node: HostileNode, _: Path) -> None:
        node.answers["/history"] = lambda prompt_id: Answer(json=history_entry(prompt_id, **fields))
        node.outputs_heard = heard

    return arrange


def _preview_workflow(node: HostileNode, root: Path) -> None:
    """A user workflow whose only output is PreviewImage."""
    folder = root / "config" / "imgen-tui" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    graph = (Path(__file__).parents[1] / "workflows" / "sd15_txt2img.json").read_text()
    (folder / "preview_only.json").write_text(graph.replace('"SaveImage"', '"PreviewImage"'))
    (folder / "manifest.yaml").write_text(
        "workflows:\n  preview_only:\n    file: preview_only.json\n    description: previews\n"
        "    family: sd15\n    task: txt2img\n    requires: [sd15]\n"
        "    defaults: {negative: '', width: 512, height: 512, batch_size: 1, seed: 0,\n"
        "      steps: 4, cfg: 7.0, sampler: euler, scheduler: normal, filename_prefix: x}\n"
    )


def _many_references(node: HostileNode, _: Path) -> None:
    """64 references to one small PNG that decodes to 9400x9400."""
    node.answers["/history"] = lambda prompt_id: Answer(
        json=history_entry(prompt_id, outputs={"9": {"images": [image_ref()] * 64}})
    )
    node.answers["/view"] = Answer(body=huge_png(9400), headers={"Content-Type": "image/png"})


def _junk_frames(node: HostileNode, _: Path) -> None:
    junk: list[object] = [
        "not json",
        "[1, 2, 3]",
        "null",
        '"a string"',
        "{}",
        '{"type": 7}',
        '{"type": "status"}',
        '{"type": "status", "data": {"status": []}}',
        '{"type": "executing", "data": {"prompt_id": ["a"], "node": {}}}',
        '{"type": "progress", "data": {"value": "x", "max": 2}}',
        '{"type": "progress", "data": {"value": NaN, "max": 2}}',
        '{"type": "executed", "data": {"prompt_id": "p", "node": "9", "output": {"images": 5}}}',
        '{"type": "execution_error", "data": {}}',
        '{"type": "execution_start", "data": {"prompt_id": null}}',
        "[" * 100_000 + "]" * 100_000,
        b"",
        b"\x00\x00\x00\x01",
        b"\x00\x00\x00\x04\xff\xff\xff\xff",
        b"\x00\x00\x00\x04\x00\x00\x00\x02[]",
        b"\x00\x00\x00\x09abcdefgh",
        status_frame("lots"),
        status_frame(-1e999),
        {"type": "feature_flags", "data": []},
        {"type": "unknown_kind", "data": {"x": 1}},
        {"type": "execution_cached", "data": {"prompt_id": "p", "nodes": 3}},
    ]

    def script(prompt_id: str) -> list[object]:
        frames = finished_frames(prompt_id)
        return [*frames[:3], *junk, *frames[3:]]

    node.script = script  # type: ignore[assignment]


def _traversal(node: HostileNode, _: Path) -> None:
    names = ["../../../../tmp/imgen-evil.png", "/tmp/imgen-evil-abs.png"]
    node.answers["/history"] = lambda prompt_id: Answer(
        json=history_entry(
            prompt_id,
            outputs={"9": {"images": [image_ref(name) for name in names]}},
        )
    )


def _bomb(node: HostileNode, _: Path) -> None:
    node.answers["/view"] = Answer(body=huge_png(30000), headers={"Content-Type": "image/png"})


CASES = [
    Case(
        "9a",
        "WS progress value 1e999",
        _frame_before_finish(
            '{"type":"progress","data":{"value":1e999,"max":20,"prompt_id":"PID","node":"5"}}'
        ),
    ),
    Case(
        "9b",
        "WS status queue_remaining 1e999",
        _frame_before_finish(
            '{"type":"status","data":{"status":{"exec_info":{"queue_remaining":1e999}}}}'
        ),
    ),
    Case(
        "9c",
        "WS executed whose output is a list",
        _frame_before_finish(
            '{"type":"executed","data":{"node":"9","prompt_id":"PID","output":[1,2]}}'
        ),
    ),
    Case(
        "10a",
        '/system_stats vram_total "lots"',
        _answer(
            "/system_stats",
            Answer(
                json={"system": {"comfyui_version": "0.3"}, "devices": [{"vram_total": "lots"}]}
            ),
        ),
    ),
    Case(
        "10b",
        "/object_info class whose input is a list",
        _answer("/object_info", Answer(json={"CheckpointLoaderSimple": {"input": ["x"]}})),
    ),
    Case(
        "10c",
        "`nodes` with a bad /system_stats",
        _answer("/system_stats", Answer(json={"system": {}, "devices": [{"vram_total": "lots"}]})),
        args=(),
        command="nodes",
    ),
    Case(
        "11a",
        "workflow with PreviewImage only",
        _preview_workflow,
        args=("--count", "2", "--seed", "increment", "--workflow", "preview_only"),
    ),
    Case("11b", "/history with empty outputs", _history(outputs={})),
    Case(
        "11c",
        "/history image of type ../output",
        _history(outputs={"9": {"images": [image_ref(folder_type="../output")]}}),
    ),
    Case(
        "12a",
        "/view trickles a byte every 2 s (--timeout 5)",
        _answer("/view", Answer(body=b"\x89PNG\r\n\x1a\n" * 50, trickle=2.0)),
        args=("--count", "2", "--seed", "increment", "--timeout", "5"),
    ),
    Case(
        "12b",
        "/system_stats trickles a byte every 2 s",
        _answer("/system_stats", Answer(trickle=2.0)),
    ),
    Case(
        "12c",
        "`nodes` with a trickling /system_stats",
        _answer("/system_stats", Answer(trickle=2.0)),
        args=(),
        command="nodes",
    ),
    Case("15a", "/history outputs is a list", _history(outputs=[1])),
    # Heard whole, the executed frames make /history unneeded: here they are missed.
    Case("15b", "/history status is a list", _history(heard=False, status=["success"])),
    Case("19a", "64 references to one 9400x9400 PNG", _many_references, args=("--count", "1")),
    Case(
        "19b",
        "500 MB chunked /view",
        _answer("/view", Answer(body=b"\x89PNG\r\n\x1a\n" + b"\0" * (1024 * 1024 - 8), repeat=500)),
        args=("--count", "1"),
    ),
    Case(
        "24a",
        "/view answers bytes that are no image",
        _answer("/view", Answer(body=b"garbage, not a picture")),
        args=("--count", "1"),
        alone=True,
    ),
    Case(
        "24b",
        "/object_info answers a list",
        _answer("/object_info", Answer(json=[1, 2])),
        args=(),
        command="nodes",
    ),
    Case(
        "24c",
        "/system_stats redirects",
        _answer(
            "/system_stats",
            Answer(redirect="http://example.invalid/login", body=b"<html>Moved</html>"),
        ),
        args=(),
        command="nodes",
    ),
    Case("held-junk", "25 kinds of junk WS frame", _junk_frames, alone=True),
    Case(
        "held-traversal",
        "output names with ../ and absolute paths",
        _traversal,
        args=("--count", "1"),
        alone=True,
    ),
    Case("held-bomb", "a 30000x30000 PNG", _bomb, args=("--count", "1"), alone=True),
]
CASES_BY_KEY = {case.key: case for case in CASES}


@cache
def huge_png(side: int) -> bytes:
    """A black RGB PNG of side x side pixels, made row by row (little memory, small file)."""
    compressor = zlib.compressobj(9)
    row = b"\0" + b"\0" * (side * 3)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


# -- running one case ---------------------------------------------------------------------


def run_case(case: Case, root: Path, *, code: Path | None = None) -> Outcome:
    """Run the case's CLI command against fresh nodes; `code` puts another checkout first."""
    root.mkdir(parents=True, exist_ok=True)
    node = HostileNode()
    case.arrange(node, root)
    sim = None if case.alone else healthy_sim()
    env = {**os.environ, **home_dirs(root), "COLUMNS": "160"}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    data_dir = root / "data"
    with farm_in_thread([node], sim):
        farm = write_farm(root / "farm.yaml", [node], sim)
        command = [*CLI, case.command, "--config", str(farm)]
        if case.command == "batch":
            command += ["--data-dir", str(data_dir), "--prompt", "a red fox", *case.args]
        started = time.monotonic()
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            process = subprocess.Popen(
                command, stdout=out, stderr=err, text=True, env=env, cwd=root
            )
            exit_code, peak = _wait(process, case.limit)
            seconds = time.monotonic() - started
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
    return Outcome(
        exit_code=exit_code,
        images=len(nodes := _image_nodes(data_dir)),
        image_nodes=nodes,
        seconds=seconds,
        peak_rss_mb=peak,
        stdout=stdout,
        stderr=stderr,
        files=sorted(p for p in data_dir.rglob("*") if p.is_file()) if data_dir.exists() else [],
    )


def _wait(process: subprocess.Popen[str], limit: float) -> tuple[int | None, float]:
    """Exit code (None when killed at `limit`) and peak RSS in MB.

    The peak is the kernel's high-water mark of the process's own memory
    (`VmHWM`), read while it runs. wait4's `ru_maxrss` cannot be used: exec
    records the parent's high-water mark into the child's (a vfork child
    borrows the parent's memory), so late in a test run it reported pytest's
    own 367 MB for a CLI that used 66.
    """
    deadline = time.monotonic() + limit
    peak_kib = 0
    while True:
        peak_kib = max(peak_kib, _high_water_kib(process.pid))
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, (peak_kib or usage.ru_maxrss) / 1024
        if time.monotonic() > deadline:
            process.kill()
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            return None, (peak_kib or usage.ru_maxrss) / 1024
        time.sleep(0.02)


def _high_water_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _image_nodes(data_dir: Path) -> list[str]:
    """The node of every image the run kept, read from its database."""
    database = data_dir / "imgen.sqlite3"
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as db:
        try:
            return [str(row[0]) for row in db.execute("SELECT node_id FROM images")]
        except sqlite3.OperationalError:
            return []


def _last_line(outcome: Outcome) -> str:
    lines = [line.strip() for line in outcome.text.splitlines() if line.strip()]
    interesting = [line for line in lines if "failed" in line or "error" in line.lower()]
    return (interesting or lines or [""])[-1][:110]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, help="a checkout whose imgen_tui runs the CLI")
    parser.add_argument("--only", nargs="*", help="case keys (default: all)")
    parser.add_argument("--verbose", action="store_true", help="print each run's output")
    args = parser.parse_args()
    cases = [CASES_BY_KEY[key] for key in args.only] if args.only else CASES
    print("| case | what | exit | images | seconds | peak RSS MB | last message |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for case in cases:
            outcome = run_case(case, Path(scratch) / case.key, code=args.code)
            exit_text = "hung (killed)" if outcome.exit_code is None else str(outcome.exit_code)
            print(
                f"| {case.key} | {case.what} | {exit_text} | {outcome.images} | "
                f"{outcome.seconds:.1f} | {outcome.peak_rss_mb:.0f} | {_last_line(outcome)} |",
                flush=True,
            )
            if args.verbose:
                print(outcome.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
