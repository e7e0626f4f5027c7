"""The app against a node that misbehaves on purpose (issue 12, items 9-12, 15, 19, 24).

Two kinds of test: the real CLI in a subprocess against a `HostileNode` (and
a healthy simulated node beside it), with the cases of tests/hostile_cases.py;
and the scheduler, client and stream in this process, where a test needs to
change an answer halfway or to watch a node's state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import pytest

from imgen_tui.comfy import ComfyClient, NodeEventStream, ProtocolError, TimedOut
from imgen_tui.comfy.events import ImageRef, Progress
from imgen_tui.comfy.websocket import Backoff, Connected, StreamEvent
from imgen_tui.flows import recorder
from imgen_tui.flows.recorder import SessionRecorder
from imgen_tui.graphs.graph import GraphError
from imgen_tui.graphs.templates import load_library
from imgen_tui.locations import bundled_dir
from imgen_tui.scheduler.events import JobDone, JobEvent, JobFailed, JobRetrying
from imgen_tui.scheduler.jobs import Job, JobSpec
from imgen_tui.scheduler.runtime import NodeRuntime
from imgen_tui.scheduler.scheduler import FIRST_CHECK_WAIT, Scheduler
from imgen_tui.store import CorruptImage, SessionStore
from imgen_tui.ui.app import make_app
from imgen_tui.ui.screens.home import HomeScreen
from tests.hostile_cases import CASES_BY_KEY, Outcome, huge_png, run_case
from tests.hostile_node import (
    MODELS,
    SYSTEM_STATS,
    Answer,
    HostileNode,
    farm_config,
    finished_frames,
    healthy_sim,
    history_entry,
    running,
)
from tests.pilot_helpers import until

LIBRARY = load_library([bundled_dir("workflows")])


def run(key: str, tmp_path: Path, **changes: object) -> Outcome:
    case = dataclasses.replace(CASES_BY_KEY[key], limit=45, **changes)  # type: ignore[arg-type]
    return run_case(case, tmp_path)


def assert_no_download_left(tmp_path: Path) -> None:
    """Every job's download folder is gone (made by its first piece, removed at the end)."""
    downloads = tmp_path / "data" / ".downloads"
    assert not downloads.exists() or not list(downloads.iterdir())


def assert_not_hung(outcome: Outcome, seconds: float = 30) -> None:
    assert outcome.exit_code is not None, f"hung:\n{outcome.text}"
    assert outcome.seconds < seconds, outcome.text
    assert "unexpected error" not in outcome.text and "Traceback" not in outcome.text


# -- through the CLI ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["9a", "9b", "9c", "held-junk"])
def test_a_malformed_websocket_frame_is_skipped_and_the_node_keeps_working(
    key: str, tmp_path: Path
) -> None:
    outcome = run(key, tmp_path, alone=True)  # alone: only the hostile node can make them
    assert_not_hung(outcome)
    assert (outcome.exit_code, outcome.images) == (0, 2), outcome.text


@pytest.mark.parametrize("key", ["10a", "10b"])
def test_a_node_with_a_bad_answer_at_start_leaves_the_farm_working(
    key: str, tmp_path: Path
) -> None:
    outcome = run(key, tmp_path)
    assert_not_hung(outcome)
    assert (outcome.exit_code, outcome.images) == (0, 2), outcome.text


def test_nodes_prints_the_table_and_names_the_bad_answer(tmp_path: Path) -> None:
    outcome = run("10c", tmp_path)
    assert_not_hung(outcome)
    assert outcome.exit_code == 1
    assert "bad answer" in outcome.stdout and "unreachable" not in outcome.stdout
    assert "gpu-premium" in outcome.stdout and "ComfyUI 0.3.64" in outcome.stdout  # the good one
    assert "hostile (http://127.0.0.1:" in outcome.stdout
    assert "vram_total is 'lots', not a number" in outcome.stdout


def test_a_workflow_that_saves_nothing_is_refused_before_any_session(tmp_path: Path) -> None:
    outcome = run("11a", tmp_path)
    assert outcome.exit_code == 2, outcome.text
    assert "workflow preview_only: the graph saves no image" in outcome.text
    assert outcome.images == 0 and not (tmp_path / "data" / "imgen.sqlite3").exists()


@pytest.mark.parametrize("key", ["11b", "11c"])
def test_a_prompt_that_saved_nothing_is_not_a_finished_image(key: str, tmp_path: Path) -> None:
    outcome = run(key, tmp_path)
    assert_not_hung(outcome)
    # Every job went to the hostile node first; the healthy one made them instead.
    assert (outcome.exit_code, outcome.image_nodes) == (0, ["gpu-premium"] * 2), outcome.text


def test_a_trickling_health_answer_delays_no_other_node(tmp_path: Path) -> None:
    outcome = run("12b", tmp_path)
    assert_not_hung(outcome, seconds=15)
    assert (outcome.exit_code, outcome.images) == (0, 2), outcome.text


def test_nodes_gives_up_on_a_trickling_node(tmp_path: Path) -> None:
    outcome = run("12c", tmp_path)
    assert_not_hung(outcome, seconds=20)
    assert outcome.exit_code == 1
    assert "too slow" in outcome.stdout and "ComfyUI 0.3.64" in outcome.stdout
    assert "did not finish answering /system_stats within" in outcome.stdout


def test_a_trickling_download_is_cut_off_by_the_job_time_limit(tmp_path: Path) -> None:
    outcome = run("12a", tmp_path, alone=True, args=("--count", "1", "--timeout", "1"))
    assert_not_hung(outcome, seconds=25)
    assert (outcome.exit_code, outcome.images) == (1, 0), outcome.text
    assert "hostile: downloading 'x.png' took over 1 s" in outcome.text
    assert_no_download_left(tmp_path)


@pytest.mark.parametrize(("key", "field"), [("15a", "'outputs'"), ("15b", "'status'")])
def test_a_malformed_history_entry_fails_the_attempt_at_once(
    key: str, field: str, tmp_path: Path
) -> None:
    outcome = run(key, tmp_path, alone=True)
    assert_not_hung(outcome, seconds=20)  # not the 5-minute job limit
    assert (outcome.exit_code, outcome.images) == (1, 0), outcome.text
    assert "hostile (http://127.0.0.1:" in outcome.text
    assert f"the {field} in the /history of" in outcome.text and "is a list" in outcome.text


def test_duplicate_references_make_one_image_in_bounded_memory(tmp_path: Path) -> None:
    outcome = run("19a", tmp_path)
    assert_not_hung(outcome)
    assert (outcome.exit_code, outcome.images) == (0, 1), outcome.text
    assert outcome.peak_rss_mb < 1200, outcome.peak_rss_mb  # it was 3.8 GB for 64 copies


def test_a_huge_download_is_streamed_to_disk_and_refused(tmp_path: Path) -> None:
    outcome = run("19b", tmp_path, alone=True)
    assert_not_hung(outcome)
    assert (outcome.exit_code, outcome.images) == (1, 0), outcome.text
    assert "over the 256 MiB download cap" in outcome.text
    assert outcome.peak_rss_mb < 200, outcome.peak_rss_mb  # it was 392 MB in memory
    assert not list((tmp_path / "data").rglob("*.download"))  # nothing left behind
    assert_no_download_left(tmp_path)


def test_an_answer_that_is_no_image_names_the_node_and_the_file(tmp_path: Path) -> None:
    outcome = run("24a", tmp_path)
    assert_not_hung(outcome)
    assert "hostile: 'x.png' from /view: it is not a readable image" in outcome.text
    assert "BytesIO" not in outcome.text and ".download" not in outcome.text
    assert_no_download_left(tmp_path)


def test_nodes_names_the_node_for_an_object_info_that_is_no_object(tmp_path: Path) -> None:
    outcome = run("24b", tmp_path)
    assert "hostile (http://127.0.0.1:" in outcome.stdout
    assert "/object_info answered a list, not an object of classes" in outcome.stdout
    assert "bad answer" in outcome.stdout


def test_a_redirect_is_reported_as_a_redirect(tmp_path: Path) -> None:
    outcome = run("24c", tmp_path)
    assert "redirect (HTTP 302 to http://example.invalid/login)" in outcome.stdout
    assert "not JSON" not in outcome.stdout


def test_output_names_from_the_node_never_reach_our_disk(tmp_path: Path) -> None:
    outcome = run("held-traversal", tmp_path)
    assert (outcome.exit_code, outcome.images) == (0, 2), outcome.text
    assert not Path("/tmp/imgen-evil.png").exists() and not Path("/tmp/imgen-evil-abs.png").exists()
    data = (tmp_path / "data").resolve()
    assert all(path.resolve().is_relative_to(data) for path in outcome.files)
    assert not any("evil" in path.name for path in outcome.files)


def test_a_decompression_bomb_is_refused(tmp_path: Path) -> None:
    outcome = run("held-bomb", tmp_path)
    assert_not_hung(outcome)
    assert (outcome.exit_code, outcome.images) == (1, 0), outcome.text
    assert "pixel safety limit" in outcome.text


# -- in this process -------------------------------------------------------------------------


def draft(seed: int, time_limit: float = 30) -> JobSpec:
    graph = LIBRARY["sd15_txt2img"].render({"prompt": "a fox", "seed": seed, "steps": 2}, MODELS)
    return JobSpec.from_graph(graph, "sd15", needs=frozenset({"sd15"}), time_limit=time_limit)


async def run_jobs(scheduler: Scheduler, specs: list[JobSpec], limit: float = 20) -> list[JobEvent]:
    events: list[JobEvent] = []
    subscription = scheduler.subscribe()

    async def collect() -> None:
        async for event in subscription:
            events.append(event)

    collector = asyncio.create_task(collect())
    scheduler.submit_many(specs)
    try:
        await asyncio.wait_for(scheduler.wait_idle(), limit)
    finally:
        collector.cancel()
    return events


async def reaches(runtime: NodeRuntime, state: str, seconds: float = 5) -> bool:
    for _ in range(int(seconds / 0.05)):
        if runtime.state == state:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_the_stream_survives_every_bad_frame_and_closes_quietly() -> None:
    node = HostileNode()
    bad = [
        '{"type":"progress","data":{"value":1e999,"max":20,"prompt_id":"PID"}}',
        '{"type":"status","data":{"status":{"exec_info":{"queue_remaining":1e999}}}}',
        '{"type":"executed","data":{"node":"9","prompt_id":"PID","output":[1,2]}}',
        '{"type":"executing","data":{"node":"9","prompt_id":["PID"]}}',
        "[" * 50_000,
    ]
    node.script = lambda pid: [*(frame.replace("PID", pid) for frame in bad), *finished_frames(pid)]
    async with node:
        stream = NodeEventStream(node.url, "me", name="hostile", backoff=Backoff(0.01, 0.05))
        async with ComfyClient(node.url, name="hostile", client_id="me") as client:
            stream.start()
            try:
                assert isinstance(await asyncio.wait_for(stream.next_event(), 5), Connected)
                stream.watch("p1")
                await client.submit(draft(1).graph, prompt_id="p1")
                seen: list[StreamEvent] = []
                while not seen or not isinstance(seen[-1], Progress):
                    seen.append(await asyncio.wait_for(stream.next_event(), 5))
                assert seen[-1] == Progress(prompt_id="p1", node="5", value=1, max=1)
                assert stream._task is not None and not stream._task.done()
            finally:
                await stream.close()  # must not re-raise anything a frame caused


async def test_a_node_whose_health_answer_turns_bad_is_marked_down_and_checks_go_on(
    tmp_path: Path,
) -> None:
    node = HostileNode()
    sim = healthy_sim()
    async with running([node], sim):
        scheduler = Scheduler(farm_config([node], sim), health_interval=0.1)
        async with scheduler:
            hostile, good = scheduler.nodes["hostile"], scheduler.nodes["gpu-premium"]
            assert hostile.state == "up" and good.state == "up"
            bad = {"system": {}, "devices": [{"vram_total": "lots"}]}
            node.answers["/system_stats"] = Answer(json=bad)
            assert await reaches(hostile, "down")
            assert "hostile" in hostile.state_reason and "vram_total" in hostile.state_reason
            assert good.state == "up"
            events = await run_jobs(scheduler, [draft(1), draft(2)])
            assert sum(isinstance(e, JobDone) for e in events) == 2
            node.answers["/system_stats"] = Answer(json=SYSTEM_STATS)  # it recovers
            assert await reaches(hostile, "up")


async def test_an_unreadable_object_info_marks_the_node_degraded_with_the_reason(
    tmp_path: Path,
) -> None:
    node = HostileNode()
    node.answers["/object_info"] = Answer(json=["not", "classes"])
    async with running([node]), Scheduler(farm_config([node])) as scheduler:
        runtime = scheduler.nodes["hostile"]
        assert runtime.state == "degraded"
        assert "/object_info answered a list" in runtime.state_reason


async def test_start_does_not_wait_for_a_node_that_trickles(tmp_path: Path) -> None:
    node = HostileNode()
    node.answers["/system_stats"] = Answer(trickle=2.0)
    sim = healthy_sim()
    async with running([node], sim):
        scheduler = Scheduler(farm_config([node], sim))
        started = time.monotonic()
        async with scheduler:
            assert time.monotonic() - started < FIRST_CHECK_WAIT + 1.5
            assert scheduler.nodes["gpu-premium"].state == "up"
            events = await run_jobs(scheduler, [draft(3)], limit=10)
            assert [type(e) for e in events if isinstance(e, JobDone | JobFailed)] == [JobDone]
            for _ in range(200):  # its probe gives up within the deadline
                if "within" in scheduler.nodes["hostile"].state_reason:
                    break
                await asyncio.sleep(0.05)
            assert scheduler.nodes["hostile"].state == "down"
            assert (
                "did not finish answering /system_stats" in scheduler.nodes["hostile"].state_reason
            )


async def test_a_malformed_history_entry_fails_the_attempt_with_a_reason(tmp_path: Path) -> None:
    node = HostileNode()
    node.answers["/history"] = lambda pid: Answer(json=history_entry(pid, status=["done"]))
    node.outputs_heard = False  # else its executed frames are enough: /history is not asked
    async with running([node]):
        scheduler = Scheduler(farm_config([node]), max_attempts=1)
        async with scheduler:
            started = time.monotonic()
            events = await run_jobs(scheduler, [draft(4)])
    (failed,) = [e for e in events if isinstance(e, JobFailed)]
    assert time.monotonic() - started < 5
    assert "the 'status' in the /history of" in failed.reason and "is a list" in failed.reason


async def test_a_download_has_a_total_deadline(tmp_path: Path) -> None:
    node = HostileNode()
    node.answers["/view"] = Answer(body=b"\x89PNG" * 10, trickle=0.3)
    async with node, ComfyClient(node.url, name="hostile") as client:
        started = time.monotonic()
        with pytest.raises(TimedOut, match=r"^hostile: downloading 'a.png' took over 1 s"):
            await client.download_to(ImageRef("a.png"), tmp_path / "a", deadline=1)
        assert time.monotonic() - started < 2


async def test_every_parse_error_names_the_node(tmp_path: Path) -> None:
    node = HostileNode()
    node.answers["/queue"] = Answer(json={"queue_running": [["x", "p"]], "queue_pending": 7})
    node.answers["/history"] = Answer(json={"p": {"outputs": {"9": {"images": "x"}}}})
    async with node, ComfyClient(node.url, name="hostile") as client:
        for call in (client.queue(), client.history("p")):
            with pytest.raises(ProtocolError, match=r"^hostile \(http://127\.0\.0\.1:\d+\): "):
                await call


async def test_a_graph_without_a_saver_is_refused_before_it_is_sent() -> None:
    graph = json.loads(json.dumps(draft(5).graph))
    for spec in graph.values():
        if spec["class_type"] == "SaveImage":
            spec["class_type"] = "PreviewImage"
    node = HostileNode()
    async with node, ComfyClient(node.url, name="hostile") as client:
        with pytest.raises(GraphError, match="the graph saves no image"):
            await client.submit(graph)
    assert node.prompts == []


async def test_a_job_whose_node_saved_nothing_moves_to_a_healthy_node(tmp_path: Path) -> None:
    node = HostileNode()
    node.answers["/history"] = lambda pid: Answer(json=history_entry(pid, outputs={}))
    sim = healthy_sim()
    async with running([node], sim), Scheduler(farm_config([node], sim)) as scheduler:
        events = await run_jobs(scheduler, [draft(6)])
    retries = [e for e in events if isinstance(e, JobRetrying)]
    assert retries, events
    assert "finished without saving an image" in retries[0].reason
    (done,) = [e for e in events if isinstance(e, JobDone)]
    assert done.node_id == "gpu-premium"


@pytest.mark.parametrize("read_at_once", [recorder.READ_AT_ONCE, 0], ids=["small", "big"])
async def test_the_pixel_limit_is_for_the_whole_job(
    tmp_path: Path, read_at_once: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two 9400² pictures are each under the limit; together they are refused, undecoded.
    A small file is read back as its download ends; a big one not before the budget passed."""
    monkeypatch.setattr(recorder, "READ_AT_ONCE", read_at_once)
    reads: list[Path] = []
    read_bytes = Path.read_bytes

    def counted(path: Path) -> bytes:
        reads.append(path)
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", counted)
    node = HostileNode()
    node.answers["/view"] = Answer(body=huge_png(9400), headers={"Content-Type": "image/png"})
    store = await SessionStore.open(tmp_path / "data")
    job = Job(spec=draft(7), seq=1, prompt_id="p")
    try:
        async with node, ComfyClient(node.url, name="hostile") as client:
            with pytest.raises(
                CorruptImage, match=r"^hostile: prompt p: its 2 images have 176,720,000 pixels"
            ):
                await SessionRecorder(store).keep_outputs(
                    job, "hostile", client, (ImageRef("a.png"), ImageRef("b.png"))
                )
    finally:
        await store.close()
    assert not list((tmp_path / "data").rglob("*.download"))
    assert_no_download_left(tmp_path)
    downloads = [path for path in reads if path.suffix == ".download"]
    assert len(downloads) == (2 if read_at_once else 0)


async def test_the_app_starts_beside_a_node_with_a_bad_answer(tmp_path: Path) -> None:
    """It used to crash in `on_mount` with a traceback; now the node is shown down."""
    node = HostileNode()
    node.answers["/system_stats"] = Answer(json={"system": {}, "devices": [{"vram_total": "x"}]})
    sim = healthy_sim()
    async with running([node], sim):
        app = make_app(farm_config([node], sim), data_dir=tmp_path / "data", graphics="halfcell")
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, HomeScreen))
            scheduler = app.engine.scheduler
            assert scheduler is not None
            await until(pilot, lambda: scheduler.nodes["gpu-premium"].state == "up")
            assert scheduler.nodes["hostile"].state == "down"
            assert "vram_total" in scheduler.nodes["hostile"].state_reason
