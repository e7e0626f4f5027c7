"""The LoRA explorer screen by keys through Pilot, on the demo farm over loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from imgen_tui.flows.explorer import BASELINE, ExplorerError
from imgen_tui.flows.explorer_session import ExplorerSession
from imgen_tui.flows.rounds import Round
from imgen_tui.graphs.graph import iter_nodes
from imgen_tui.ui.app import ImgenApp, make_app
from imgen_tui.ui.screens.explorer import ExplorerScreen
from imgen_tui.ui.screens.explorer_modals import FeedbackScreen, LoraCompareScreen
from imgen_tui.ui.screens.home import HomeScreen
from imgen_tui.ui.widgets.lora_browser import LoraBrowser
from imgen_tui.ui.widgets.round_view import RoundView
from tests.pilot_helpers import until

SIZE = (180, 50)
DETAIL, GRAIN = "detail-tweaker.safetensors", "film-grain.safetensors"


def demo_app(data_dir: Path, monkeypatch: pytest.MonkeyPatch, speed: float = 0.01) -> ImgenApp:
    """The demo app, remembering every notification (toasts expire on a slow machine)."""
    app = make_app(None, demo=True, data_dir=data_dir, graphics="halfcell", demo_speed=speed)
    said: list[str] = []
    original = app.notify

    def notify(message: str, **options: Any) -> None:
        said.append(str(message))
        original(message, **options)

    monkeypatch.setattr(app, "notify", notify)
    monkeypatch.setattr(app, "said", said, raising=False)
    return app


def said(app: ImgenApp) -> list[str]:
    messages = getattr(app, "said", [])
    assert isinstance(messages, list)
    return messages


async def open_explorer(pilot: Pilot[Any], resume: str | None = None) -> ExplorerScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, HomeScreen))
    if resume is None:
        await pilot.press("e")
        await until(pilot, lambda: isinstance(pilot.app.screen, ExplorerScreen))
        opened = pilot.app.screen
        assert isinstance(opened, ExplorerScreen)
        screen = opened
    else:
        screen = ExplorerScreen(resume)
        await pilot.app.push_screen(screen)
    await until(pilot, lambda: screen.catalog_ready)
    for field in screen.query(Input):
        field.cursor_blink = False
    return screen


def session_of(screen: ExplorerScreen) -> ExplorerSession:
    assert screen.session is not None
    return screen.session


def current(screen: ExplorerScreen) -> Round:
    made = session_of(screen).current
    assert made is not None
    return made


def round_done(screen: ExplorerScreen) -> bool:
    made = session_of(screen).current
    return made is not None and made.done == len(made.cells) > 0


async def highlight(pilot: Pilot[Any], screen: ExplorerScreen, name: str) -> None:
    """Put the browser's cursor on `name` by typing a search for it, as a person would."""
    await pilot.press("slash")
    search = screen.query_one("#lora-search", Input)
    search.value = name.split(".")[0]
    await pilot.press("enter")
    browser = screen.query_one(LoraBrowser)
    await until(pilot, lambda: browser.highlighted_name == name)


def labels(screen: ExplorerScreen) -> list[str]:
    return [cell.label for cell in current(screen).cells]


def lora_loaders(screen: ExplorerScreen, job_id: str) -> list[tuple[str, float]]:
    scheduler = pilot_app(screen).engine.scheduler
    assert scheduler is not None
    graph = scheduler.jobs[job_id].spec.graph
    return [
        (inputs["lora_name"], inputs["strength_model"])
        for _, kind, inputs in iter_nodes(graph)
        if kind == "LoraLoader"
    ]


def pilot_app(screen: ExplorerScreen) -> ImgenApp:
    app = screen.app
    assert isinstance(app, ImgenApp)
    return app


async def test_a_showcase_is_a_sweep_beside_the_baseline_on_the_same_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_explorer(pilot)
        browser = screen.query_one(LoraBrowser)
        assert len(browser.rows) == 6  # every LoRA of the demo farm, the FaceID ones too
        await highlight(pilot, screen, GRAIN)
        await pilot.press("s")
        await until(pilot, lambda: round_done(screen))
        cells = current(screen).cells
        assert labels(screen) == [BASELINE] * 2 + [
            f"film-grain {s}" for s in ("0.4", "0.7", "1") for _ in range(2)
        ]
        seeds = [c.seed for c in cells]
        assert seeds[:2] == [1234, 5678] and seeds == seeds[:2] * 4  # same seeds everywhere
        assert lora_loaders(screen, cells[0].job_id) == []  # the baseline has no LoRA
        assert lora_loaders(screen, cells[2].job_id) == [(GRAIN, 0.4)]
        # film-grain is only on premium and quality: nothing else ran its cells
        assert {c.node_id for c in cells[2:]} <= {"gpu-premium", "gpu-quality"}
        assert all(c.image is not None for c in cells)
        panel = str(screen.query_one("#explorer-settings").render())
        assert "not on gpu-standard: no film-grain" in panel
        captions = [str(c.render()) for c in screen.query_one(RoundView).grid.query(".caption")]
        assert captions[0].startswith(" 1 baseline") and "film-grain 0.4" in captions[2]


async def test_ab_grid_compare_overlay_and_flip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_explorer(pilot)
        await highlight(pilot, screen, DETAIL)
        await pilot.press("a")
        await highlight(pilot, screen, GRAIN)
        await pilot.press("left_square_bracket", "a")  # film-grain at 0.7 model strength
        assert screen.query_one(LoraBrowser).marks == {DETAIL: "A", GRAIN: "B"}
        await pilot.press("b")
        await until(pilot, lambda: round_done(screen))
        assert labels(screen) == [
            "A detail-tweaker 0.8",
            "A detail-tweaker 0.8",
            "B film-grain 0.7/0.8",
            "B film-grain 0.7/0.8",
            "A+B",
            "A+B",
            "neither",
            "neither",
        ]
        cells = current(screen).cells
        assert len({c.seed for c in cells}) == 2
        assert sorted(lora_loaders(screen, cells[4].job_id)) == [(DETAIL, 0.8), (GRAIN, 0.7)]
        assert lora_loaders(screen, cells[6].job_id) == []
        screen.query_one(RoundView).grid.focus()
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, LoraCompareScreen))
        compare = app.screen
        assert isinstance(compare, LoraCompareScreen)
        assert compare.labels == ["A detail-tweaker 0.8", "B film-grain 0.7/0.8"]
        first = compare.pair[0]
        await pilot.press("d")
        await until(pilot, lambda: compare.share is not None)
        assert compare.has_class("overlay") and 0 < (compare.share or 0) <= 1
        await pilot.press("f")  # A/B flip: the sides swap and the overlay follows
        assert compare.pair[1] is first and compare.labels[0].startswith("B ")
        await until(pilot, lambda: compare.share is not None)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)


async def test_refine_keeps_the_stack_and_trigger_words_then_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_explorer(pilot)
        await highlight(pilot, screen, DETAIL)
        await pilot.press("t")  # the trigger words into the prompt
        prompt = screen.query_one("#explorer-prompt", Input).value
        assert prompt.startswith("detailed, intricate details, sharp focus")
        await pilot.press("s")
        await until(pilot, lambda: round_done(screen))
        view = screen.query_one(RoundView)
        view.grid.focus()
        await pilot.press("right", "right", "right", "space")  # pick #4: detail 0.4, seed 2
        assert current(screen).cells[3].verdict == "picked"
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, FeedbackScreen))
        app.screen.query_one("#feedback-text", Input).value = "more fog"
        await pilot.press("enter")
        await until(pilot, lambda: current(screen).recipe.name == "refine")
        await until(pilot, lambda: round_done(screen))
        refined = current(screen)
        assert labels(screen) == ["detail-tweaker 0.4"] * 2 + [BASELINE] * 2
        assert "fog" in refined.prompt
        assert all(word in refined.prompt for word in ("detailed", "intricate details"))
        assert lora_loaders(screen, refined.cells[0].job_id) == [(DETAIL, 0.4)]
        session_id = session_of(screen).session_id
        assert session_id is not None
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))

        # reopen: the rounds, their labels, picks and the prompt come back
        home = app.screen
        options = home.query_one("#sessions", OptionList)
        await until(pilot, lambda: options.option_count > 0)
        assert options.get_option_at_index(0).id == f"session:{session_id}"
        reopened = await open_explorer(pilot, resume=session_id)
        history = session_of(reopened).history
        assert [r.recipe.name for r in history.rounds] == ["showcase", "refine"]
        assert labels(reopened) == ["detail-tweaker 0.4"] * 2 + [BASELINE] * 2
        assert history.rounds[0].cells[3].verdict == "picked"
        assert history.rounds[0].cells[0].label == BASELINE
        assert reopened.query_one("#explorer-prompt", Input).value == refined.prompt


async def test_a_node_dying_mid_sweep_and_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path, monkeypatch, speed=0.3)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_explorer(pilot)
        # an empty search says so, and s has nothing to sweep
        await pilot.press("slash")
        screen.query_one("#lora-search", Input).value = "no such lora"
        await pilot.press("enter", "s")
        browser = screen.query_one(LoraBrowser)
        assert browser.rows == [] and browser.highlighted_name is None
        empty = str(browser.query_one("#lora-list", OptionList).get_option_at_index(0).prompt)
        assert "no LoRA matches 'no such lora'" in empty
        assert "Put the cursor on a LoRA in the list (left) first." in said(app)
        assert session_of(screen).current is None
        await pilot.press("escape")  # clears the search
        await until(pilot, lambda: len(browser.rows) == 6)
        with pytest.raises(ExplorerError):
            session_of(screen).explorer.showcase("nope.safetensors")

        await highlight(pilot, screen, DETAIL)  # on every node
        await pilot.press("s")
        farm = app.engine.sim_farm
        assert farm is not None
        await until(pilot, lambda: any(c.state == "running" for c in current(screen).cells))
        victim = next(c.node_id for c in current(screen).cells if c.state == "running")
        await farm.node(str(victim)).kill()
        await until(pilot, lambda: round_done(screen), seconds=60)
        cells = current(screen).cells
        assert all(c.image is not None for c in cells)
        assert [c.label for c in cells][:2] == [BASELINE, BASELINE]


WATERCOLOR, CINEMATIC = "watercolor-style.safetensors", "cinematic-light.safetensors"


def preview_requests(screen: ExplorerScreen, name: str) -> int:
    """How often the simulated nodes were asked for `name`'s preview picture."""
    farm = pilot_app(screen).engine.sim_farm
    assert farm is not None
    return sum(node.preview_log.requests[name] for node in farm.nodes)


def preview_answered(screen: ExplorerScreen, name: str) -> bool:
    assert screen.previews is not None
    return screen.previews.asked(name)


async def test_the_preview_of_the_lora_under_the_cursor_is_fetched_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_explorer(pilot)
        widget = screen.query_one("#lora-preview")
        await highlight(pilot, screen, DETAIL)  # the simulator has a preview for it
        await until(pilot, lambda: screen.preview_shown == DETAIL)
        picture = getattr(widget, "image", None)
        assert widget.display and picture is not None and picture.size == (128, 128)
        await highlight(pilot, screen, GRAIN)  # none for film-grain: nothing shown, no error
        await until(pilot, lambda: preview_answered(screen, GRAIN))
        await pilot.pause(0.1)
        assert (screen.preview_shown, widget.display) == (None, False)
        for name in (DETAIL, GRAIN, DETAIL, GRAIN, DETAIL):  # back and forth
            await highlight(pilot, screen, name)
        await until(pilot, lambda: screen.preview_shown == DETAIL)
        assert getattr(widget, "image", None) is picture  # the same decoded picture, kept
        # the whole list with the cursor keys, down and back up
        await pilot.press("escape")
        for key in ["down"] * 6 + ["up"] * 6:
            await pilot.press(key)
        browser = screen.query_one(LoraBrowser)
        await until(
            pilot, lambda: all(preview_answered(screen, n) for n in [e.name for e in browser.rows])
        )
        for name in [e.name for e in browser.rows]:
            assert preview_requests(screen, name) == 1, name  # never refetched
        assert preview_requests(screen, WATERCOLOR) == 1
        assert not [text for text in said(app) if "preview" in text.lower()]


async def test_a_node_dying_while_its_preview_is_fetched_shows_nothing_and_breaks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_explorer(pilot)
        farm = pilot_app(screen).engine.sim_farm
        assert farm is not None
        premium = farm.node("gpu-premium")  # the first node that has watercolor-style
        premium.preview_log.cut = 1  # the connection goes with no answer
        await highlight(pilot, screen, WATERCOLOR)
        await until(pilot, lambda: preview_answered(screen, WATERCOLOR))
        assert preview_requests(screen, WATERCOLOR) == 1
        assert screen.preview_shown is None
        await premium.kill()  # now down for good: cinematic-light is only there
        await highlight(pilot, screen, CINEMATIC)
        await until(pilot, lambda: preview_answered(screen, CINEMATIC))
        await highlight(pilot, screen, DETAIL)  # the screen goes on working
        await until(pilot, lambda: preview_answered(screen, DETAIL))
        assert screen.preview_shown is None  # detail-tweaker's first node was premium too
        await pilot.press("ctrl+r")  # asks the nodes again, and the previews with them
        await until(pilot, lambda: any(" LoRAs on " in text for text in said(app)))
        await highlight(pilot, screen, GRAIN)
        await highlight(pilot, screen, DETAIL)  # now from gpu-quality, which is alive
        await until(pilot, lambda: screen.preview_shown == DETAIL)
        assert not [text for text in said(app) if "preview" in text.lower()]
