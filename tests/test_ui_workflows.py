"""The workflow browser and a workflow's form, driven through Pilot on the demo farm over loopback.

The demo farm is uneven on purpose: gpu-draft lacks the SDXL checkpoint, only
gpu-premium has the flux checkpoint and the IPAdapter classes, so cards show
Ready on some nodes and Missing N (with which file or class) on others.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Button, Input, Select, Static, TextArea

from imgen_tui.flows.workflow_catalog import WorkflowCard
from imgen_tui.graphs.typed_params import TypedParameter
from imgen_tui.locations import bundled_dir
from imgen_tui.ui.app import ImgenApp, make_app
from imgen_tui.ui.screens.home import HomeScreen
from imgen_tui.ui.screens.workflow_run import WorkflowRunScreen
from imgen_tui.ui.screens.workflows import WorkflowsScreen
from imgen_tui.ui.widgets.param_form import field_id
from tests.pilot_helpers import until

SIZE = (160, 60)

#: an API-format graph using a custom node class only gpu-premium has
IPADAPTER_GRAPH = {
    "1": {
        "class_type": "CheckpointLoaderSimple",
        "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"},
    },
    "2": {"class_type": "LoadImage", "inputs": {"image": "face.png"}},
    "3": {
        "class_type": "IPAdapterAdvanced",
        "inputs": {"model": ["1", 0], "ipadapter": ["1", 0], "image": ["2", 0], "weight": 0.8},
    },
    "4": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "ip"}},
}


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Own user folders: a UI-format file and an IPAdapter graph in the user's workflows."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "userdata"))
    folder = tmp_path / "config" / "imgen-tui" / "workflows"
    folder.mkdir(parents=True)
    shutil.copy(bundled_dir("workflows") / "sd15_lora_editor.json", folder / "my_fox_ui.json")
    (folder / "ipadapter_face.json").write_text(json.dumps(IPADAPTER_GRAPH))
    return tmp_path


def demo_app(data_dir: Path, monkeypatch: pytest.MonkeyPatch, speed: float = 0.01) -> ImgenApp:
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
    found = getattr(app, "said", [])
    assert isinstance(found, list)
    return found


async def open_browser(pilot: Pilot[Any]) -> WorkflowsScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, HomeScreen))
    await pilot.press("w")
    await until(pilot, lambda: isinstance(pilot.app.screen, WorkflowsScreen))
    screen = pilot.app.screen
    assert isinstance(screen, WorkflowsScreen)
    await until(pilot, lambda: screen.loaded)
    return screen


def card(screen: WorkflowsScreen, name: str) -> WorkflowCard:
    return next(c for c in screen.cards if c.name == name)


def statuses(screen: WorkflowsScreen, name: str) -> dict[str, str]:
    return {s.node_id: f"{s.label()} {s.detail()}".strip() for s in card(screen, name).statuses}


async def open_card(pilot: Pilot[Any], browser: WorkflowsScreen, name: str) -> WorkflowRunScreen:
    """Search for it, then enter on the first card."""
    browser.query_one("#search", Input).value = name
    await until(pilot, lambda: [c.name for c in browser.shown][:1] == [name])
    browser.action_focus_cards()
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, WorkflowRunScreen))
    screen = pilot.app.screen
    assert isinstance(screen, WorkflowRunScreen)
    await until(pilot, lambda: bool(screen.query("ParamForm")))
    return screen


def parameter(screen: WorkflowRunScreen, role: str) -> TypedParameter:
    return next(p for p in screen.parameters if p.role == role)


def editor(screen: WorkflowRunScreen, role: str) -> Any:
    return screen.query_one(f"#{field_id(parameter(screen, role))}")


def plan_line(screen: WorkflowRunScreen) -> str:
    return str(screen.query_one("#plan", Static).render())


def graphs_of(app: ImgenApp, screen: WorkflowRunScreen) -> list[dict[str, Any]]:
    """The graph each cell's job was sent with."""
    scheduler = app.engine.scheduler
    assert scheduler is not None and screen.session is not None
    current = screen.session.current
    assert current is not None
    return [scheduler.jobs[cell.job_id].spec.graph for cell in current.cells]


def cells_done(screen: WorkflowRunScreen, count: int) -> bool:
    current = screen.session.current if screen.session else None
    return current is not None and len(current.cells) == count and current.done == count


async def test_the_browser_lists_every_workflow_with_ready_and_missing_per_node(
    homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(homes / "data", monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        names = {c.name for c in browser.cards}
        assert {
            "sd15_txt2img",
            "sdxl_txt2img",
            "upscale_esrgan",
            "my_fox_ui",
            "ipadapter_face",
        } <= names
        assert card(browser, "my_fox_ui").category == "user"
        assert card(browser, "my_fox_ui").format == "ui"
        # a node lacking a model: the SDXL checkpoint is not on gpu-draft
        sdxl = statuses(browser, "sdxl_txt2img")
        assert sdxl["gpu-premium"] == "Ready"
        assert sdxl["gpu-draft"] == "Missing 1 checkpoints/sd_xl_base_1.0.safetensors"
        # a node lacking classes: the demo laptop's older ComfyUI has no Flux nodes
        flux = statuses(browser, "flux_txt2img")
        assert flux["gpu-premium"] == "Ready"
        assert flux["gpu-quality"] == "Missing 1 checkpoints/flux1-dev-fp8.safetensors"
        assert flux["gpu-draft"] == (
            "Missing 3 class EmptySD3LatentImage, class FluxGuidance, "
            "checkpoints/flux1-dev-fp8.safetensors"
        )
        # nodes lacking a class: only gpu-premium has the IPAdapter pack
        face = statuses(browser, "ipadapter_face")
        assert face["gpu-premium"] == "Ready"
        assert face["gpu-quality"] == "Missing 1 class IPAdapterAdvanced"
        # the card says what it takes and gives, the model sizes and a time
        text = str(browser.query_one("#cards").get_option_at_index(0).prompt)  # type: ignore[attr-defined]
        assert "Input:" in text and "Output:" in text
        sd15 = next(
            str(o.prompt)
            for o in browser.query_one("#cards").options  # type: ignore[attr-defined]
            if o.id == card(browser, "sd15_txt2img").key
        )
        assert "v1-5-pruned-emaonly.safetensors (" in sd15 and " GB)" in sd15
        assert "~" in sd15 and " s" in sd15

        # search as you type
        await pilot.press("slash", *"sdxl")
        await until(
            pilot, lambda: {c.name for c in browser.shown} == {"sdxl_txt2img", "sdxl_img2img"}
        )
        browser.query_one("#search", Input).value = ""
        # the intent bar, by pattern matching
        await pilot.press("escape", "i", *"upscale")
        await until(pilot, lambda: [c.name for c in browser.shown] == ["upscale_esrgan"])
        assert "I want to… upscale: 1 workflow" in str(
            browser.query_one("#intent-line", Static).render()
        )
        browser.query_one("#intent", Input).value = "text to image"
        await until(pilot, lambda: "sd15_txt2img" in {c.name for c in browser.shown})
        assert all(c.task == "txt2img" for c in browser.shown)
        assert "upscale_esrgan" not in {c.name for c in browser.shown}


async def test_the_form_refuses_bad_values_remembers_and_runs_variations(
    homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(homes / "data", monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        screen = await open_card(pilot, browser, "sd15_txt2img")
        # important parameters first, the rest folded away
        roles = [p.role for p in screen.parameters]
        assert roles[0] == "prompt" and None in roles
        assert screen.query_one("#more").collapsed  # type: ignore[attr-defined]
        # a combo is a Select of the node's choices
        sampler = editor(screen, "sampler")
        assert isinstance(sampler, Select)
        assert "dpmpp_2m" in parameter(screen, "sampler").options
        sampler.focus()
        await pilot.press("enter", *"dpmpp_2m", "enter")  # open, type to find, choose
        await until(pilot, lambda: sampler.value == "dpmpp_2m")
        # an int with bounds refuses an out-of-range value and keeps the last good one
        steps = editor(screen, "steps")
        assert isinstance(steps, Input)
        steps.focus()
        steps.value = "12"
        await pilot.press("enter")
        steps.value = "100000"
        await pilot.press("enter")
        await until(pilot, lambda: any("steps of node" in m and "at most" in m for m in said(app)))
        assert steps.value == "12"
        assert sampler.value == "dpmpp_2m"  # nothing else lost
        # a seed mode, a count: the plan line says how many jobs and how long first
        seed = editor(screen, "seed")
        seed.value = "1000"
        screen.query_one("#seed-mode", Select).value = "increment"
        screen.query_one("#count", Input).value = "3"
        editor(screen, "prompt").text = "a lighthouse at dusk"
        await until(pilot, lambda: plan_line(screen).startswith("3 jobs, about"))
        await pilot.press("ctrl+r")
        await until(pilot, lambda: cells_done(screen, 3))
        assert screen.session is not None and screen.session.current is not None
        cells = screen.session.current.cells
        assert [c.seed for c in cells] == [1000, 1001, 1002]
        assert all(c.image is not None and c.image.path.is_file() for c in cells)
        jobs = graphs_of(app, screen)
        samplers = [
            n["inputs"]["sampler_name"]
            for g in jobs
            for n in g.values()
            if n["class_type"] == "KSampler"
        ]
        assert samplers == ["dpmpp_2m"] * 3
        # judging works as everywhere
        await pilot.press("space")
        assert cells[0].verdict == "picked"
        # again: new seeds for the rest, the pick kept; z brings the first round back
        first = screen.session.current
        await pilot.press("g")
        await until(
            pilot, lambda: screen.session is not None and screen.session.current is not first
        )
        await until(pilot, lambda: cells_done(screen, 4))
        again_cells = screen.session.current.cells
        assert again_cells[0].image == cells[0].image and again_cells[0].verdict == "picked"
        assert {c.seed for c in again_cells[1:]}.isdisjoint({1001, 1002})
        await pilot.press("z")
        await until(pilot, lambda: screen.session is not None and screen.session.current is first)
        # a bad count is refused with a sentence, and nothing runs
        screen.query_one("#count", Input).value = "0"
        await pilot.press("ctrl+r")
        await until(pilot, lambda: any("count is at least 1" in m for m in said(app)))
        assert len(screen.session.history.rounds) == 1
        await until(
            pilot, lambda: (homes / "userdata" / "imgen-tui" / "workflow_values.json").is_file()
        )

    # reopening the app: the form comes back with the values last run
    again = demo_app(homes / "data", monkeypatch)
    async with again.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        screen = await open_card(pilot, browser, "sd15_txt2img")
        assert editor(screen, "steps").value == "12"
        assert editor(screen, "sampler").value == "dpmpp_2m"
        assert editor(screen, "seed").value == "1000"
        assert editor(screen, "prompt").text == "a lighthouse at dusk"
        assert screen.query_one("#seed-mode", Select).value == "increment"
        assert screen.query_one("#count", Input).value == "3"
        # o on the card reopens its last run as it was left: the round looked at, the pick
        await pilot.press("ctrl+b")
        await until(pilot, lambda: pilot.app.screen is browser)
        browser.action_focus_cards()
        await pilot.press("o")
        await until(pilot, lambda: isinstance(pilot.app.screen, WorkflowRunScreen))
        reopened = pilot.app.screen
        assert isinstance(reopened, WorkflowRunScreen) and reopened is not screen
        await until(
            pilot, lambda: reopened.session is not None and reopened.session.current is not None
        )
        assert reopened.session is not None and reopened.session.current is not None
        cells = reopened.session.current.cells
        assert [c.seed for c in cells] == [1000, 1001, 1002]
        assert [c.verdict for c in cells] == ["picked", "none", "none"]
        assert all(c.state == "done" and c.image is not None for c in cells)
        assert len(reopened.session.history.made) == 2  # the round "again" made is kept too
        await pilot.press("x")  # judging goes on where it was left
        assert cells[0].verdict == "rejected"


async def test_sweeps_a_ui_file_from_the_user_folder_and_a_node_dying(
    homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(homes / "data", monkeypatch, speed=0.2)
    async with app.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        screen = await open_card(pilot, browser, "my_fox_ui")
        screen.query_one("#count", Input).value = "2"
        screen.query_one("#seed-mode", Select).value = "random"
        screen.query_one("#sweeps", TextArea).text = "steps = 4, 6\ncfg = 5, 7"
        await until(pilot, lambda: plan_line(screen).startswith("8 jobs, about"))
        screen.query_one("#sweep-mode", Select).value = "zip"
        await until(pilot, lambda: plan_line(screen).startswith("4 jobs, about"))
        await pilot.press("ctrl+r")
        assert screen.session is not None and screen.session.current is not None
        cells = screen.session.current.cells
        await until(pilot, lambda: any(c.state == "running" and c.node_id for c in cells))
        victim = next(c for c in cells if c.state == "running" and c.node_id)
        dead = victim.node_id
        assert app.engine.sim_farm is not None and dead is not None
        await app.engine.sim_farm.node(dead).kill()  # the node running it dies mid-job
        await until(pilot, lambda: cells_done(screen, 4), seconds=60)
        assert victim.node_id != dead and victim.image is not None  # made again elsewhere
        graphs = graphs_of(app, screen)
        pairs = sorted(
            (n["inputs"]["steps"], n["inputs"]["cfg"])
            for g in graphs
            for n in g.values()
            if n["class_type"] == "KSampler"
        )
        assert pairs == [(4, 5), (4, 5), (6, 7), (6, 7)]


async def test_a_csv_set_previews_its_first_prompts_and_becomes_the_prompt_lines(
    homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = homes / "cards.csv"
    csv.write_text("suit,rank\nhearts,queen\nspades,ace\nclubs,two\n", encoding="utf-8")
    app = demo_app(homes / "data", monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        screen = await open_card(pilot, browser, "sd15_txt2img")
        screen.query_one("#csv-file", Input).value = str(csv)
        screen.query_one("#csv-template", Input).value = "the {rank} of {suit}"
        preview = screen.query_one("#csv-preview", Static)
        await until(pilot, lambda: "3 prompts:" in str(preview.render()))
        assert "1. the queen of hearts" in str(preview.render())
        screen.query_one("#csv-template", Input).value = "the {colour} card"
        await until(pilot, lambda: "has no column 'colour'" in str(preview.render()))
        screen.query_one("#csv-template", Input).value = "the {rank} of {suit}"
        await until(pilot, lambda: "3 prompts:" in str(preview.render()))
        screen.query_one("#csv-use", Button).press()
        await until(pilot, lambda: screen.query_one("#prompts", TextArea).text.count("\n") == 2)
        await until(pilot, lambda: plan_line(screen).startswith("3 jobs, about"))
        await pilot.press("ctrl+r")
        await until(pilot, lambda: cells_done(screen, 3))
        assert screen.session is not None and screen.session.current is not None
        prompts = [
            n["inputs"]["text"]
            for g in graphs_of(app, screen)
            for n in g.values()
            if n["class_type"] == "CLIPTextEncode"
        ]
        assert "the ace of spades" in prompts


async def test_from_the_palette_with_a_node_down_an_unknown_class_and_an_img2img_run(
    homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = homes / "config" / "imgen-tui" / "workflows"
    unknown = dict(IPADAPTER_GRAPH)
    unknown["3"] = {
        **IPADAPTER_GRAPH["3"],
        "class_type": "ReActorFaceSwap",
    }  # a pack the demo farm lacks
    (folder / "needs_a_pack.json").write_text(json.dumps(unknown))
    picture = homes / "start.png"
    Image.new("RGB", (64, 64), "teal").save(picture)
    app = demo_app(homes / "data", monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(pilot.app.screen, HomeScreen))
        assert app.engine.sim_farm is not None
        await app.engine.sim_farm.node("gpu-draft").kill()
        # the command palette knows the browser
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette))
        await pilot.press(*"Workflows")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, WorkflowsScreen))
        browser = pilot.app.screen
        assert isinstance(browser, WorkflowsScreen)
        await until(pilot, lambda: browser.loaded)
        # a node that does not answer is unreachable, not "Missing everything"
        assert statuses(browser, "sd15_txt2img")["gpu-draft"].startswith("unreachable")
        assert statuses(browser, "sd15_txt2img")["gpu-quality"] == "Ready"
        assert any("gpu-draft did not answer" in m for m in said(app))
        # a class no node has: the card says so and opening it says what to do
        assert card(browser, "needs_a_pack").missing_classes == ("ReActorFaceSwap",)
        browser.query_one("#search", Input).value = "needs_a_pack"
        await until(pilot, lambda: [c.name for c in browser.shown] == ["needs_a_pack"])
        browser.action_focus_cards()
        await pilot.press("enter")
        await until(
            pilot,
            lambda: any("'ReActorFaceSwap', which no node has" in m for m in said(app)),
        )
        assert isinstance(pilot.app.screen, WorkflowsScreen)  # still the browser
        # an image-to-image workflow starts from a picture on this machine
        screen = await open_card(pilot, browser, "sd15_img2img")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: any("starts from a picture" in m for m in said(app)))
        editor(screen, "image").value = str(picture)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: cells_done(screen, 1))
        scheduler = app.engine.scheduler
        assert scheduler is not None and screen.session is not None and screen.session.current
        job = scheduler.jobs[screen.session.current.cells[0].job_id]
        assert job.spec.source_image == str(picture)
        assert job.node_id != "gpu-draft"
        # back to the browser, then Home
        await pilot.press("ctrl+b")
        await until(pilot, lambda: pilot.app.screen is browser)
