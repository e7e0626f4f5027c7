"""What the app says at start about the user's own files: keys.yaml and workflow folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from imgen_tui.ui.app import binding_scopes, make_app
from imgen_tui.ui.keymap import check_keymap
from imgen_tui.ui.screens.funnel import FunnelScreen
from tests.pilot_helpers import notices, start_drafts, until
from tests.test_ui_funnel import SIZE, all_done, current_cells

KEYS = Path("keys.yaml")


@pytest.fixture
def config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    (home / "imgen-tui").mkdir(parents=True)
    return home / "imgen-tui"


def test_a_key_taken_from_another_binding_is_refused_and_named() -> None:
    accepted, problems = check_keymap({"round.pick": "x"}, binding_scopes(), KEYS)
    assert accepted == {}
    (problem,) = problems
    assert "keys.yaml" in problem and "round.pick" in problem and "round.reject" in problem
    assert "'x'" in problem and "default" in problem


def test_swapping_two_keys_is_no_clash() -> None:
    wanted = {"round.pick": "x", "round.reject": "space,p"}
    accepted, problems = check_keymap(wanted, binding_scopes(), KEYS)
    assert accepted == wanted and problems == []


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ({"round.pik": "y"}, "no key binding 'round.pik' (did you mean 'round.pick'?)"),
        ({"funnel.pik": "y"}, "no key binding 'funnel.pik' (did you mean 'round.pick'?)"),
        ({"round.pick": "not a key!!"}, "'not a key!!' for round.pick is not a key"),
        ({"round.pick": "space,ctrl+"}, "'ctrl+' for round.pick is not a key"),
        ({"round.pick": "hyperspace"}, "'hyperspace' for round.pick is not a key"),
        ({"funnel.advance": "x"}, "funnel.advance takes 'x', which round.reject"),
    ],
)
def test_bad_lines_get_one_sentence_each(wanted: dict[str, str], expected: str) -> None:
    accepted, problems = check_keymap(wanted, binding_scopes(), KEYS)
    assert accepted == {}
    (problem,) = problems
    assert problem.startswith("keys.yaml: ") and expected in problem and "\n" not in problem


@pytest.mark.parametrize("keys", ["y", "Y", "f5", "ctrl+y", "exclamation_mark", "!", "space,y"])
def test_real_keys_are_accepted(keys: str) -> None:
    accepted, problems = check_keymap({"round.pick": keys}, binding_scopes(), KEYS)
    assert problems == [] and accepted == {"round.pick": keys}


def test_an_old_funnel_id_is_applied_as_its_round_id_with_one_notice() -> None:
    wanted = {"funnel.pick": "y", "funnel.again": "G", "funnel.advance": "N"}
    accepted, problems = check_keymap(wanted, binding_scopes(), KEYS)
    assert accepted == {"round.pick": "y", "round.again": "G", "funnel.advance": "N"}
    assert problems == [
        "keys.yaml: 'funnel.pick' is now 'round.pick', 'funnel.again' is now 'round.again'; "
        "rename those lines."
    ]


def test_a_line_with_the_new_id_wins_over_the_old_one() -> None:
    accepted, problems = check_keymap(
        {"funnel.pick": "y", "round.pick": "T"}, binding_scopes(), KEYS
    )
    assert accepted == {"round.pick": "T"}
    assert problems == ["keys.yaml: 'funnel.pick' is now 'round.pick'; rename that line."]


async def test_the_app_says_what_is_wrong_and_keeps_the_defaults(
    config_home: Path, tmp_path: Path
) -> None:
    (config_home / "keys.yaml").write_text(
        "round.pick: x\nround.pik: y\nround.lock: 'not a key!!'\nround.again: G\n"
    )
    workflows = config_home / "workflows"
    workflows.mkdir()
    (workflows / "manifest.yaml").write_text(
        "workflows:\n  broken:\n    file: broken.json\n    family: sd15\n    task: txt2img\n"
    )
    (workflows / "broken.json").write_text("{not json")
    app = make_app(
        None, demo=True, data_dir=tmp_path / "data", graphics="halfcell", demo_speed=0.01
    )
    async with app.run_test(size=SIZE) as pilot:
        said = notices(app)
        assert sum("keys.yaml" in text for text in said) == 3
        assert any("broken.json" in text and "skipped" in text for text in said)
        screen = await start_drafts(pilot)  # the app goes on, with the bundled workflows
        assert isinstance(screen, FunnelScreen)
        await until(pilot, all_done(screen))
        await pilot.press("space")  # pick keeps its default key
        assert current_cells(screen)[0].verdict == "picked"
        await pilot.press("x")  # and reject keeps x
        assert current_cells(screen)[0].verdict == "rejected"
        await pilot.press("l")  # lock keeps l
        assert current_cells(screen)[0].locked
        jobs = len(current_cells(screen))
        await pilot.press("G")  # the good line applies
        assert screen.funnel is not None and screen.funnel.current is not None
        assert len(screen.funnel.history.made) == 2 and jobs == 20


async def palette_options(pilot: Pilot[Any], query: str) -> list[str]:
    from textual.command import CommandPalette

    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette))
    await pilot.press(*query)
    results = pilot.app.screen.query_one(OptionList)
    await until(pilot, lambda: results.option_count > 0)
    await pilot.pause(0.3)
    return [str(results.get_option_at_index(i).prompt) for i in range(results.option_count)]


async def test_the_palette_lists_every_action_of_the_screen_with_its_key(
    config_home: Path, tmp_path: Path
) -> None:
    (config_home / "keys.yaml").write_text("funnel.again: G\n")
    app = make_app(
        None, demo=True, data_dir=tmp_path / "data", graphics="halfcell", demo_speed=0.01
    )
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        await pilot.press("escape")
        options = await palette_options(pilot, "refine")
        assert any("Refine (r)" in option for option in options)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        options = await palette_options(pilot, "queue")
        assert any("Queue (f3)" in option for option in options)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        options = await palette_options(pilot, "again")
        assert any("Again (G)" in option for option in options)  # the remapped key
        await pilot.press("enter")  # runs it, as G would
        await until(pilot, lambda: app.screen is screen)
        await until(
            pilot, lambda: screen.funnel is not None and len(screen.funnel.history.made) == 2
        )


def help_text(screen: Any) -> str:
    from textual.widgets import Markdown

    return " ".join(str(block.source) for block in screen.query(Markdown))


async def test_help_says_how_each_screen_works_and_the_footer_fits(tmp_path: Path) -> None:
    from textual.widgets._footer import FooterKey

    from imgen_tui.ui.screens.queue import QueueScreen

    app = make_app(None, demo=True, data_dir=tmp_path / "data", graphics="halfcell")
    async with app.run_test(size=(180, 48)) as pilot:
        screen = await start_drafts(pilot)
        await pilot.press("escape", "f1")
        await until(pilot, lambda: "The draft funnel" in help_text(app.screen))
        await until(pilot, lambda: bool(screen.query(FooterKey)))
        keys = list(screen.query(FooterKey))
        assert keys and all(key.region.width > 0 for key in keys)
        assert max(key.region.right for key in keys) <= 180
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        if not app.screen.query("HelpPanel"):
            await pilot.press("f1")
        await until(pilot, lambda: "Our jobs still waiting" in help_text(app.screen))


async def test_the_chosen_theme_is_remembered(tmp_path: Path) -> None:
    app = make_app(None, demo=True, data_dir=tmp_path / "data", graphics="halfcell")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.theme == "tokyo-night")
        app.theme = "nord"
        assert app.settings_file is not None
        settings = app.settings_file
        await until(pilot, lambda: settings.is_file() and "nord" in settings.read_text())
    again = make_app(None, demo=True, data_dir=tmp_path / "data", graphics="halfcell")
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: again.theme == "nord")


def test_the_session_list_counts_in_words(tmp_path: Path) -> None:
    import time

    from imgen_tui.store import SessionInfo
    from imgen_tui.ui.screens.home import _describe

    one = SessionInfo("s", "funnel", "a fox", time.time(), time.time(), {}, image_count=1)
    assert _describe(one).endswith("(1 image)")
    two = SessionInfo("s", "funnel", "a fox", time.time(), time.time(), {}, image_count=2)
    assert _describe(two).endswith("(2 images)")


async def footer_actions(tmp_path: Path, name: str) -> list[tuple[str, str]]:
    """(action, key shown) of each footer key of the funnel, left to right."""
    from textual.widgets._footer import FooterKey

    app = make_app(None, demo=True, data_dir=tmp_path / name, graphics="halfcell")
    async with app.run_test(size=(240, 48)) as pilot:
        screen = await start_drafts(pilot)
        await pilot.press("escape")
        await until(pilot, lambda: bool(screen.query(FooterKey)))
        await pilot.pause(0.2)
        keys = sorted(screen.query(FooterKey), key=lambda key: key.region.x)
        return [(key.action, key.key) for key in keys]


async def test_a_remapped_key_keeps_its_place_in_the_footer(
    config_home: Path, tmp_path: Path
) -> None:
    before = await footer_actions(tmp_path, "before")
    (config_home / "keys.yaml").write_text("funnel.pick: y\nfunnel.refine: W\n")
    after = await footer_actions(tmp_path, "after")
    assert [action for action, _ in after] == [action for action, _ in before]
    shown = dict(after)
    assert shown["verdict('picked')"] == "y" and shown["refine"] == "W"


async def test_round_pick_remapped_once_picks_in_the_funnel_and_the_concept_builder(
    config_home: Path, tmp_path: Path
) -> None:
    """One line in keys.yaml (`round.pick: y`) moves pick for every flow that composes RoundView."""
    from imgen_tui.ui.screens.concept import ConceptScreen
    from imgen_tui.ui.screens.home import HomeScreen
    from imgen_tui.ui.widgets.round_view import RoundView

    (config_home / "keys.yaml").write_text("round.pick: y\n")
    app = make_app(
        None, demo=True, data_dir=tmp_path / "data", graphics="halfcell", demo_speed=0.01
    )
    async with app.run_test(size=SIZE) as pilot:
        assert not any("keys.yaml" in text for text in notices(app))
        screen = await start_drafts(pilot)
        await until(pilot, all_done(screen))
        await pilot.press("space")  # space no longer picks
        assert current_cells(screen)[0].verdict == "none"
        await pilot.press("y")
        assert current_cells(screen)[0].verdict == "picked"
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))

        await pilot.press("c")  # Home lists the concept builder: c opens it
        await until(pilot, lambda: isinstance(app.screen, ConceptScreen))
        concept = app.screen
        assert isinstance(concept, ConceptScreen)
        await until(pilot, lambda: concept.session is not None)
        concept.query_one("#field-subject", Input).value = "a red fox"
        concept.query_one("#field-subject", Input).focus()
        await pilot.press("enter")
        session = concept.session
        assert session is not None
        await until(pilot, lambda: session.current is not None and session.current.done == 4)
        concept.query_one(RoundView).grid.focus()
        first = session.current.cells[0] if session.current else None
        assert first is not None
        await pilot.press("space")
        assert [first.verdict] == ["none"]
        await pilot.press("y")
        assert [first.verdict] == ["picked"]
        shown = concept.active_bindings.values()
        assert [b.binding.key for b in shown if b.binding.id == "round.pick"] == ["y"]
