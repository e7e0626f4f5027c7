"""Stages 1-3 on Ollama for the concept builder: per field instead of per prompt.

Each answer's schema is built from the field names, so constrained decoding
cannot invent a field; the engineer is only shown the unlocked fields that
have changes, so it cannot rewrite a locked one (and the check proves it did
not). Stage 3 can also describe a picture straight into the fields.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from imgen_tui.llm.changes import Changes
from imgen_tui.llm.families import syntax_rules
from imgen_tui.llm.field_changes import FieldChanges, field_changes_model, from_answer
from imgen_tui.llm.fields import ConceptField
from imgen_tui.llm.ollama_stages import LlmError, LlmUnavailable, OllamaStages, downscale_for_vision

FIELD_INTERPRETER_SYSTEM = """You turn an image-generation operator's feedback into structured
changes to the fields of a concept (subject, pose, background...). Answer with one object of
changes per field the feedback is about and leave the other fields out (null).
Use only what the feedback says or clearly implies; never add ideas of your own.
Per field: keep = its phrases to survive; remove = its phrases to disappear; add = new
phrases; modify = {{"<field name>": "<its complete new value>"}} to replace the field;
emphasis_up / emphasis_down = its phrases to weigh more or less.
Locked fields cannot change: a change to one will be refused, so say it anyway if the
feedback asks for it (the operator is told), but do not move it into another field.
Answer with JSON only, matching this schema:
{schema}"""

FIELD_ENGINEER_SYSTEM = """You rewrite the fields of an image concept by applying structured
changes, one field at a time. Each field's text is a short list of comma-separated phrases.
Rules: apply exactly the changes given to each field; never invent subjects, objects or
styles; keep every `keep` phrase; drop every `remove` phrase and everything in the avoid
list; no flowery language; answer with the new text of every field you were given.
{family_rules}
Answer with JSON only, matching this schema:
{schema}"""

DESCRIBE_SYSTEM = """Describe the picture into the given fields, a few plain words or short
comma-separated phrases each, saying only what is visible. Answer with JSON only, matching:
{schema}"""


def _texts_model(name: str, fields: Sequence[str], hints: Mapping[str, str]) -> type[BaseModel]:
    definitions: dict[str, Any] = {
        field: (str, Field(description=hints.get(field, ""))) for field in fields
    }
    model: type[BaseModel] = create_model(
        name, __config__=ConfigDict(extra="forbid"), **definitions
    )
    return model


class FieldStages:
    def __init__(self, stages: OllamaStages) -> None:
        self.stages = stages

    async def interpret(
        self,
        feedback: str,
        fields: Sequence[ConceptField],
        *,
        history: list[str],
        picked: list[str],
        rejected: list[str],
        picture_notes: str | None = None,
    ) -> FieldChanges:
        answer_type = field_changes_model([f.name for f in fields])
        request: dict[str, Any] = {
            "fields": {f.name: {"text": f.text, "locked": f.locked} for f in fields},
            "feedback": feedback,
            "earlier_feedback": history,
            "picked_images": picked,
            "rejected_images": rejected,
        }
        if picture_notes:
            request["what_the_images_show"] = picture_notes
        system = FIELD_INTERPRETER_SYSTEM.format(schema=json.dumps(answer_type.model_json_schema()))
        config = self.stages.config.interpreter
        answer = await self.stages.ask(config, system, json.dumps(request, indent=1), answer_type)
        return from_answer(answer)

    async def engineer(
        self,
        work: Mapping[str, tuple[str, Changes]],
        *,
        family: str,
        avoid: list[str],
        picture_notes: str | None = None,
    ) -> dict[str, str]:
        """New texts for the fields in `work` (name → (text, its changes)); no other field."""
        if not work:
            return {}
        answer_type = _texts_model("EngineeredFields", list(work), {})
        request: dict[str, Any] = {
            "fields": {
                name: {"text": text, "changes": changes.model_dump()}
                for name, (text, changes) in work.items()
            },
            "avoid": avoid,
        }
        if picture_notes:
            request["what_the_images_show"] = picture_notes
        system = FIELD_ENGINEER_SYSTEM.format(
            family_rules=syntax_rules(family), schema=json.dumps(answer_type.model_json_schema())
        )
        config = self.stages.config.engineer
        answer = await self.stages.ask(config, system, json.dumps(request), answer_type)
        return {name: str(value) for name, value in answer}

    async def describe_into(self, image: bytes, fields: Mapping[str, str]) -> dict[str, str]:
        """Stage 3 into fields: field name → what the picture shows for it (`fields`: hints)."""
        await self.stages.require_vision()
        answer_type = _texts_model("DescribedFields", list(fields), fields)
        encoded = base64.b64encode(downscale_for_vision(image)).decode()
        system = DESCRIBE_SYSTEM.format(schema=json.dumps(answer_type.model_json_schema()))
        question = "Fill these fields from the picture: " + ", ".join(fields)
        answer = await self.stages.ask(
            self.stages.config.vision, system, question, answer_type, images=[encoded]
        )
        return {name: str(value).strip() for name, value in answer}


NEEDS_VISION = (
    "describing a pick into the fields needs a vision model: run Ollama with one "
    "(vision: in llm.yaml, e.g. minicpm-v) and start imgen-tui without --no-llm"
)


async def describe_into_fields(
    stages: OllamaStages | None, image: bytes, wanted: Mapping[str, str]
) -> dict[str, str]:
    """What a picked picture shows, per wanted field (name → hint); offline, a sentence why not."""
    if stages is None or not stages.config.vision.enabled:
        raise LlmError(NEEDS_VISION)
    if not wanted:
        return {}
    try:
        return await FieldStages(stages).describe_into(image, wanted)
    except LlmUnavailable as error:
        raise LlmError(f"{error}; {NEEDS_VISION}") from None
