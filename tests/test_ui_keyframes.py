"""The keyframe video screen driven by keys through Pilot, on the demo farm over loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Static

from imgen_tui.flows.keyframes import KeyframeFlow
from imgen_tui.scheduler.jobs import JobState
from imgen_tui.ui.app import ImgenApp, make_app
from imgen_tui.ui.screens.home import HomeScreen
from imgen_tui.ui.screens.keyframes import KeyframesScreen
from imgen_tui.ui.screens.lightbox import LightboxScreen
from imgen_tui.ui.screens.modals import ConfirmScreen
from imgen_tui.ui.screens.sessions import SessionsScreen
from imgen_tui.ui.widgets.reference_chips import ReferenceChip
from imgen_tui.ui.widgets.round_view import RoundView
from imgen_tui.ui.widgets.timeline import Timeline
from tests.pilot_helpers import until

SIZE = (160, 48)


def demo_app(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> ImgenApp:
    app = make_app(None, demo=True, data_dir=data_dir, graphics="halfcell", demo_speed=0.01)
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


def flow_of(screen: KeyframesScreen) -> KeyframeFlow:
    assert screen.session is not None
    return screen.session.flow


async def open_keyframes(pilot: Pilot[Any], export_to: Path) -> KeyframesScreen:
    """From Home, as a user would: the Keyframe video entry."""
    await until(pilot, lambda: isinstance(pilot.app.screen, HomeScreen))
    flows = pilot.app.screen.query_one("#flows", OptionList)
    flows.focus()
    flows.highlighted = flows.get_option_index("flow:keyframes")
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, KeyframesScreen))
    screen = pilot.app.screen
    assert isinstance(screen, KeyframesScreen)
    await until(pilot, lambda: screen.session is not None)
    screen.export_to = export_to
    for field in screen.query(Input):
        field.cursor_blink = False
    return screen


async def type_into(pilot: Pilot[Any], screen: KeyframesScreen, selector: str, text: str) -> None:
    field = screen.query_one(selector, Input)
    field.focus()
    field.value = text
    await pilot.press("enter")


async def test_three_keyframes_refine_lock_preview_render_play_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path / "data", monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_keyframes(pilot, tmp_path / "export")
        flow = flow_of(screen)
        await type_into(pilot, screen, "#scene", "a red fox in a snowy forest")
        for text in ("asleep in the snow", "waking up", "running through the trees"):
            await type_into(pilot, screen, "#keyframe", text)
        assert [(s.frame, s.description) for s in flow.keyframes] == [
            (0, "asleep in the snow"),
            (8, "waking up"),
            (12, "running through the trees"),
        ]
        timeline = screen.query_one(Timeline)
        assert len(timeline.entries) == 3 and timeline.selected == 2
        screen.query_one(RoundView).grid.focus()
        await pilot.press("comma")  # back to the second keyframe
        assert flow.selected == 1
        await pilot.press("n")  # a round of stills of it
        current = flow.history.current
        assert current is not None and current.meta["keyframe"] == flow.keyframes[1].key
        await until(pilot, lambda: current.done == len(current.cells), seconds=60)
        await pilot.press("right", "L")  # the second still is how "waking up" looks
        await until(pilot, lambda: flow.keyframes[1].locked)
        assert flow.keyframes[1].still == current.cells[1].image
        assert current.cells[1].verdict == "picked"
        await pilot.pause()
        assert timeline.entries[1].thumb == current.cells[1].image.thumb_path  # type: ignore[union-attr]
        # the first still locked is the subject of everything made after it
        assert screen.session is not None
        subject = screen.session.references.pins
        assert [(p.kind, p.image_id) for p in subject] == [("subject", current.cells[1].image.id)]  # type: ignore[union-attr]
        assert any("its subject is kept for the other keyframes" in m for m in said(app))
        assert len(screen.query(ReferenceChip)) == 1
        await pilot.press("comma", "n")  # stills of the first keyframe: with the subject
        stills = flow.history.current
        assert stills is not None and stills.meta["keyframe"] == flow.keyframes[0].key
        assert app.engine.scheduler is not None
        still_graph = app.engine.scheduler.jobs[stills.cells[0].job_id].spec.graph
        assert any(n["class_type"] == "IPAdapterAdvanced" for n in still_graph.values())
        await until(pilot, lambda: stills.done == len(stills.cells), seconds=60)

        await pilot.press("v")
        await until(pilot, lambda: len(flow.renders()) == 1)
        preview = flow.renders()[0]
        await until(pilot, lambda: preview.done == 1, seconds=90)
        await pilot.press("V")
        await until(pilot, lambda: len(flow.renders()) == 2)
        full = flow.renders()[1]
        await until(pilot, lambda: full.done == 1, seconds=120)
        assert full.cells[0].image is not None and full.cells[0].image.node_id == "gpu-premium"
        assert any("built for gpu-standard" in text for text in said(app))  # preview: fast tier
        scheduler = app.engine.scheduler
        assert scheduler is not None
        for render in (preview, full):
            graph = scheduler.jobs[render.cells[0].job_id].spec.graph
            adapters = [
                n["inputs"] for n in graph.values() if n["class_type"] == "IPAdapterAdvanced"
            ]
            assert [a["weight_type"] for a in adapters] == ["linear"]  # the subject steers the clip

        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, LightboxScreen))
        lightbox = app.screen
        assert isinstance(lightbox, LightboxScreen)
        await until(pilot, lambda: lightbox.playback is not None, seconds=30)
        playback = lightbox.playback
        assert playback is not None and len(playback.frames) == 31 and playback.fps == 16.0
        await until(pilot, lambda: playback.shown >= 5)  # it plays, looping
        await pilot.press("s")  # pause
        paused_at = playback.index
        await pilot.pause(0.3)
        assert playback.index == paused_at
        await pilot.press("full_stop")
        assert playback.index == (paused_at + 1) % 31
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)

        await pilot.press("e")
        await until(pilot, lambda: any(text.startswith("Exported") for text in said(app)))
    exported = sorted(path.name for path in (tmp_path / "export").iterdir())
    assert exported == [
        "keyframe-02-frame-008-waking-up.json",
        "keyframe-02-frame-008-waking-up.png",
        "video.json",
        "video.webp",
    ]


async def test_bad_timeline_keys_say_what_to_do_and_lose_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path / "data", monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_keyframes(pilot, tmp_path / "export")
        flow = flow_of(screen)
        screen.query_one(RoundView).grid.focus()
        await pilot.press("n", "v", "e")
        assert "Add a keyframe first: type it and press enter." in said(app)
        assert "the timeline is empty: add a keyframe first" in said(app)
        await pilot.press("A")  # from the grid: 'a' would mark A/B there
        assert app.focused is screen.query_one("#keyframe", Input)
        await type_into(pilot, screen, "#keyframe", "asleep")
        await type_into(pilot, screen, "#keyframe", "running")
        screen.query_one(RoundView).grid.focus()
        await pilot.press("greater_than_sign", "greater_than_sign", "ctrl+left")
        assert [(s.frame, s.description) for s in flow.keyframes] == [
            (0, "running"),
            (10, "asleep"),
        ]
        await pilot.press("ctrl+down")  # 16 -> 8 frames would drop the keyframe at 10
        assert flow.length == 16
        assert any("move or remove it before shortening" in text for text in said(app))
        await pilot.press("f")
        assert flow.fps == 12.0
        await pilot.press("delete")
        assert [s.description for s in flow.keyframes] == ["asleep"]


async def reopen_from_home(pilot: Pilot[Any], session_id: str) -> KeyframesScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, HomeScreen))
    sessions = pilot.app.screen.query_one("#sessions", OptionList)
    await until(pilot, lambda: sessions.get_option_index(f"session:{session_id}") >= 0)
    sessions.focus()
    sessions.highlighted = sessions.get_option_index(f"session:{session_id}")
    await pilot.press("enter")
    return await reopened_screen(pilot)


async def reopened_screen(pilot: Pilot[Any]) -> KeyframesScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, KeyframesScreen))
    screen = pilot.app.screen
    assert isinstance(screen, KeyframesScreen)
    await until(pilot, lambda: screen.session is not None and bool(flow_of(screen).keyframes))
    for field in screen.query(Input):
        field.cursor_blink = False
    return screen


async def test_a_keyframe_session_reopens_from_home_and_the_sessions_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path / "data", monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_keyframes(pilot, tmp_path / "export")
        flow = flow_of(screen)
        await type_into(pilot, screen, "#scene", "a red fox in a snowy forest")
        for text in ("asleep in the snow", "waking up", "running through the trees"):
            await type_into(pilot, screen, "#keyframe", text)
        screen.query_one(RoundView).grid.focus()
        await pilot.press("comma", "n")  # stills of "waking up"
        stills = flow.history.current
        assert stills is not None
        await until(pilot, lambda: stills.done == len(stills.cells), seconds=60)
        await pilot.press("right", "L")
        await until(pilot, lambda: flow.keyframes[1].locked)
        await pilot.press("ctrl+up", "f")  # 24 frames at 12 fps, after the first round: saved
        assert screen.session is not None
        session_id = screen.session.session_id
        assert session_id is not None
        await pilot.press("q")  # nothing runs: it leaves at once

        screen = await reopen_from_home(pilot, session_id)
        flow = flow_of(screen)
        assert screen.resume_id == session_id
        assert screen.query_one("#scene", Input).value == "a red fox in a snowy forest"
        assert [(s.frame, s.description) for s in flow.keyframes] == [
            (0, "asleep in the snow"),
            (8, "waking up"),
            (12, "running through the trees"),
        ]
        assert (flow.length, flow.fps) == (24, 12.0)
        timeline = screen.query_one(Timeline)
        await until(pilot, lambda: len(timeline.entries) == 3)
        locked = flow.keyframes[1].still
        assert locked is not None and locked.id == stills.cells[1].image.id  # type: ignore[union-attr]
        assert timeline.entries[1].thumb == locked.thumb_path
        assert len(screen.query(ReferenceChip)) == 1  # the subject pin came back
        current = flow.history.current
        assert current is not None and [c.verdict for c in current.cells][:2] == ["none", "picked"]

        # render from the reopened session; then a full render left (and cancelled) on the way out
        await pilot.press("v")
        await until(pilot, lambda: len(flow.renders()) == 1)
        preview = flow.renders()[0]
        await until(pilot, lambda: preview.done == 1, seconds=90)
        assert preview.cells[0].image is not None and preview.meta["start"] == "keyframes"
        assert any("from the locked stills (denoise 0.75)" in m for m in said(app))
        assert app.engine.sim_farm is not None
        app.engine.sim_farm.node("gpu-premium").faults.hang = 1  # the full render keeps running
        await pilot.press("V")
        await until(pilot, lambda: len(flow.renders()) == 2)
        full = flow.renders()[1]
        await until(pilot, lambda: full.cells[0].state == "running", seconds=60)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        scheduler = app.engine.scheduler
        assert scheduler is not None
        await until(pilot, lambda: scheduler.jobs[full.cells[0].job_id].state == JobState.CANCELLED)

        # the sessions list opens it too: both renders back, the cancelled one says so
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        sessions = app.screen
        assert isinstance(sessions, SessionsScreen)
        await until(pilot, lambda: session_id in sessions.query_one(DataTable).rows)
        table = sessions.query_one(DataTable)
        table.move_cursor(row=table.get_row_index(session_id))
        await pilot.press("enter")
        screen = await reopened_screen(pilot)
        flow = flow_of(screen)
        renders = flow.renders()
        assert [(r.meta["render"], r.cells[0].state) for r in renders] == [
            ("preview", "done"),
            ("full", "cancelled"),
        ]
        assert "Full render: cancelled" in str(screen.query_one("#renders", Static).render())
        await pilot.press("w")  # the preview plays: the newest video that finished
        await until(pilot, lambda: isinstance(app.screen, LightboxScreen))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)

        # a still damaged on disk: one sentence, nothing made, nothing lost
        locked.path.write_bytes(b"not a picture")
        await pilot.press("v")
        await until(
            pilot, lambda: any("cannot be read (it is not a picture)" in m for m in said(app))
        )
        assert len(flow.renders()) == 2 and flow.keyframes[1].still is not None


async def test_a_picture_file_is_a_keyframes_look_and_comes_back_after_reopening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from imgen_tui.ui.screens.modals import AskLineScreen

    picture = tmp_path / "pose.png"
    Image.new("RGB", (320, 240), (200, 60, 30)).save(picture)
    not_a_picture = tmp_path / "notes.png"
    not_a_picture.write_text("a shopping list, not a picture")
    app = demo_app(tmp_path / "data", monkeypatch)

    async def answer(screen: KeyframesScreen, typed: str | None) -> None:
        await pilot.press("I")
        await until(pilot, lambda: isinstance(app.screen, AskLineScreen))
        if typed is None:
            await pilot.press("escape")
        else:
            app.screen.query_one(Input).value = typed
            await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen)

    async with app.run_test(size=SIZE) as pilot:
        screen = await open_keyframes(pilot, tmp_path / "export")
        flow = flow_of(screen)
        screen.query_one(RoundView).grid.focus()
        await pilot.press("I")  # no keyframe yet: says what to do first
        assert "Add a keyframe first: type it and press enter." in said(app)
        await type_into(pilot, screen, "#scene", "a red fox in a snowy forest")
        for text in ("asleep in the snow", "waking up"):
            await type_into(pilot, screen, "#keyframe", text)
        screen.query_one(RoundView).grid.focus()
        await answer(screen, None)  # escape: nothing happens
        assert not flow.keyframes[1].locked
        await answer(screen, str(not_a_picture))
        await until(pilot, lambda: any("notes.png cannot be used" in m for m in said(app)))
        await answer(screen, str(tmp_path / "gone.png"))
        await until(pilot, lambda: any("gone.png cannot be used" in m for m in said(app)))
        assert not flow.keyframes[1].locked  # nothing changed by the two bad ones
        await answer(screen, str(picture))
        await until(pilot, lambda: flow.keyframes[1].locked)
        still = flow.keyframes[1].still
        assert still is not None and (still.width, still.height) == (320, 240)
        assert screen.session is not None and screen.session.session_id is not None
        session_id = screen.session.session_id
        assert still.path.is_file() and session_id in str(still.path)  # copied in, not linked
        assert any("Keyframe 2 uses pose.png; its subject is kept" in m for m in said(app))
        timeline = screen.query_one(Timeline)
        await until(pilot, lambda: timeline.entries[1].thumb == still.thumb_path)
        assert len(screen.query(ReferenceChip)) == 1
        picture.unlink()  # the original may go: the session has its copy
        await pilot.press("v")  # the render starts from it
        await until(pilot, lambda: len(flow.renders()) == 1)
        render = flow.renders()[0]
        await until(pilot, lambda: render.done == 1, seconds=90)
        assert render.meta["start"] == "keyframes"
        await pilot.press("q")

        screen = await reopen_from_home(pilot, session_id)
        flow = flow_of(screen)
        back = flow.keyframes[1].still
        assert back is not None and back.id == still.id
        assert not flow.keyframes[0].locked
        assert [r.recipe.name for r in flow.history.made if r.recipe.name == "imported"] == []
