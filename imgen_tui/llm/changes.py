"""What stage 1 says the operator wants: the contract between the stages.

The same model is the JSON Schema sent to Ollama as `format` (constrained
decoding), the schema quoted in the prompt, and the validator of the answer.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Changes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep: list[str] = Field(default_factory=list, description="phrases that must survive")
    remove: list[str] = Field(default_factory=list, description="phrases that must go")
    add: list[str] = Field(default_factory=list, description="new phrases to bring in")
    modify: dict[str, str] = Field(
        default_factory=dict, description="aspect (background, lighting…) → its new value"
    )
    emphasis_up: list[str] = Field(default_factory=list, description="phrases to weigh more")
    emphasis_down: list[str] = Field(default_factory=list, description="phrases to weigh less")

    def allowed_new(self) -> list[str]:
        """Phrases a new prompt may contain that the old one did not."""
        modified = [f"{value} {aspect}" for aspect, value in self.modify.items()]
        return [*self.add, *self.modify.values(), *modified, *self.emphasis_up, *self.keep]


class EngineeredPrompt(BaseModel):
    """Stage 2's answer."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    negative: str = ""
