"""The refine pipeline against a loopback server that speaks Ollama's wire format."""

from __future__ import annotations

import base64
import io
import json
import socket

import pytest
from PIL import Image

from imgen_tui.llm.changes import Changes
from imgen_tui.llm.config import LlmConfig, StageModel, load_llm_config, load_styles
from imgen_tui.llm.ollama_stages import LlmError, OllamaStages
from imgen_tui.llm.pipeline import Intent, RefineRequest, refine
from tests.fake_ollama import FakeOllama, fake_ollama

PROMPT = "1girl, sitting cross-legged, forest background, sunny, detailed face"
FEEDBACK = "make it moodier, keep the pose, change background to rainy city"
SEED_CHANGES = {
    "keep": ["sitting cross-legged", "detailed face"],
    "remove": ["forest background", "sunny"],
    "add": ["rainy cityscape background", "neon reflections", "moody atmosphere"],
    "modify": {"lighting": "dim, atmospheric"},
    "emphasis_up": ["moody atmosphere"],
    "emphasis_down": [],
}


def config_for(fake: FakeOllama, timeout: float = 5) -> LlmConfig:
    fake.pulled |= {"hermes3:8b", "phi4:14b", "minicpm-v"}
    return LlmConfig(
        host=fake.url,
        timeout_seconds=timeout,
        interpreter=StageModel(model="hermes3:8b", num_ctx=8192),
        engineer=StageModel(model="phi4:14b", num_ctx=16384),
        vision=StageModel(model="minicpm-v", num_ctx=4096),
    )


def request(**kwargs: object) -> RefineRequest:
    return RefineRequest(feedback=FEEDBACK, prompt=PROMPT, family="sdxl", **kwargs)  # type: ignore[arg-type]


async def test_stages_one_and_two_send_schemas_and_options_and_pass_the_check() -> None:
    async with fake_ollama() as fake:
        fake.answer(SEED_CHANGES)
        fake.answer(
            {
                "prompt": "1girl, sitting cross-legged, detailed face, rainy cityscape background, "
                "neon reflections, (moody atmosphere:1.2), dim, atmospheric lighting",
                "negative": "lowres",
            }
        )
        intent = Intent()
        result = await refine(request(), intent, OllamaStages(config_for(fake)))

    assert result.path == "llm" and result.notice is None
    assert [name for name, _ in result.stages] == ["interpret", "engineer", "check"]
    assert "forest" not in result.prompt and "sunny" not in result.prompt
    first, second = fake.requests
    assert first["model"] == "hermes3:8b" and second["model"] == "phi4:14b"
    assert first["format"] == Changes.model_json_schema()  # constrained decoding
    assert '"emphasis_up"' in first["messages"][0]["content"]  # the schema stated in the prompt
    assert first["options"]["num_ctx"] == 8192 and second["options"]["num_ctx"] == 16384
    assert first["keep_alive"] == "10m" and first["stream"] is False
    assert "(phrase:1.2)" in second["messages"][0]["content"]  # ComfyUI weight syntax taught
    assert intent.avoid == ["forest background", "sunny"]  # learnt for later rounds
    assert "sunny" in result.negative


async def test_an_invented_concept_is_repaired_and_reported() -> None:
    async with fake_ollama() as fake:
        fake.answer(SEED_CHANGES)
        fake.answer({"prompt": "1girl, detailed face, a dragon, sunny, rainy cityscape background"})
        result = await refine(request(), Intent(), OllamaStages(config_for(fake)))
    assert result.notice is not None and "invented a dragon" in result.notice
    assert "dragon" not in result.prompt and "sunny" not in result.prompt
    assert "sitting cross-legged" in result.prompt  # the lost keep is back


async def test_a_kept_phrase_the_engineer_put_in_the_negative_is_taken_out() -> None:
    async with fake_ollama() as fake:
        fake.answer(SEED_CHANGES)
        fake.answer({"prompt": PROMPT, "negative": "blurry, detailed face, (sunny:1.2)"})
        result = await refine(request(), Intent(), OllamaStages(config_for(fake)))
    assert result.negative == "blurry, (sunny:1.2), forest background"  # plus the avoid list


async def test_a_schema_invalid_answer_is_retried_once_with_the_error() -> None:
    async with fake_ollama() as fake:
        fake.answer({"keep": "not a list", "surprise": 1})
        fake.answer(SEED_CHANGES)
        changes = await OllamaStages(config_for(fake)).interpret(
            FEEDBACK, PROMPT, history=[], picked=[], rejected=[]
        )
    assert changes.keep == SEED_CHANGES["keep"]
    retry = fake.requests[1]["messages"]
    assert retry[-2]["role"] == "assistant" and "did not match the schema" in retry[-1]["content"]


async def test_truncated_twice_is_a_sentence_not_a_crash() -> None:
    async with fake_ollama() as fake:
        fake.answer({"keep": []}, done_reason="length")
        fake.answer({"keep": []}, done_reason="length")
        with pytest.raises(LlmError, match="cut off at num_ctx 8192"):
            await OllamaStages(config_for(fake)).interpret(
                FEEDBACK, PROMPT, history=[], picked=[], rejected=[]
            )


async def test_a_model_that_is_not_pulled_says_what_to_run() -> None:
    async with fake_ollama() as fake:
        stages = OllamaStages(config_for(fake))
        fake.pulled.discard("hermes3:8b")
        with pytest.raises(LlmError) as raised:
            await refine(request(), Intent(), stages)
        assert str(raised.value) == (
            f"model hermes3:8b is not pulled on {fake.url}: run `ollama pull hermes3:8b`"
        )


async def test_a_model_that_does_not_answer_in_time_is_reported() -> None:
    async with fake_ollama() as fake:
        fake.answer(SEED_CHANGES, delay=2)
        with pytest.raises(LlmError, match=r"did not answer within 0\.3 s"):
            await OllamaStages(config_for(fake, timeout=0.3)).interpret(
                FEEDBACK, PROMPT, history=[], picked=[], rejected=[]
            )


async def test_no_ollama_falls_back_to_the_rules_and_says_so() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stages = OllamaStages(LlmConfig(host=f"http://127.0.0.1:{port}", timeout_seconds=2))
    result = await refine(
        RefineRequest(
            feedback="no sunny, change the background to rainy city, more neon",
            prompt=PROMPT,
            family="sd15",
        ),
        Intent(),
        stages,
    )
    assert result.path == "rules"
    assert result.notice is not None and "used the offline rules" in result.notice
    assert result.prompt == (
        "1girl, sitting cross-legged, rainy city background, detailed face, (neon:1.1)"
    )


def jpeg(size: int, colour: tuple[int, int, int]) -> bytes:
    data = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(data, format="JPEG")
    return data.getvalue()


LOOKED_AT = {"composition": "centred", "style": "flat", "mood": "warm", "colours": "red"}


async def test_vision_gets_a_downscaled_png_as_plain_base64_and_feeds_both_stages() -> None:
    async with fake_ollama() as fake:
        config = config_for(fake)
        fake.vision_models.add("minicpm-v")
        fake.answer(LOOKED_AT)
        fake.answer(SEED_CHANGES)
        fake.answer({"prompt": "1girl, sitting cross-legged, detailed face"})
        result = await refine(
            request(picture=jpeg(2048, (200, 40, 40))), Intent(), OllamaStages(config)
        )
    vision, interpreter, engineer = fake.requests
    (image,) = vision["messages"][-1]["images"]
    assert not image.startswith("data:")
    with Image.open(io.BytesIO(base64.b64decode(image))) as sent:
        assert sent.format == "PNG" and sent.width * sent.height <= 1_500_000
    assert vision["format"]["required"] == ["composition", "style", "mood", "colours"]
    notes = "the picked image: composition: centred; style: flat; mood: warm; colours: red"
    assert ("vision", notes) in result.stages
    for later in (interpreter, engineer):  # stage 1 may name its traits as changes
        assert json.loads(later["messages"][1]["content"])["what_the_images_show"] == notes


async def test_picked_against_rejected_describes_both_and_the_stages_report_live() -> None:
    heard: list[tuple[str, str | None]] = []
    async with fake_ollama() as fake:
        fake.vision_models.add("minicpm-v")
        fake.answer(LOOKED_AT)
        fake.answer({**LOOKED_AT, "mood": "cold", "colours": "grey"})
        fake.answer(SEED_CHANGES)
        fake.answer({"prompt": "1girl, sitting cross-legged, detailed face"})
        result = await refine(
            request(picture=jpeg(64, (200, 40, 40)), rejected_picture=jpeg(64, (90, 90, 90))),
            Intent(),
            OllamaStages(config_for(fake)),
            on_stage=lambda stage, output: heard.append((stage, output)),
        )
    assert [len(r["messages"][-1].get("images", [])) for r in fake.requests] == [1, 1, 0, 0]
    notes = dict(result.stages)["vision"]
    assert "picked image: " in notes and "rejected image: " in notes and "mood: cold" in notes
    # each stage is announced before it runs and reported when it is done, in order
    assert [stage for stage, output in heard if output is None] == [
        "vision",
        "interpret",
        "engineer",
        "check",
    ]
    assert [(s, o) for s, o in heard if o is not None] == result.stages


async def test_a_vision_stage_that_cannot_see_is_skipped_and_said() -> None:
    async with fake_ollama() as fake:  # minicpm-v is pulled but has no vision capability
        fake.answer(SEED_CHANGES)
        fake.answer({"prompt": "1girl, sitting cross-legged, detailed face"})
        result = await refine(
            request(picture=jpeg(64, (1, 2, 3))), Intent(), OllamaStages(config_for(fake))
        )
    assert result.path == "llm" and result.notice is not None
    assert "vision skipped: model minicpm-v" in result.notice and "cannot see" in result.notice
    assert [r["model"] for r in fake.requests] == ["hermes3:8b", "phi4:14b"]


async def test_a_model_without_vision_is_named() -> None:
    async with fake_ollama() as fake:
        stages = OllamaStages(config_for(fake))  # minicpm-v pulled but without vision here
        with pytest.raises(LlmError, match=r"minicpm-v .* cannot see images"):
            await stages.describe(b"", "what is it?")


async def test_pinned_traits_and_styles_hold_on_the_offline_path() -> None:
    styles = load_styles()
    result = await refine(
        RefineRequest(
            feedback="no fox, add rain",
            prompt="red fox, snow, forest",
            family="sdxl",
            pinned=["red fox"],
            style=styles["cinematic"],
        ),
        Intent(),
        None,
    )
    assert result.path == "rules" and result.notice == "offline rules (no LLM configured)"
    assert "red fox" in result.prompt  # a pin beats "no fox"
    assert "rain" in result.prompt and "cinematic lighting" in result.prompt


def test_the_shipped_config_names_the_seed_models() -> None:
    config = load_llm_config()
    assert (config.interpreter.model, config.engineer.model, config.vision.model) == (
        "hermes3:8b",
        "phi4:14b",
        "minicpm-v",
    )
    assert config.timeout_seconds >= 120  # room for a cold model load
    assert set(load_styles()) == {"detailed", "cinematic", "artistic", "minimal"}
