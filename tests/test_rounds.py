"""The round model every flow shares, without a terminal: events, verdicts, locks, save and resume."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from imgen_tui.comfy.events import ImageRef
from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.flows.recorder import SessionRecorder
from imgen_tui.flows.round_maker import RoundMaker
from imgen_tui.flows.round_store import RoundRunner, restore_rounds, rounds_state
from imgen_tui.flows.rounds import (
    Cell,
    Denoise,
    Round,
    RoundHistory,
    RoundRecipe,
    apply_event,
    judge,
    toggle_seed_lock,
)
from imgen_tui.graphs import load_library
from imgen_tui.graphs.graph import Graph
from imgen_tui.graphs.params import read_values
from imgen_tui.locations import bundled_dir
from imgen_tui.scheduler.events import (
    JobAssigned,
    JobCancelled,
    JobDone,
    JobFailed,
    JobProgress,
    JobRetrying,
    JobStarted,
)
from imgen_tui.scheduler.jobs import Job
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.spec import load_demo_farm
from imgen_tui.store import ImageRecord, SessionStore
from imgen_tui.store.records import RoundInfo
from imgen_tui.yamlfile import ConfigError
from tests.round_helpers import Follower, demo_engine, following, parts, runner_for, until

LIBRARY = load_library([bundled_dir("workflows")])
DRAFTS = RoundRecipe("drafts", "Drafts", 4, "sd15_txt2img", "draft", {"steps": 4})
SDXL = RoundRecipe("refined", "Refined", 3, "sdxl_img2img", "quality", {"steps": 4})


def maker(seed: int = 7) -> RoundMaker:
    return RoundMaker(LIBRARY, DEFAULT_MODELS, config_name="test.yaml", rng=random.Random(seed))


def recipe_for(info: RoundInfo) -> RoundRecipe | None:
    return {"drafts": DRAFTS, "refined": SDXL}.get(info.stage)


def seed_of(graph: Graph) -> object:
    return read_values(graph).get("seed")


def now(cell: Cell) -> tuple[str, str | None, int, int, float | None]:
    return cell.state, cell.node_id, cell.step, cell.total, cell.eta


# -- a cell's life -------------------------------------------------------------------------------


def test_a_cell_follows_its_job_through_every_scheduler_event() -> None:
    stage_round = Round(DRAFTS, "a fox", "")
    (spec, *_) = maker().first(stage_round)
    cell = stage_round.cells[0]
    job = Job(spec=spec, seq=1)
    assert cell.state == "queued" and cell.job_id == spec.job_id

    apply_event(cell, JobAssigned(job, "gpu-a", "p1"))
    assert now(cell) == ("queued", "gpu-a", 0, 0, None)  # posted, not yet running
    apply_event(cell, JobStarted(job, "gpu-a"))
    apply_event(cell, JobProgress(job, "gpu-a", 3, 10, 1.5))
    assert now(cell) == ("running", "gpu-a", 3, 10, 1.5)
    assert cell.progress == pytest.approx(0.3)
    apply_event(cell, JobRetrying(job, "gpu-a", "the node went away"))
    assert now(cell)[:3] == ("queued", None, 0)  # back in line
    apply_event(cell, JobStarted(job, "gpu-b"))
    apply_event(cell, JobDone(job, "gpu-b", (ImageRef("x.png"),), kept=("not a record",)))
    assert now(cell)[:2] == ("done", "gpu-b")
    assert cell.image is None  # nothing the store kept: no picture to show

    failed, cancelled = stage_round.cells[1], stage_round.cells[2]
    apply_event(failed, JobFailed(Job(spec=spec, seq=2), "model missing on every node"))
    apply_event(cancelled, JobCancelled(Job(spec=spec, seq=3)))
    assert (failed.state, failed.error) == ("failed", "model missing on every node")
    assert cancelled.state == "cancelled" and not cancelled.unfinished


def test_history_applies_an_event_to_its_own_cell_and_ignores_others() -> None:
    history = RoundHistory()
    first = Round(DRAFTS, "a fox", "")
    specs = maker().first(first)
    history.push(first)
    other = maker(8).first(Round(DRAFTS, "not ours", ""))[0]
    assert history.apply(JobStarted(Job(spec=other, seq=1), "gpu-a")) is None
    touched = history.apply(JobStarted(Job(spec=specs[2], seq=2), "gpu-a"))
    assert touched is first.cells[2] and touched.state == "running"
    assert history.unfinished_jobs() == [s.job_id for s in specs]


def test_verdicts_toggle_and_a_seed_lock_says_what_the_store_keeps() -> None:
    cell = Cell(job_id="j", seed=5)
    assert judge(cell, "picked") == "picked"
    assert judge(cell, "picked") == "none"  # the same key again clears it
    assert judge(cell, "rejected") == "rejected"
    assert judge(cell, "picked") == "picked"  # a pick overrides a reject
    assert judge(cell, "none") == "none"
    assert toggle_seed_lock(cell) == ("seed",) and cell.locked
    assert toggle_seed_lock(cell) == () and not cell.locked


def test_denoise_nudges_stay_inside_the_range() -> None:
    denoise = Denoise(0.35, 0.05)
    assert denoise.nudge(1) == 0.4 and denoise.nudge(-1) == 0.35
    for _ in range(30):
        denoise.nudge(1)
    assert denoise.value == 0.95
    for _ in range(30):
        denoise.nudge(-1)
    assert denoise.value == 0.05


# -- operations on a round -----------------------------------------------------------------------


def test_again_is_a_new_round_keeping_picks_and_locks_and_can_be_undone() -> None:
    make = maker()
    history = RoundHistory()
    first = Round(DRAFTS, "a fox", "")
    history.push(first)
    make.first(first)
    for cell in first.cells:  # pretend they finished
        cell.state, cell.image = "done", fake_image(cell.job_id)
    first.cells[1].locked = True
    first.cells[3].verdict = "picked"
    seeds_before = {c.seed for c in first.cells}

    again = make.again(history)
    second = history.current
    assert second is not None and second is not first and second.replaces is first
    assert len(again) == 2 and len(second.cells) == 4  # two kept, two made again
    kept = second.cells[:2]
    assert [(c.seed, c.locked, c.verdict) for c in kept] == [
        (first.cells[1].seed, True, "none"),
        (first.cells[3].seed, False, "picked"),
    ]
    assert not {seed_of(s.graph) for s in again} & seeds_before
    assert history.made == [first, second]  # the old round is kept

    remade = make.again(history, prompt="a fox, at night")
    third = history.current
    assert third is not None and third.prompt == "a fox, at night" and second.prompt == "a fox"
    assert len(remade) == 4  # every cell is new under a new prompt…
    assert seed_of(remade[0].graph) == first.cells[1].seed and third.cells[0].locked  # …locked kept
    assert read_values(remade[0].graph)["positive_prompt"] == "a fox, at night"

    assert history.undo_again() is third and history.current is second
    assert history.undo_again() is second and history.current is first
    assert history.undo_again() is None


def fake_image(job_id: str) -> ImageRecord:
    path = Path("/nonexistent") / f"{job_id}.png"
    return ImageRecord(
        job_id,
        job_id,
        "r",
        0,
        path,
        path,
        path,
        512,
        512,
        1,
        1,
        "gpu-a",
        1.0,
        None,
        "none",
        (),
        0.0,
    )


def test_carried_seeds_start_a_new_round_and_the_rest_are_random() -> None:
    stage_round = Round(DRAFTS, "a fox", "")
    specs = maker().first(stage_round, [11, 12])
    assert [seed_of(s.graph) for s in specs][:2] == [11, 12] and len(specs) == 4


def test_more_like_this_and_upscale_need_a_finished_image() -> None:
    make = maker()
    stage_round = Round(DRAFTS, "a fox", "")
    make.first(stage_round)
    with pytest.raises(ValueError, match="not finished"):
        make.more_like_this(stage_round, stage_round.cells[0], 0.35)
    with pytest.raises(ValueError, match="not finished"):
        make.upscale(stage_round, stage_round.cells[0])


def test_a_workflow_the_library_lacks_names_the_settings_file() -> None:
    with pytest.raises(ConfigError, match=r"^test\.yaml: .*nope"):
        maker().template("nope")


def test_going_to_a_round_that_does_not_exist_is_a_sentence() -> None:
    history = RoundHistory()
    history.push(Round(DRAFTS, "a fox", ""))
    with pytest.raises(ValueError, match="there is no round 3; there are 1"):
        history.go_to(2)


def test_push_after_current_drops_the_rounds_past_it() -> None:
    history = RoundHistory()
    rounds = [Round(DRAFTS, f"p{i}", "") for i in range(3)]
    for each in rounds:
        history.push(each)
    history.go_to(0)
    history.push(Round(SDXL, "next", ""), after_current=True)
    assert [r.prompt for r in history.rounds] == ["p0", "next"] and history.position == 1


# -- on the farm: save, resume -------------------------------------------------------------------


async def test_a_round_on_the_demo_farm_is_saved_and_resumed_exactly(tmp_path: Path) -> None:
    async with demo_engine(tmp_path) as engine:
        store, _ = parts(engine)
        history = RoundHistory()
        runner = runner_for(engine, "test")
        make = maker()
        async with following(engine, history):
            drafts = Round(DRAFTS, "a red fox", "blurry")
            history.push(drafts)
            await runner.launch(drafts, make.first(drafts), title="a red fox", state={})
            await until(lambda: drafts.done == 4)
            picked, locked = drafts.cells[0], drafts.cells[2]
            assert picked.image is not None and locked.image is not None
            await runner.judge(picked, "picked")
            await runner.toggle_seed_lock(locked)

            # "again": the picked and locked cells stay, two new ones replace the rest
            specs = make.again(history)
            again = history.current
            assert again is not None and again.replaces is drafts
            await runner.launch(again, specs, title="", state={})
            await until(lambda: again.done == 4)
            rejected = again.cells[2]
            await runner.judge(rejected, "rejected")

            refined = Round(SDXL, "a red fox", "blurry", made_from=again.pick_ids)
            history.push(refined)
            specs = make.fill(refined, [picked.image] * 3, make.seeds(3))
            await runner.launch(refined, specs, title="", state={})
            refined.cells[1].verdict = "picked"  # judged before its image exists
            await runner.save_state(rounds_state(history))
            await until(lambda: refined.done == 3)
            await runner.image_arrived(refined.cells[1])
        assert runner.session is not None
        reopened = RoundHistory()
        await runner_for(engine, "test").reopen(runner.session.id, reopened, recipe_for)
        stored = {i.job_id: i.verdict for i in await store.images(session_id=runner.session.id)}

    assert [r.recipe.name for r in reopened.rounds] == ["drafts", "refined"]
    assert reopened.position == 1 and len(reopened.made) == 3  # the replaced round is kept
    back, forward = reopened.rounds
    assert back.replaces is reopened.made[0] and back.made_from == ()
    assert [c.job_id for c in back.cells] == [c.job_id for c in again.cells]
    assert [c.seed for c in back.cells] == [c.seed for c in again.cells]
    assert [c.verdict for c in back.cells] == ["picked", "none", "rejected", "none"]
    assert [c.locked for c in back.cells] == [False, True, False, False]
    assert all(c.state == "done" and c.image is not None for c in back.cells)
    assert back.prompt == "a red fox" and back.negative == "blurry"
    assert forward.made_from == (picked.image.id,)
    assert [c.source.id if c.source else None for c in forward.cells] == [picked.image.id] * 3
    assert [s.id if s else None for s in forward.sources] == [picked.image.id] * 3  # again: img2img
    assert forward.cells[1].verdict == "picked"  # given before the image: kept by the document
    assert stored[forward.cells[1].job_id] == "picked"  # …and on its row once it arrived


async def test_a_round_left_running_by_a_crash_is_re_attached_not_made_twice(
    tmp_path: Path,
) -> None:
    farm = SimFarm.from_spec(load_demo_farm(), speed=0.2, previews=False)
    await farm.start()
    store = await SessionStore.open(tmp_path / "data")
    try:
        first = Scheduler(farm.config(), keeper=SessionRecorder(store))
        await first.start()
        history = RoundHistory()
        stage_round = Round(DRAFTS, "a red fox", "")
        history.push(stage_round)
        runner = RoundRunner(store, first, "test")
        await runner.launch(stage_round, maker().first(stage_round), title="fox", state={})
        await runner.save_state(rounds_state(history))
        assert runner.session is not None
        session_id = runner.session.id

        async def posted() -> bool:
            rows = await store.jobs(session_id)
            return any(row.state in ("submitted", "running") for row in rows)

        for _ in range(500):
            if await posted():
                break
            await asyncio.sleep(0.01)
        await first.stop()  # the app dies: prompts stay on the nodes, nothing is cancelled

        second = Scheduler(farm.config(), keeper=SessionRecorder(store))
        await second.start()
        reopened = RoundHistory()
        follower = Follower(reopened)
        listening = asyncio.create_task(follower.run(second))
        await asyncio.sleep(0)
        await RoundRunner(store, second, "test").reopen(session_id, reopened, recipe_for)
        (back,) = reopened.rounds
        assert len(back.cells) == 4 and any(c.unfinished for c in back.cells)
        await asyncio.wait_for(second.wait_idle(), 30)
        await until(lambda: back.done == 4)
        listening.cancel()
        await second.stop()
        jobs = await store.jobs(session_id)
        images = await store.images(session_id=session_id)
    finally:
        await store.close()
        await farm.stop()
    assert len(jobs) == 4 and len(images) == 4  # every job kept once, none made twice
    assert {image.job_id for image in images} == {c.job_id for c in back.cells}
    assert all(c.image is not None for c in back.cells)


async def test_a_round_whose_recipe_is_gone_is_left_out_not_a_crash(tmp_path: Path) -> None:
    async with demo_engine(tmp_path) as engine:
        store, _ = parts(engine)
        session = await store.create_session("test", "old")
        await store.add_round(session.id, "a stage no longer configured", prompt="x")
        infos = await store.rounds(session.id)
    history = RoundHistory()
    assert not restore_rounds(history, {}, [], [], infos, recipe_for)  # no document: from rows
    assert history.rounds == [] and history.current is None
    document = {
        "version": 1,
        "position": 3,
        "path": ["gone"],
        "rounds": [{"id": "gone", "stage": "x"}],
    }
    assert restore_rounds(history, document, [], [], infos, recipe_for)
    assert history.rounds == [] and history.position == 0
