"""Stages 1, 2 and 3 on a local Ollama, each answer constrained by a JSON Schema.

Ollama realities handled here: the client has no timeout unless given one
(ours is long enough for a cold model load); `num_ctx` is the same on every
call of a model (a change reloads it); a model that is not pulled answers
404, which becomes the `ollama pull` command to run; a refused connection is
`LlmUnavailable`, on which the pipeline falls back to the rules; an answer
cut off by the context (`done_reason == "length"`) or not matching the
schema is asked for once more, with the validation error, then reported.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any, TypeVar

import httpx
import ollama
from PIL import Image
from pydantic import BaseModel, ValidationError

from imgen_tui.llm.changes import Changes, EngineeredPrompt
from imgen_tui.llm.config import LlmConfig, StageModel
from imgen_tui.llm.families import syntax_rules

AnswerT = TypeVar("AnswerT", bound=BaseModel)
VISION_MAX_PIXELS = 1_500_000


class LlmError(Exception):
    """A sentence for the operator: what went wrong with which model, and what to do."""


class LlmUnavailable(LlmError):
    """Nothing answers at the configured host: use the offline rules."""


class VisionAnswer(BaseModel):
    composition: str
    style: str
    mood: str
    colours: str

    def as_text(self) -> str:
        return (
            f"composition: {self.composition}; style: {self.style}; "
            f"mood: {self.mood}; colours: {self.colours}"
        )


INTERPRETER_SYSTEM = """You turn an image-generation operator's feedback into structured changes.
Use only what the feedback says or clearly implies; never add ideas of your own.
keep: phrases of the current prompt the operator wants to survive.
remove: phrases that must disappear. add: new phrases the operator asked for.
modify: an aspect (background, lighting, pose...) mapped to its new value.
emphasis_up / emphasis_down: phrases to weigh more or less.
When what the images show is given, traits of the picked image the feedback
asks for may be added and traits only the rejected image has may be removed.
Answer with JSON only, matching this schema:
{schema}"""

ENGINEER_SYSTEM = """You rewrite a Stable Diffusion prompt by applying structured changes.
Rules: apply exactly the changes given; never invent subjects, objects or styles;
keep every `keep` phrase; drop every `remove` phrase and everything in the avoid list;
no flowery language.
{family_rules}
Answer with JSON only, matching this schema:
{schema}"""


def downscale_for_vision(data: bytes) -> bytes:
    """At most ~1.5 MP, as PNG: vision models gain nothing from more and the upload shrinks."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        picture = image.convert("RGB")
    pixels = picture.width * picture.height
    if pixels > VISION_MAX_PIXELS:
        scale = (VISION_MAX_PIXELS / pixels) ** 0.5
        picture = picture.resize(
            (int(picture.width * scale), int(picture.height * scale)), Image.Resampling.LANCZOS
        )
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


class OllamaStages:
    def __init__(self, config: LlmConfig) -> None:
        self.config = config
        self.client = ollama.AsyncClient(host=config.host, timeout=config.timeout_seconds)

    async def interpret(
        self,
        feedback: str,
        prompt: str,
        *,
        history: list[str],
        picked: list[str],
        rejected: list[str],
        picture_notes: str | None = None,
    ) -> Changes:
        request: dict[str, Any] = {
            "current_prompt": prompt,
            "feedback": feedback,
            "earlier_feedback": history,
            "picked_images": picked,
            "rejected_images": rejected,
        }
        if picture_notes:
            request["what_the_images_show"] = picture_notes
        user = json.dumps(request, indent=1)
        system = INTERPRETER_SYSTEM.format(schema=json.dumps(Changes.model_json_schema()))
        return await self.ask(self.config.interpreter, system, user, Changes)

    async def engineer(
        self,
        prompt: str,
        changes: Changes,
        *,
        family: str,
        avoid: list[str],
        style: str | None = None,
        picture_notes: str | None = None,
    ) -> EngineeredPrompt:
        request: dict[str, Any] = {
            "current_prompt": prompt,
            "changes": changes.model_dump(),
            "avoid": avoid,
        }
        if style:
            request["style"] = style
        if picture_notes:
            request["what_the_images_show"] = picture_notes
        system = ENGINEER_SYSTEM.format(
            family_rules=syntax_rules(family),
            schema=json.dumps(EngineeredPrompt.model_json_schema()),
        )
        return await self.ask(self.config.engineer, system, json.dumps(request), EngineeredPrompt)

    async def has_vision(self) -> bool:
        try:
            shown = await self.client.show(self.config.vision.model)
        except Exception as error:
            raise self._explain(error, self.config.vision) from None
        return "vision" in (shown.capabilities or [])

    async def require_vision(self) -> None:
        stage = self.config.vision
        if not await self.has_vision():
            raise LlmError(
                f"model {stage.model} on {self.config.host} cannot see images; "
                "set a vision model (e.g. minicpm-v) under vision: in llm.yaml"
            )

    async def describe(self, image: bytes, question: str) -> str:
        """Stage 3: what the picture shows, for stage 2 to work from."""
        stage = self.config.vision
        await self.require_vision()
        encoded = base64.b64encode(downscale_for_vision(image)).decode()
        schema = json.dumps(VisionAnswer.model_json_schema())
        system = f"Describe the picture plainly. Answer with JSON only, matching:\n{schema}"
        answer = await self.ask(stage, system, question, VisionAnswer, images=[encoded])
        return answer.as_text()

    async def ask(
        self,
        stage: StageModel,
        system: str,
        user: str,
        answer_type: type[AnswerT],
        images: list[str] | None = None,
    ) -> AnswerT:
        """One constrained chat call, asked once more with the error if the answer is wrong."""
        user_message: dict[str, Any] = {"role": "user", "content": user}
        if images:
            user_message["images"] = images  # plain base64, no data: prefix
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}, user_message]
        problem = ""
        for _attempt in range(2):
            try:
                response = await self.client.chat(
                    model=stage.model,
                    messages=messages,
                    format=answer_type.model_json_schema(),
                    options={"num_ctx": stage.num_ctx, "temperature": stage.temperature},
                    keep_alive=self.config.keep_alive,
                    stream=False,
                )
            except Exception as error:
                raise self._explain(error, stage) from None
            content = response.message.content or ""
            if response.done_reason == "length":
                problem = f"the answer was cut off at num_ctx {stage.num_ctx}"
            else:
                try:
                    return answer_type.model_validate_json(content)
                except ValidationError as error:
                    problem = f"the answer did not match the schema ({error.error_count()} errors)"
                    messages += [
                        {"role": "assistant", "content": content},
                        {
                            "role": "user",
                            "content": f"That did not match the schema: {error}. "
                            "Answer again with JSON only.",
                        },
                    ]
        raise LlmError(f"model {stage.model} failed twice: {problem}; try again or use --no-llm")

    def _explain(self, error: Exception, stage: StageModel) -> LlmError:
        host = self.config.host
        if isinstance(error, ollama.ResponseError) and error.status_code == 404:
            return LlmError(
                f"model {stage.model} is not pulled on {host}: run `ollama pull {stage.model}`"
            )
        if isinstance(error, httpx.TimeoutException):
            return LlmError(
                f"model {stage.model} on {host} did not answer within "
                f"{self.config.timeout_seconds:g} s (timeout_seconds in llm.yaml)"
            )
        if isinstance(error, httpx.ConnectError | ConnectionError):
            return LlmUnavailable(f"no Ollama answers at {host}")
        return LlmError(f"model {stage.model} on {host} failed: {error}")
