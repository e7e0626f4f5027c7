"""The chips' start/end keys, the pose map on its chip, and both after reopening (issue 17).

The demo farm in the real app: pose + face + style pinned, so every job goes
to gpu-premium, the one node with FaceID, which also has the aux pack (so the
pose is preprocessed and its map kept) and IP-Adapter (so the style says so).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from imgen_tui.ui.screens.concept import ConceptScreen
from imgen_tui.ui.screens.reference_map import ReferenceMapScreen
from imgen_tui.ui.widgets.reference_chips import ReferenceChip
from tests.pilot_helpers import until
from tests.test_references_controls import is_pose_map
from tests.test_references_ui import chip_texts, chips, first_round, next_round, stored_intent
from tests.test_ui_concept import SIZE, demo_app, messages, open_concept, session_of


def sent(app: Any, screen: ConceptScreen, class_type: str) -> list[dict[str, Any]]:
    """The inputs of `class_type` in what each job of the current round posted."""
    current = session_of(screen).current
    assert current is not None
    found = []
    for cell in current.cells:
        graph = app.engine.scheduler.jobs[cell.job_id].graph_sent
        found += [n["inputs"] for n in graph.values() if n["class_type"] == class_type]
    return found


def pose_chip(screen: ConceptScreen) -> ReferenceChip:
    return next(chip for chip in chips(screen) if chip.pin.kind == "pose")


async def test_start_end_keys_the_pose_map_chip_and_both_after_reopening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_concept(pilot)
        await first_round(pilot, screen)
        await pilot.press("P", "right", "F", "right", "S")
        await until(pilot, lambda: len(chips(screen)) == 3)
        assert chip_texts(screen)[0].startswith("pose 0.8 · 0-100% · ")

        pose_chip(screen).focus()
        await pilot.press("enter")  # no map before a job has preprocessed the pose
        assert "No map for this pose yet" in messages(app)[-1]
        await pilot.press("left_parenthesis")  # already at 0: stays, and says so
        await until(pilot, lambda: "at its limit" in messages(app)[-1])
        await pilot.press("right_parenthesis", "right_parenthesis", "9")
        await until(pilot, lambda: pose_chip(screen).pin.window() == "10-95%")
        assert "Pose acts over 10-95% of the steps from the next round" in messages(app)[-1]
        for _ in range(30):  # the end never passes the start
            await pilot.press("9")
        await until(pilot, lambda: pose_chip(screen).pin.window() == "10-15%")
        for _ in range(17):
            await pilot.press("0")
        await until(pilot, lambda: pose_chip(screen).pin.window() == "10-100%")
        await pilot.press("9")
        await until(pilot, lambda: pose_chip(screen).pin.window() == "10-95%")

        await next_round(pilot, screen)
        controls = sent(app, screen, "ControlNetApplyAdvanced")
        assert controls and {(c["start_percent"], c["end_percent"]) for c in controls} == {
            (0.1, 0.95)
        }
        styles = sent(app, screen, "IPAdapterAdvanced")
        assert styles and {(s["start_at"], s["end_at"]) for s in styles} == {(0.0, 1.0)}
        assert sent(app, screen, "DWPreprocessor")  # gpu-premium has the aux pack
        # the map came back with the pictures: the chip says so and enter shows it
        await until(pilot, lambda: pose_chip(screen).pin.map_path is not None)
        assert " · map · " in ReferenceChip.text_for(pose_chip(screen).pin)
        assert "via ipadapter" in ReferenceChip.text_for(chips(screen)[2].pin)
        map_file = Path(str(pose_chip(screen).pin.map_path))
        assert is_pose_map(map_file)
        pose_chip(screen).focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ReferenceMapScreen))
        shown = app.screen.query_one("#refmap-large")
        await until(pilot, lambda: getattr(shown, "image", None) is not None)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)

        intent = await stored_intent(screen)
        pose = next(r for r in intent.references if r.kind == "pose")
        assert (pose.start, pose.end, pose.map_path) == (0.1, 0.95, str(map_file))
        session_id = session_of(screen).session_id

    again = demo_app(tmp_path, monkeypatch)
    async with again.run_test(size=SIZE) as pilot:
        screen = await open_concept(pilot, resume=session_id)
        await until(pilot, lambda: len(chips(screen)) == 3)
        assert chip_texts(screen)[0].startswith("pose 0.8 · 10-95% · map · ")
        pose_chip(screen).focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(again.screen, ReferenceMapScreen))
        await pilot.press("escape")
        await until(pilot, lambda: again.screen is screen)
        # the map went missing from the folder: one sentence naming it, and no crash
        await asyncio.to_thread(map_file.unlink)
        pose_chip(screen).focus()
        await pilot.press("enter")
        await until(pilot, lambda: f"The pose map {map_file} cannot be read" in messages(again)[-1])
        await until(pilot, lambda: again.screen is screen)
        # the reopened session's next round is made with the window it kept
        await next_round(pilot, screen)
        controls = sent(again, screen, "ControlNetApplyAdvanced")
        assert {(c["start_percent"], c["end_percent"]) for c in controls} == {(0.1, 0.95)}
