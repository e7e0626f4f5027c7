"""Labels through the fake Ollama: schema, DB, sidecar, search, no vision model, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgen_tui.commands.label import make_demo_session
from imgen_tui.llm.config import LlmConfig, StageModel
from imgen_tui.llm.labels import LabelAnswer, NoVisionModel, label_session
from imgen_tui.llm.ollama_stages import OllamaStages
from imgen_tui.store import SessionStore
from imgen_tui.ui.screens.sessions import SessionsScreen
from tests.cli_helpers import home_dirs, run_cli
from tests.fake_ollama import fake_ollama
from tests.pilot_helpers import until
from tests.test_llm_pipeline import config_for
from tests.test_ui_concept import demo_app
from tests.test_ui_sessions import SIZE, open_sessions, said

HERON = {
    "caption": "A grey heron stands in shallow water.",
    "tags": ["Heron", "water", "heron"],
    "nsfw": False,
}


async def test_a_session_is_labelled_into_the_db_and_the_sidecars(tmp_path: Path) -> None:
    store = await SessionStore.open(tmp_path)
    try:
        session_id = await make_demo_session(store)
        async with fake_ollama() as fake:
            fake.vision_models.add("minicpm-v")
            stages = OllamaStages(config_for(fake))
            fake.answer(
                {"caption": "", "tags": [], "nsfw": False}
            )  # breaks the schema: asked again
            fake.answer(HERON)
            for _ in range(3):
                fake.answer({**HERON, "nsfw": True, "caption": "A heron, flagged."})
            seen: list[int] = []
            run = await label_session(
                store, stages, session_id, progress=lambda r: seen.append(r.done)
            )
            again = await label_session(store, stages, session_id)  # nothing left to label
        assert (run.total, run.labelled, run.failed, seen) == (4, 4, [], [1, 2, 3, 4])
        assert again.total == 0
        first = fake.requests[0]
        assert first["format"] == LabelAnswer.model_json_schema()
        assert first["messages"][1]["images"] and not first["messages"][1]["images"][0].startswith(
            "data:"
        )
        assert "did not match the schema" in fake.requests[1]["messages"][-1]["content"]
        labels = await store.labels(session_id)
        assert len(labels) == 4
        images = await store.images(session_id=session_id)
        label = labels[images[0].id]
        assert label.caption == HERON["caption"] and label.tags == ("heron", "water")
        assert label.model == "minicpm-v" and not label.nsfw
        assert sum(each.nsfw for each in labels.values()) == 3
        sidecar = json.loads(images[0].sidecar_path.read_text())
        assert sidecar["label"]["caption"] == HERON["caption"] and sidecar["prompt"]
        searchable = await store.session_labels()
        assert "grey heron" in searchable[session_id]
    finally:
        await store.close()


async def test_no_vision_model_is_one_sentence_before_any_work(tmp_path: Path) -> None:
    store = await SessionStore.open(tmp_path)
    try:
        session_id = await make_demo_session(store)
        async with fake_ollama() as fake:
            stages = OllamaStages(config_for(fake))  # minicpm-v pulled, but it cannot see
            with pytest.raises(NoVisionModel, match="cannot see images"):
                await label_session(store, stages, session_id)
            assert fake.requests == []
        nobody = OllamaStages(
            LlmConfig(host="http://127.0.0.1:1", vision=StageModel(model="minicpm-v"))
        )
        with pytest.raises(NoVisionModel, match=r"no Ollama answers at http://127\.0\.0\.1:1"):
            await label_session(store, nobody, session_id)
        assert await store.labels(session_id) == {}
    finally:
        await store.close()


async def test_labels_from_the_sessions_screen_are_searchable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await SessionStore.open(tmp_path)
    session_id = await make_demo_session(store)
    other = await store.create_session("batch", "something else")
    await store.close()
    app = demo_app(tmp_path, monkeypatch)
    async with fake_ollama() as fake, app.run_test(size=SIZE) as pilot:
        screen = await open_sessions(pilot)
        await pilot.press("L")  # demo mode: no vision model, and it says so
        await until(pilot, lambda: any("Labels need the vision model" in t for t in said(app)))
        fake.vision_models.add("minicpm-v")
        app.llm_stages = OllamaStages(config_for(fake))
        for _ in range(4):
            fake.answer(HERON)
        table = screen.query_one("DataTable")
        table.move_cursor(row=table.get_row_index(session_id))  # type: ignore[attr-defined]
        await pilot.press("L")
        await until(pilot, lambda: any("Labelled 4 of 4 images" in t for t in said(app)))
        assert app.screen is screen and isinstance(screen, SessionsScreen)
        screen.query_one("#session-search").value = "heron"  # type: ignore[attr-defined]
        await until(pilot, lambda: list(table.rows) == [session_id])  # type: ignore[attr-defined]
        assert other.id not in table.rows  # type: ignore[attr-defined]
        assert "grey heron" in str(screen.query_one("#session-detail").render())


def test_the_label_command_without_ollama_says_so_and_exits_1(tmp_path: Path) -> None:
    env = home_dirs(tmp_path)
    config = Path(env["XDG_CONFIG_HOME"]) / "imgen-tui"
    config.mkdir(parents=True)
    (config / "llm.yaml").write_text("host: http://127.0.0.1:1\n")
    result = run_cli("label", "--demo", "--data-dir", str(tmp_path / "data"), env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Made demo session" in result.stdout
    assert "no Ollama answers at http://127.0.0.1:1" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    missing = run_cli("label", "nosuch", "--data-dir", str(tmp_path / "data"), env=env)
    assert missing.returncode == 1 and "match 'nosuch'" in missing.stdout + missing.stderr
