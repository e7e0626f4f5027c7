"""Labels against the real 135M model: it cannot see, so labelling refuses cleanly; the schema holds.

SmolLM2-135M has no vision: labelling a session must stop with the
no-vision-model sentence before anything is sent or written. Its text answers
under `LabelAnswer`'s schema, through the real grammar-constrained decoder,
still validate, which is what a real vision model's answers go through.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgen_tui.commands.label import make_demo_session
from imgen_tui.llm.labels import LABEL_SYSTEM, LabelAnswer, NoVisionModel, label_session
from imgen_tui.llm.ollama_stages import LlmError, OllamaStages
from imgen_tui.store import SessionStore
from tests.ollama_shim import ollama_shim
from tests.test_llm_real_model import config_for, the_model

pytestmark = pytest.mark.real_llm


async def test_the_tiny_model_cannot_see_so_labelling_refuses_and_the_schema_holds(
    tmp_path: Path,
) -> None:
    store = await SessionStore.open(tmp_path)
    try:
        session_id = await make_demo_session(store)
        async with ollama_shim(the_model()) as shim:
            stages = OllamaStages(config_for(shim.url))
            with pytest.raises(NoVisionModel, match="cannot see images"):
                await label_session(store, stages, session_id)
            assert shim.exchanges == []  # refused before any chat
            system = LABEL_SYSTEM.format(schema=json.dumps(LabelAnswer.model_json_schema()))
            try:
                answer = await stages.ask(
                    stages.config.vision, system, "A grey heron in shallow water.", LabelAnswer
                )
            except LlmError as error:  # a 135M model may ramble past the cap twice: say so
                pytest.fail(f"{error}; answers: {[e.answer[:200] for e in shim.exchanges]}")
        assert isinstance(answer.nsfw, bool) and len(answer.tags) <= 12 and answer.caption
        assert shim.exchanges[0].request["format"] == LabelAnswer.model_json_schema()
        assert await store.labels(session_id) == {}
    finally:
        await store.close()
