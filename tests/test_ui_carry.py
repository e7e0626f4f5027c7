"""Carry a gallery picture into the funnel, the concept builder or the explorer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from imgen_tui.flows.rounds import Cell
from imgen_tui.graphs.graph import iter_nodes
from imgen_tui.store import SessionStore
from imgen_tui.store.records import NewImage
from imgen_tui.ui.app import ImgenApp
from imgen_tui.ui.screens.carry import CarryChooser
from imgen_tui.ui.screens.concept import ConceptScreen
from imgen_tui.ui.screens.explorer import ExplorerScreen
from imgen_tui.ui.screens.funnel import FunnelScreen
from imgen_tui.ui.screens.gallery import GalleryScreen
from imgen_tui.ui.widgets.lora_chips import LoraChips
from imgen_tui.ui.widgets.round_view import RoundView
from tests.pilot_helpers import until
from tests.test_store import output, png
from tests.test_ui_concept import demo_app
from tests.test_ui_sessions import SIZE, open_sessions

PROMPT = "a heron on a frozen pond"


async def one_pick(data_dir: Path) -> None:
    store = await SessionStore.open(data_dir)
    try:
        session = await store.create_session("batch", "heron")
        round_info = await store.add_round(session.id, "drafts", prompt=PROMPT)
        await store.add_jobs(round_info.id, [("j0", "{}")])
        (image,) = await store.save_images("j0", [output(png(7, 64))])
        await store.set_verdict(image.id, "picked")
    finally:
        await store.close()


async def open_gallery(pilot: Any) -> GalleryScreen:
    """From Home: the sessions list, then `G`, until the one pick is on the grid."""
    await open_sessions(pilot)
    await pilot.press("G")
    await until(pilot, lambda: isinstance(pilot.app.screen, GalleryScreen))
    gallery = pilot.app.screen
    assert isinstance(gallery, GalleryScreen)
    await until(pilot, lambda: len(gallery.grid.cells) == 1)
    return gallery


@pytest.mark.parametrize(
    ("down", "screen_type", "prompt_id"),
    [
        (0, FunnelScreen, "#prompt"),
        (1, ConceptScreen, "#field-subject"),
        (2, ExplorerScreen, "#explorer-prompt"),
    ],
)
async def test_carry_from_the_gallery_into_each_flow(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    down: int,
    screen_type: type,
    prompt_id: str,
) -> None:
    await one_pick(tmp_path)
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        gallery = await open_gallery(pilot)

        await pilot.press("c")  # the chooser; escape loses nothing
        await until(pilot, lambda: isinstance(app.screen, CarryChooser))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is gallery)
        assert gallery.grid.cursor == 0 and len(gallery.grid.cells) == 1

        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CarryChooser))
        for _ in range(down):
            await pilot.press("down")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, screen_type))
        await until(pilot, lambda: app.screen.query_one(prompt_id, Input).value == PROMPT)
        said = app.said  # type: ignore[attr-defined]
        await until(pilot, lambda: any(text.startswith("Carried #") for text in said))


@pytest.mark.parametrize(
    ("down", "screen_type", "prompt_id"),
    [(0, FunnelScreen, "#prompt"), (1, ConceptScreen, "#field-subject")],
)
async def test_carry_from_the_explorer_into_the_funnel_and_concept_builder(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    down: int,
    screen_type: type,
    prompt_id: str,
) -> None:
    from tests.test_ui_explorer import GRAIN, current, highlight, open_explorer, round_done

    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_explorer(pilot)
        await highlight(pilot, screen, GRAIN)
        await pilot.press("s")
        await until(pilot, lambda: round_done(screen))
        prompt = current(screen).prompt
        await pilot.press("O")
        await until(pilot, lambda: isinstance(app.screen, CarryChooser))
        await pilot.press("escape")  # nothing lost
        await until(pilot, lambda: app.screen is screen)
        assert current(screen).prompt == prompt
        await pilot.press("O")
        await until(pilot, lambda: isinstance(app.screen, CarryChooser))
        for _ in range(down):
            await pilot.press("down")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, screen_type))
        await until(pilot, lambda: app.screen.query_one(prompt_id, Input).value == prompt)


# -- the LoRA stack goes with the pick -------------------------------------------------------

DETAIL, WATERCOLOR = "detail-tweaker.safetensors", "watercolor-style.safetensors"
GONE = "gone-from-the-farm.safetensors"


def loaders(app: ImgenApp, job_id: str) -> list[tuple[str, float]]:
    """The LoRA loaders of the graph the scheduler was given for a job."""
    scheduler = app.engine.scheduler
    assert scheduler is not None
    graph = scheduler.jobs[job_id].spec.graph
    return [
        (inputs["lora_name"], inputs["strength_model"])
        for _, kind, inputs in iter_nodes(graph)
        if kind == "LoraLoader"
    ]


def chip_texts(screen: FunnelScreen | ConceptScreen) -> list[str]:
    return [chip.text for chip in screen.query_one(RoundView).query_one(LoraChips).chip_list]


def fresh_jobs(app: ImgenApp, before: set[str], cells: list[Cell]) -> list[str]:
    """The job ids of the cells made since `before` (kept cells keep their old ids)."""
    scheduler = app.engine.scheduler
    assert scheduler is not None
    jobs = [cell.job_id for cell in cells if cell.job_id not in before]
    assert jobs and all(job in scheduler.jobs for job in jobs)
    return jobs


def funnel_done(screen: FunnelScreen) -> bool:
    current = screen.funnel.current if screen.funnel else None
    return current is not None and current.done == len(current.cells) > 0


async def test_carry_from_the_explorer_takes_the_stack_into_the_funnel_its_jobs_and_reopen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_ui_explorer import current, highlight, open_explorer, round_done

    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        explorer = await open_explorer(pilot)
        await highlight(pilot, explorer, DETAIL)
        await pilot.press("s")
        await until(pilot, lambda: round_done(explorer))
        explorer.query_one(RoundView).grid.focus()
        await pilot.press("right", "right", "right", "right")  # #5: detail-tweaker 0.7
        assert current(explorer).cells[4].label == "detail-tweaker 0.7"
        await pilot.press("O")
        await until(pilot, lambda: isinstance(app.screen, CarryChooser))
        await pilot.press("enter")  # the funnel
        await until(pilot, lambda: isinstance(app.screen, FunnelScreen))
        funnel = app.screen
        assert isinstance(funnel, FunnelScreen) and funnel.flow is not None
        await until(pilot, lambda: len(chip_texts(funnel)) == 1)
        # an SD1.5 LoRA (its file says so): the SD1.5 drafts get it, the SDXL stages do not
        assert chip_texts(funnel) == [f"LoRA: {DETAIL} 0.7 · Drafts only"]
        said = app.said  # type: ignore[attr-defined]
        assert any("with detail-tweaker 0.7" in text for text in said)
        assert f"{DETAIL} is an SD1.5 LoRA: only Drafts get it, not Refined, Polished." in said

        funnel.query_one("#prompt", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: funnel.funnel is not None and funnel.funnel.current is not None)
        assert funnel.funnel is not None
        drafts = funnel.funnel.current
        assert drafts is not None and len(drafts.cells) == 20
        assert all(loaders(app, c.job_id) == [(DETAIL, 0.7)] for c in drafts.cells)
        await until(pilot, lambda: funnel_done(funnel))
        session_id = funnel.flow.session_id
        assert session_id is not None

        # reopen: the stack is back, and the next jobs are made with it
        await pilot.press("q")
        await until(pilot, lambda: app.screen is explorer)
        reopened = FunnelScreen(session_id)
        await app.push_screen(reopened)
        await until(pilot, lambda: len(chip_texts(reopened)) == 1)
        assert reopened.flow is not None and reopened.funnel is not None
        assert [(lora.name, lora.model, lora.family) for lora in reopened.flow.stack] == [
            (DETAIL, 0.7, "sd15")
        ]
        reopened.view.grid.focus()
        await pilot.press("space", "n")  # pick the first draft, go on to the SDXL stage
        await until(pilot, lambda: reopened.funnel is not None and reopened.funnel.position == 1)
        refined = reopened.funnel.current
        assert refined is not None and len(refined.cells) == 8
        assert all(loaders(app, c.job_id) == [] for c in refined.cells)  # not in an SDXL graph
        await until(pilot, lambda: funnel_done(reopened))
        await pilot.press("b")
        await until(pilot, lambda: reopened.funnel is not None and reopened.funnel.position == 0)
        before = {c.job_id for c in reopened.funnel.current.cells}  # type: ignore[union-attr]
        await pilot.press("g")  # the drafts again: the new ones with the LoRA
        again = reopened.funnel.current
        assert again is not None
        await until(pilot, lambda: all(c.job_id for c in again.cells))
        for job in fresh_jobs(app, before, again.cells):
            assert loaders(app, job) == [(DETAIL, 0.7)]
        await until(pilot, lambda: funnel_done(reopened))

        # drop it from its chip: the next jobs have no LoRA, and the saved state says so
        chip = reopened.view.query_one(LoraChips).chip_list[0]
        chip.focus()
        await pilot.press("delete")
        await until(pilot, lambda: chip_texts(reopened) == [])
        assert reopened.flow.stack == ()
        assert any(text.startswith(f"Dropped {DETAIL}") for text in said)
        await until(pilot, lambda: reopened.view.grid.has_focus)
        before = {c.job_id for c in again.cells}
        await pilot.press("g")
        latest = reopened.funnel.current
        assert latest is not None and latest is not again
        for job in fresh_jobs(app, before, latest.cells):
            assert loaders(app, job) == []
        store = app.engine.store
        assert store is not None
        assert (await store.session(session_id)).state["loras"] == []


async def one_pick_with_loras(data_dir: Path, loras: list[tuple[str, float]]) -> None:
    """A stored pick whose sidecar graph has LoRA loaders (an SD1.5 picture)."""
    graph: dict[str, Any] = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.safetensors"}}
    }
    for index, (name, strength) in enumerate(loras):
        graph[str(10 + index)] = {
            "class_type": "LoraLoader",
            "inputs": {
                "model": ["4", 0],
                "clip": ["4", 1],
                "lora_name": name,
                "strength_model": strength,
                "strength_clip": strength,
            },
        }
    store = await SessionStore.open(data_dir)
    try:
        session = await store.create_session("batch", "heron")
        round_info = await store.add_round(session.id, "drafts", prompt=PROMPT)
        await store.add_jobs(round_info.id, [("j0", "{}")])
        picture = NewImage(
            data=png(7, 64),
            seed=7,
            node_id="gpu-premium",
            seconds=1.0,
            parent_id=None,
            sidecar={"prompt": PROMPT, "family": "sd15", "graph": graph},
        )
        (image,) = await store.save_images("j0", [picture])
        await store.set_verdict(image.id, "picked")
    finally:
        await store.close()


async def carry_from_gallery(pilot: Pilot[Any], down: int) -> GalleryScreen:
    """Open the gallery, `c`, and choose the target `down` rows into the chooser."""
    gallery = await open_gallery(pilot)
    await pilot.press("c")
    await until(pilot, lambda: isinstance(pilot.app.screen, CarryChooser))
    for _ in range(down):
        await pilot.press("down")
    await pilot.press("enter")
    return gallery


async def test_carry_from_the_gallery_reads_the_stack_and_leaves_out_a_lora_no_node_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await one_pick_with_loras(tmp_path, [(GONE, 0.6), (DETAIL, 0.5)])
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await carry_from_gallery(pilot, 0)
        await until(pilot, lambda: isinstance(app.screen, FunnelScreen))
        funnel = app.screen
        assert isinstance(funnel, FunnelScreen) and funnel.flow is not None
        said = app.said  # type: ignore[attr-defined]
        sentence = f"{GONE} is on no node of the farm, so it was left out of the stack."
        await until(pilot, lambda: sentence in said)
        assert chip_texts(funnel) == [f"LoRA: {DETAIL} 0.5 · Drafts only"]
        funnel.query_one("#prompt", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: funnel.funnel is not None and funnel.funnel.current is not None)
        drafts = funnel.funnel.current  # type: ignore[union-attr]
        assert drafts is not None
        assert all(loaders(app, c.job_id) == [(DETAIL, 0.5)] for c in drafts.cells)
        await until(pilot, lambda: funnel_done(funnel))  # nothing unroutable: every draft made


async def test_carry_into_the_concept_builder_keeps_only_what_fits_its_family(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # watercolor-style's file says SDXL; detail-tweaker's says SD1.5: the builder makes SDXL
    await one_pick_with_loras(tmp_path, [(WATERCOLOR, 0.8), (DETAIL, 0.5)])
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await carry_from_gallery(pilot, 1)
        await until(pilot, lambda: isinstance(app.screen, ConceptScreen))
        concept = app.screen
        assert isinstance(concept, ConceptScreen) and concept.session is not None
        said = app.said  # type: ignore[attr-defined]
        sentence = (
            f"{DETAIL} is an SD1.5 LoRA and the concept builder makes SDXL pictures, "
            "so it was left out of the stack."
        )
        await until(pilot, lambda: sentence in said)
        assert chip_texts(concept) == [f"LoRA: {WATERCOLOR} 0.8"]
        assert f"{WATERCOLOR} is only on gpu-premium, gpu-standard: its jobs go there only." in said
        concept.query_one("#field-subject", Input).focus()
        await pilot.press("enter")
        session = concept.session
        await until(pilot, lambda: session.current is not None)
        made = session.current
        assert made is not None
        assert all(loaders(app, c.job_id) == [(WATERCOLOR, 0.8)] for c in made.cells)
        await until(pilot, lambda: made.done == len(made.cells))
        assert {c.node_id for c in made.cells} <= {"gpu-premium", "gpu-standard"}
        session_id = session.session_id
        assert session_id is not None
        await pilot.press("escape", "q")
        await until(pilot, lambda: not isinstance(app.screen, ConceptScreen))
        reopened = ConceptScreen(session_id)
        await app.push_screen(reopened)
        await until(pilot, lambda: chip_texts(reopened) == [f"LoRA: {WATERCOLOR} 0.8"])


async def test_carry_while_a_node_is_down_names_it_and_keeps_what_the_others_have(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cinematic = "cinematic-light.safetensors"  # only gpu-premium has it
    await one_pick_with_loras(tmp_path, [(cinematic, 0.9), (DETAIL, 0.5)])
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.engine.sim_farm is not None)
        farm = app.engine.sim_farm
        assert farm is not None
        await farm.node("gpu-premium").kill()
        await carry_from_gallery(pilot, 0)
        await until(pilot, lambda: isinstance(app.screen, FunnelScreen))
        funnel = app.screen
        assert isinstance(funnel, FunnelScreen)
        said = app.said  # type: ignore[attr-defined]
        sentence = (
            f"{cinematic} is on no node of the farm that answered (gpu-premium did not), "
            "so it was left out of the stack."
        )
        await until(pilot, lambda: sentence in said)
        assert chip_texts(funnel) == [f"LoRA: {DETAIL} 0.5 · Drafts only"]
        funnel.query_one("#prompt", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: funnel_done(funnel))  # the drafts run on the nodes still up
        made = funnel.funnel.current if funnel.funnel else None
        assert made is not None and "gpu-premium" not in {c.node_id for c in made.cells}


async def test_carry_from_the_gallery_into_a_keyframe_video_starts_from_the_picture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imgen_tui.ui.screens.keyframes import KeyframesScreen
    from imgen_tui.ui.screens.sessions import SessionsScreen

    await one_pick(tmp_path)
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        gallery = await carry_from_gallery(pilot, 3)
        original = gallery.grid.cells[0].image
        assert original is not None
        await until(pilot, lambda: isinstance(app.screen, KeyframesScreen))
        video = app.screen
        assert isinstance(video, KeyframesScreen)
        await until(pilot, lambda: video.session is not None and video.flow.keyframes[:1] != [])
        await until(pilot, lambda: video.flow.keyframes[0].locked)
        still = video.flow.keyframes[0].still
        assert still is not None and still.id != original.id  # a copy in the video's session
        assert still.path.read_bytes() == original.path.read_bytes()
        assert video.query_one("#scene", Input).value == PROMPT
        assert video.flow.keyframes[0].description == PROMPT
        assert video.session is not None and video.session.session_id is not None
        assert any(p.kind == "subject" for p in video.session.references.pins)
        await pilot.press("escape", "q")  # nothing runs: back to the gallery, the pick untouched
        await until(pilot, lambda: app.screen is gallery)
        assert len(gallery.grid.cells) == 1 and gallery.grid.cells[0].image == original
        assert not isinstance(app.screen, SessionsScreen)
