"""The concept builder without a terminal: config, composition, locks, refinement, the farm."""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from PIL import Image

from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.flows.concept import ConceptBuilder, ConceptError
from imgen_tui.flows.concept_config import ConceptConfig, load_concept_config, parse_concept_config
from imgen_tui.flows.concept_session import ConceptSession
from imgen_tui.graphs import load_library
from imgen_tui.graphs.params import read_values
from imgen_tui.llm.field_stages import NEEDS_VISION
from imgen_tui.llm.ollama_stages import LlmError, OllamaStages
from imgen_tui.llm.pipeline import Intent
from imgen_tui.locations import bundled_dir
from imgen_tui.scheduler.events import JobStarted
from imgen_tui.yamlfile import ConfigError
from tests.fake_ollama import fake_ollama
from tests.round_helpers import Farm, Follower, demo_farm, until
from tests.test_llm_pipeline import config_for

LIBRARY = load_library([bundled_dir("workflows")])
SHIPPED = bundled_dir("config") / "concept.yaml"
FOX = {
    "subject": "a red fox",
    "pose": "sitting",
    "background": "snowy forest",
    "style": "oil painting",
    "mood": "calm",
    "lighting": "soft",
}


def builder(config: ConceptConfig | None = None, **values: str) -> ConceptBuilder:
    made = ConceptBuilder(
        config or load_concept_config(SHIPPED), LIBRARY, DEFAULT_MODELS, rng=random.Random(3)
    )
    for name, text in {**FOX, **values}.items():
        made.set_field(name, text)
    return made


# -- config -----------------------------------------------------------------------------------


def test_the_shipped_config_has_the_seed_fields_four_sdxl_variations_on_quality() -> None:
    config = load_concept_config(SHIPPED)
    assert [f.name for f in config.fields] == list(FOX)
    assert config.variations == 4 and config.family == "sdxl" and config.min_tier == "quality"
    assert config.workflow == "sdxl_txt2img"


def test_a_duplicate_field_name_is_one_sentence_naming_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "concept.yaml"
    text = "fields:\n  - name: subject\n  - name: mood\n  - name: mood\ncatch_all: mood\n"
    with pytest.raises(ConfigError) as raised:
        parse_concept_config(text, path)
    assert str(raised.value) == (
        f"{path}, line 4: fields[2].name 'mood' is already fields[1]'s name; "
        "give each field its own name."
    )


def test_a_catch_all_or_family_that_names_nothing_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "concept.yaml"
    with pytest.raises(
        ConfigError, match=r"line 2: catch_all 'vibe' is not a field; use one of subject"
    ):
        parse_concept_config("fields: [{name: subject}]\ncatch_all: vibe\n", path)
    with pytest.raises(ConfigError, match=r"line 3: family 'pony' has no template under workflows"):
        parse_concept_config("fields: [{name: subject}]\ncatch_all: subject\nfamily: pony\n", path)
    with pytest.raises(ConfigError, match=r"line 1: fields\[0\]\.name"):
        parse_concept_config("fields: [{name: Sub Ject}]\ncatch_all: subject\n", path)


def test_a_user_field_is_composed_in_its_place(tmp_path: Path) -> None:
    path = tmp_path / "concept.yaml"
    path.write_text(
        SHIPPED.read_text().replace(
            "catch_all: mood",
            "  - name: camera\n    noun: shot\ncatch_all: mood",
        )
    )
    made = builder(load_concept_config(path), camera="wide angle")
    assert made.compose().endswith("soft lighting, wide angle shot")


# -- composing, bad input ---------------------------------------------------------------------


def test_fields_compose_per_family_syntax() -> None:
    made = builder()
    assert made.compose() == (
        "a red fox, sitting, snowy forest background, oil painting, calm, soft lighting"
    )
    made.set_field("mood", "(calm:1.2)")
    assert "(calm:1.2)" in made.compose()
    shipped = load_concept_config(SHIPPED)
    workflows = {**shipped.workflows, "pony": "sdxl_txt2img"}
    pony = builder(shipped.model_copy(update={"family": "pony", "workflows": workflows}))
    assert pony.compose().startswith("score_9, score_8_up, score_7_up, a red fox")
    flux = builder(load_concept_config(SHIPPED).model_copy(update={"family": "flux"}))
    flux.set_field("mood", "(calm:1.2)")
    assert flux.compose() == (
        "A red fox, sitting, snowy forest background, oil painting, calm, soft lighting."
    )  # a sentence, no weights
    assert flux.negative() == ""  # Flux has no negative prompt


def test_an_empty_subject_is_one_sentence_and_nothing_is_made() -> None:
    made = builder(subject="  ")
    with pytest.raises(ConceptError) as raised:
        made.generate()
    assert str(raised.value) == (
        "The subject is empty: type who or what the picture is of, then generate."
    )
    assert made.current is None


def test_an_unknown_field_names_the_fields_there_are() -> None:
    with pytest.raises(ConceptError, match="there is no field 'camera'; the fields are subject"):
        builder().set_field("camera", "wide")


def test_a_round_is_four_sdxl_jobs_preferring_the_quality_tier() -> None:
    made = builder()
    specs = made.generate()
    assert len(specs) == 4 and {s.family for s in specs} == {"sdxl"}
    assert {s.min_tier for s in specs} == {"quality"}
    values = read_values(specs[0].graph)
    assert values["positive_prompt"] == made.compose()
    assert values["width"] == 1024 and len({read_values(s.graph)["seed"] for s in specs}) == 4


# -- locks, pins, refinement offline ------------------------------------------------------------


async def test_a_locked_subject_refuses_a_cat_and_unlocked_becomes_one() -> None:
    made = builder()
    made.generate()
    made.toggle_lock("subject")
    from imgen_tui.llm.field_refine import refine_fields

    intent = Intent()
    request = made.refine_request("make it a cat instead, change the background to a beach")
    result = await refine_fields(request, intent, None)
    assert result.texts["subject"] == "a red fox"  # identical, by the check
    assert result.refusals == ["subject is locked: did not apply 'a cat' (unlock it to change it)"]
    assert result.texts["background"] == "a beach" and "a red fox" in result.prompt
    assert ("check", "passed: locked fields identical and in the prompt") in result.stages
    assert made.accept(result) == ["background"]

    made.toggle_lock("subject")
    result = await refine_fields(made.refine_request("make it a cat instead"), intent, None)
    assert result.refusals == [] and result.texts["subject"] == "a cat"
    assert made.accept(result) == ["subject"] and made.compose().startswith("a cat, sitting")


async def test_locks_become_pins_in_the_intent_and_hand_made_pins_stay() -> None:
    made = builder(subject="a red fox, green eyes")
    intent = Intent(pinned=["film grain"])
    previous = made.pin_into(intent, [])
    assert intent.pinned == ["film grain"]
    made.toggle_lock("subject")
    previous = made.pin_into(intent, previous)
    assert intent.pinned == ["film grain", "a red fox", "green eyes"]
    made.toggle_lock("subject")
    made.pin_into(intent, previous)
    assert intent.pinned == ["film grain"]


async def test_a_pinned_trait_in_an_unlocked_field_is_kept_by_later_refinement() -> None:
    from imgen_tui.llm.field_refine import refine_fields

    made = builder()
    request = made.refine_request("no snowy forest", pinned=["snowy forest"])
    result = await refine_fields(request, Intent(pinned=["snowy forest"]), None)
    assert result.texts["background"] == "snowy forest"
    assert result.refusals == ["pinned in the intent: kept snowy forest in background"]


async def test_describing_a_pick_needs_the_vision_model_offline() -> None:
    from imgen_tui.llm.field_stages import describe_into_fields

    with pytest.raises(LlmError) as raised:
        await describe_into_fields(None, b"", {"pose": "what it does"})
    assert str(raised.value) == NEEDS_VISION


# -- refinement with the LLM stages (a loopback Ollama) ------------------------------------------


async def test_the_llm_stages_see_field_schemas_and_never_get_a_locked_field() -> None:
    from imgen_tui.llm.field_refine import refine_fields

    made = builder()
    made.toggle_lock("subject")
    async with fake_ollama() as fake:
        fake.answer(
            {
                "subject": {"modify": {"subject": "a cat"}},
                "background": {"remove": ["snowy forest"], "add": ["rainy city"]},
            }
        )
        fake.answer({"background": "rainy city, a dragon"})  # the dragon is invented
        result = await refine_fields(
            made.refine_request("make it a cat in a rainy city"),
            Intent(),
            OllamaStages(config_for(fake)),
        )
    interpret, engineer = fake.requests
    schema = interpret["format"]
    assert set(schema["properties"]) == set(FOX) and schema["additionalProperties"] is False
    assert '"locked": true' in interpret["messages"][1]["content"]
    assert set(engineer["format"]["properties"]) == {"background"}  # no locked field offered
    assert result.path == "llm" and result.texts["subject"] == "a red fox"
    assert result.refusals == ["subject is locked: did not apply 'a cat' (unlock it to change it)"]
    assert result.texts["background"] == "rainy city"
    assert result.notice is not None and "invented a dragon" in result.notice


async def test_describe_this_pick_fills_only_unlocked_empty_fields() -> None:
    from imgen_tui.llm.field_stages import describe_into_fields

    made = builder(pose="", mood="", lighting="")
    made.toggle_lock("lighting")
    picture = io.BytesIO()
    Image.new("RGB", (64, 64), "orange").save(picture, format="PNG")
    async with fake_ollama() as fake:
        fake.vision_models.add("minicpm-v")
        fake.answer({"pose": "curled up asleep", "mood": "peaceful"})
        wanted = made.empty_unlocked()
        described = await describe_into_fields(
            OllamaStages(config_for(fake)), picture.getvalue(), wanted
        )
    assert set(wanted) == {"pose", "mood"}  # lighting is locked, the rest have text
    assert made.fill_described({**described, "subject": "a dog", "lighting": "neon"}) == [
        "pose",
        "mood",
    ]
    assert made.values["subject"] == "a red fox" and made.values["lighting"] == ""
    assert fake.requests[-1]["messages"][1]["images"]  # the picture went to stage 3


# -- on the demo farm ------------------------------------------------------------------------


@asynccontextmanager
async def concept_on(farm: Farm) -> AsyncIterator[tuple[ConceptSession, Follower]]:
    session = ConceptSession(builder(), farm.store, farm.scheduler)
    follower = Follower(session.builder.history)
    task = asyncio.create_task(follower.run(farm.scheduler))
    await asyncio.sleep(0)
    try:
        yield session, follower
    finally:
        task.cancel()


def done(session: ConceptSession, count: int = 4) -> bool:
    return session.current is not None and session.current.done == count


async def test_the_concept_builder_end_to_end_on_the_demo_farm(tmp_path: Path) -> None:
    async with demo_farm(tmp_path) as farm, concept_on(farm) as (session, _):
        first = await session.generate()
        await until(lambda: done(session))
        assert {c.node_id for c in first.cells} <= {"gpu-premium", "gpu-quality", "gpu-standard"}
        assert all(c.image is not None and c.image.width == 1024 for c in first.cells)
        await session.judge(first.cells[0], "picked")
        await session.judge(first.cells[3], "rejected")
        await session.toggle_seed_lock(first.cells[0])

        assert await session.toggle_lock("subject")
        assert session.session_id is not None
        intent = Intent.from_document(await farm.store.intent(session.session_id))
        assert intent.pinned == ["a red fox"]  # the lock is a pinned trait, shown as a chip
        refined = await session.refine("make it a cat instead, more fog", None)
        assert refined.texts["subject"] == "a red fox" and refined.refusals
        await session.accept(refined)
        second = session.current
        assert second is not None and second is not first
        assert second.prompt.startswith("a red fox") and "(fog:1.1)" in second.prompt
        assert read_values(farm.scheduler.jobs[second.cells[0].job_id].spec.graph)["seed"] == (
            first.cells[0].seed  # the locked seed carried into the next round
        )
        await until(lambda: done(session))

        assert not await session.toggle_lock("subject")
        refined = await session.refine("make it a cat instead", None)
        assert refined.refusals == [] and refined.texts["subject"] == "a cat"
        await session.accept(refined)
        third = session.current
        assert third is not None and third.prompt.startswith("a cat")
        await until(lambda: done(session))
        intent = Intent.from_document(await farm.store.intent(session.session_id))
        assert intent.pinned == [] and "calm" not in intent.avoid

        await session.go_to(0)  # back to round 1: its fields and locks
        assert session.builder.values["subject"] == "a red fox"
        assert session.builder.locked == set() and session.current is first
        await session.go_to(1)
        assert session.builder.locked == {"subject"} and "(fog:1.1)" in str(
            session.builder.values["mood"]
        )
        state_before = session.builder.state(session.lock_pins)
        session_id = session.session_id

    async with demo_farm(tmp_path) as farm:
        reopened = ConceptSession(builder(subject="something else"), farm.store, farm.scheduler)
        await reopened.reopen(session_id)
        restored = reopened.builder
        assert restored.values == session.builder.values and restored.locked == {"subject"}
        assert restored.history.position == 1 and len(restored.history.rounds) == 3
        assert restored.state(reopened.lock_pins) == state_before
        back_first = restored.history.rounds[0]
        assert [c.verdict for c in back_first.cells] == ["picked", "none", "none", "rejected"]
        assert [c.locked for c in back_first.cells] == [True, False, False, False]
        assert [c.job_id for c in back_first.cells] == [c.job_id for c in first.cells]
        assert restored.history.rounds[2].meta["fields"]["subject"] == "a cat"
        assert reopened.lock_pins == ["a red fox"]


async def test_cancelling_a_round_stops_its_jobs_and_records_it(tmp_path: Path) -> None:
    async with demo_farm(tmp_path, speed=0.5) as farm, concept_on(farm) as (session, _):
        stage_round = await session.generate()
        await until(lambda: any(c.state == "running" for c in stage_round.cells))
        await session.cancel_round()
        await until(lambda: not stage_round.unfinished_jobs())
        assert "cancelled" in {c.state for c in stage_round.cells}
        assert session.session_id is not None
        await farm.recorder.drain()  # state changes are written off the loop
        rows = await farm.store.jobs(session.session_id)
        states = {row.id: row.state for row in rows}
        for cell in stage_round.cells:
            assert states[cell.job_id] == ("done" if cell.state == "done" else "cancelled")


async def test_a_node_dying_mid_round_loses_no_cell(tmp_path: Path) -> None:
    async with demo_farm(tmp_path, speed=0.3) as farm, concept_on(farm) as (session, follower):
        stage_round = await session.generate()
        await until(lambda: any(isinstance(e, JobStarted) for e in follower.events))
        victim = next(e.node_id for e in follower.events if isinstance(e, JobStarted))
        await farm.sim.node(victim).kill()
        await until(lambda: done(session), seconds=60)
        assert all(c.image is not None and c.state == "done" for c in stage_round.cells)
        assert victim not in {c.node_id for c in stage_round.cells}
        assert session.session_id is not None
        images = await farm.store.images(session_id=session.session_id)
        assert len(images) == 4  # each cell's image kept once


async def test_again_keeps_the_picks_and_z_brings_the_round_back(tmp_path: Path) -> None:
    async with demo_farm(tmp_path) as farm, concept_on(farm) as (session, _):
        first = await session.generate()
        await until(lambda: done(session))
        await session.judge(first.cells[1], "picked")
        again = await session.again()
        assert again is not first and again.replaces is first
        assert again.cells[0].verdict == "picked" and again.cells[0].seed == first.cells[1].seed
        await until(lambda: done(session))
        assert len(session.builder.history.rounds) == 1  # the same step, made again
        assert await session.undo_again() is again and session.current is first
        assert session.session_id is not None
        session_id = session.session_id
    async with demo_farm(tmp_path) as farm:
        reopened = ConceptSession(builder(), farm.store, farm.scheduler)
        await reopened.reopen(session_id)
        assert reopened.current is not None
        assert [c.job_id for c in reopened.current.cells] == [c.job_id for c in first.cells]
        assert len(reopened.builder.history.made) == 2
