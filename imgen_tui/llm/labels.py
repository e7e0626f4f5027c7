"""Labels for images: a caption, tags and an NSFW flag from the stage-3 vision model.

The answer is constrained by `LabelAnswer`'s JSON Schema, like every other
stage, and kept in the store (searchable) and in the image's sidecar. A whole
session is labelled one image at a time with progress reported after each;
no vision model configured or reachable is one sentence before any work.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

from imgen_tui.llm.ollama_stages import LlmError, LlmUnavailable, OllamaStages, downscale_for_vision
from imgen_tui.store import ImageRecord, SessionStore
from imgen_tui.store.records import ImageLabel

MAX_TAGS = 12

LABEL_SYSTEM = """You label a generated picture for a searchable archive.
caption: one plain sentence saying what the picture shows.
tags: up to 12 short lower-case keywords (subjects, setting, style, colours).
nsfw: true only if the picture shows nudity, sexual content or graphic violence.
Answer with JSON only, matching this schema:
{schema}"""


class LabelAnswer(BaseModel):
    caption: str = Field(min_length=1, max_length=400)
    tags: list[str] = Field(max_length=MAX_TAGS)
    nsfw: bool


class NoVisionModel(LlmError):
    """Labelling cannot start: the sentence says which model, where, and what to do."""


@dataclass
class LabelRun:
    """What labelling a session did: counted as it goes, for the progress line."""

    total: int
    labelled: int = 0
    failed: list[str] = field(default_factory=list)  # one sentence per image that failed

    @property
    def done(self) -> int:
        return self.labelled + len(self.failed)


Progress = Callable[[LabelRun], None]


async def check_vision(stages: OllamaStages) -> None:
    """Raise `NoVisionModel` with the reason when labels cannot be made at all."""
    model, host = stages.config.vision.model, stages.config.host
    try:
        await stages.require_vision()
    except LlmUnavailable:
        raise NoVisionModel(
            f"labels need the vision model ({model}, vision: in llm.yaml) and no Ollama "
            f"answers at {host}; start Ollama (`ollama serve`) and `ollama pull {model}`"
        ) from None
    except LlmError as error:
        raise NoVisionModel(f"labels need a vision model: {error}") from None


async def label_picture(stages: OllamaStages, data: bytes) -> ImageLabel:
    """One picture's label from the vision model (its answer checked against the schema)."""
    stage = stages.config.vision
    small = await asyncio.to_thread(downscale_for_vision, data)
    encoded = base64.b64encode(small).decode()
    system = LABEL_SYSTEM.format(schema=json.dumps(LabelAnswer.model_json_schema()))
    answer = await stages.ask(stage, system, "Label this picture.", LabelAnswer, images=[encoded])
    tags = tuple(dict.fromkeys(tag.strip().lower() for tag in answer.tags if tag.strip()))
    return ImageLabel(
        caption=answer.caption.strip(), tags=tags, nsfw=answer.nsfw, model=stage.model
    )


async def label_images(
    store: SessionStore,
    stages: OllamaStages,
    images: Sequence[ImageRecord],
    progress: Progress | None = None,
) -> LabelRun:
    """Label each image in turn; one that fails is named and the rest go on."""
    await check_vision(stages)
    run = LabelRun(total=len(images))
    for image in images:
        try:
            data = await asyncio.to_thread(Path(image.path).read_bytes)
            label = await label_picture(stages, data)
            await store.set_label(image, label)
            run.labelled += 1
        except OSError as error:
            run.failed.append(f"{Path(image.path).name}: {error.strerror or error}")
        except LlmUnavailable as error:
            run.failed.append(f"{Path(image.path).name}: {error}")
            break  # Ollama went away: the rest would fail the same way
        except LlmError as error:
            run.failed.append(f"{Path(image.path).name}: {error}")
        if progress is not None:
            progress(run)
    return run


async def label_session(
    store: SessionStore,
    stages: OllamaStages,
    session_id: str,
    *,
    picked_only: bool = False,
    progress: Progress | None = None,
) -> LabelRun:
    """Every image of the session (or its picks) not labelled yet."""
    images = await store.images(session_id=session_id)
    known = await store.labels(session_id)
    wanted = [
        image
        for image in images
        if image.id not in known and (image.verdict == "picked" or not picked_only)
    ]
    return await label_images(store, stages, wanted, progress)
