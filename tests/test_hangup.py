"""SIGHUP and SIGTERM end the app as q does, and leave the farm its work.

A dropped SSH link sends SIGHUP, a closed terminal window too, `kill` sends
SIGTERM. The app used to die on the spot: the terminal stayed in the app's
screen mode and the demo farm's folders stayed in the temp folder. The app
runs here as people run it, `python -m imgen_tui --demo`, on a pseudo-terminal.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from imgen_tui.comfy.client import ComfyClient
from imgen_tui.flows.engine import Engine
from tests.test_scheduler_farm import drafts
from tests.test_scheduler_store import SLOW_NODE, node_of, until

LEAVE_SCREEN_MODE = b"\x1b[?1049l"  # back from the alternate screen


def start_in_a_terminal(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {key: value for key, value in os.environ.items() if key not in ("TMUX", "TERM_PROGRAM")}
    env |= {"TERM": "xterm-256color", "TMPDIR": str(tmp_path / "tmp")}
    for kind in ("DATA", "STATE", "CONFIG", "CACHE"):
        env[f"XDG_{kind}_HOME"] = str(tmp_path / kind.lower())
    (tmp_path / "tmp").mkdir()
    app = subprocess.Popen(
        [sys.executable, "-m", "imgen_tui", "--demo", "--graphics", "halfcell"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        start_new_session=True,
    )
    os.close(terminal)
    return app, master


def read_until(master: int, done: bytes | None, seconds: float) -> bytes:
    """What the app wrote, until `done` appears (None: until it closes the terminal)."""
    seen = b""
    deadline = time.monotonic() + seconds
    while done is None or done not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"the app never wrote {done!r}; it wrote {seen[-300:]!r}")
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def demo_folders(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "tmp").glob("imgen-sim-*"))


@pytest.mark.parametrize("hangup", [signal.SIGHUP, signal.SIGTERM])
def test_a_hangup_gives_the_terminal_back_and_removes_the_demo_farm(
    tmp_path: Path, hangup: signal.Signals
) -> None:
    app, master = start_in_a_terminal(tmp_path)
    try:
        read_until(master, b"funnel", seconds=60)  # Home's footer: the app is up
        assert len(demo_folders(tmp_path)) == 4  # one per demo node
        app.send_signal(hangup)
        after = read_until(master, None, seconds=30)
        assert app.wait(timeout=30) == 128 + hangup  # as a shell reports a signal
    finally:
        if app.poll() is None:
            app.kill()
        os.close(master)
    assert LEAVE_SCREEN_MODE in after
    assert demo_folders(tmp_path) == []
    log = (tmp_path / "state" / "imgen-tui" / "log" / "imgen-tui.log").read_text()
    assert f"{hangup.name}: leaving" in log


@pytest.mark.parametrize("cancel_jobs", [False, True])
async def test_a_hangup_leaves_running_jobs_to_the_nodes_and_quitting_cancels_them(
    tmp_path: Path, cancel_jobs: bool
) -> None:
    """What the app's on_unmount does after a signal (keep) and after q (cancel)."""
    farm = await node_of(SLOW_NODE)
    node = farm.nodes[0]
    try:
        engine = Engine(farm.config(), data_dir=tmp_path / "data")
        await engine.start()
        assert engine.scheduler is not None
        jobs = engine.scheduler.submit_many(drafts(2, steps=200))

        async def both_on_the_node() -> bool:
            return all(job.accepted for job in jobs)

        await until(both_on_the_node)
        await engine.stop(cancel_jobs=cancel_jobs)
        async with ComfyClient(node.url) as client:
            queue = await client.queue()
        left = len(queue.running) + len(queue.pending)
        assert left == (0 if cancel_jobs else 2)
    finally:
        await farm.stop()
