"""A LoRA stack as the flows hold it: which files at which strengths, and what each is for.

The explorer makes its cells with stacks; the funnel and the concept builder
take one carried in from a pick. Both make their jobs through `with_stack`,
so a job's graph and what routing is told it needs come from one place.

A LoRA's family (SD1.5, SDXL…) is carried beside its strengths because a
stack made on an SD1.5 checkpoint must not be patched into an SDXL one:
`fitting` keeps, for a graph of one family, only the LoRAs that fit it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from imgen_tui.flows.lora_catalog import FAMILY_LABELS, short_name
from imgen_tui.graphs.inject import LoraSpec, inject_loras
from imgen_tui.graphs.lora_stack import lora_stack
from imgen_tui.scheduler.jobs import JobSpec

#: LoRA families that patch the same network as a checkpoint family: Pony and
#: Illustrious are SDXL models, so their LoRAs load into an SDXL graph
ARCHITECTURE = {"pony": "sdxl", "illustrious": "sdxl"}


@dataclass(frozen=True, slots=True)
class StackLora:
    """One LoRA of a stack at its model and clip strengths.

    `family` is what the file was made for (None: nothing says). It describes
    the LoRA rather than what it does to the model, so it takes no part in
    equality: the same file at the same strengths is the same stack entry.
    """

    name: str
    model: float
    clip: float
    family: str | None = field(default=None, compare=False)

    @property
    def short(self) -> str:
        return short_name(self.name)

    def describe(self) -> str:
        if self.model == self.clip:
            return f"{self.short} {self.model:g}"
        return f"{self.short} {self.model:g}/{self.clip:g}"

    @property
    def family_label(self) -> str | None:
        return FAMILY_LABELS.get(self.family, self.family) if self.family else None

    def fits(self, family: str) -> bool:
        """A LoRA of unknown family fits every graph: nothing says it does not."""
        if self.family is None:
            return True
        return ARCHITECTURE.get(self.family, self.family) == ARCHITECTURE.get(family, family)

    def to_json(self) -> list[Any]:
        base: list[Any] = [self.name, self.model, self.clip]
        return [*base, self.family] if self.family else base

    @classmethod
    def from_json(cls, data: Any) -> StackLora | None:
        if not isinstance(data, list | tuple) or len(data) not in (3, 4):
            return None
        if not isinstance(data[0], str):
            return None
        family = data[3] if len(data) == 4 and isinstance(data[3], str) else None
        try:
            return cls(data[0], float(data[1]), float(data[2]), family)
        except (TypeError, ValueError):
            return None


Stack = tuple[StackLora, ...]


def describe_stack(stack: Stack) -> str:
    return ", ".join(lora.describe() for lora in stack) or "no LoRA"


def stack_to_json(stack: Stack) -> list[list[Any]]:
    return [lora.to_json() for lora in stack]


def stack_from_json(data: Any) -> Stack:
    if not isinstance(data, list):
        return ()
    return tuple(lora for lora in (StackLora.from_json(item) for item in data) if lora)


def stack_of_graph(graph: Any, family: str | None = None) -> Stack:
    """The stack a stored graph applied; `family` (the picture's) for LoRAs nothing else names."""
    return tuple(StackLora(name, model, clip, family) for name, model, clip in lora_stack(graph))


def fitting(stack: Stack, family: str) -> Stack:
    """The LoRAs of `stack` a graph of `family` can load."""
    return tuple(lora for lora in stack if lora.fits(family))


def with_stack(spec: JobSpec, stack: Stack) -> JobSpec:
    """The job with its graph carrying the LoRA chain, and routing told what it needs."""
    if not stack:
        return spec
    graph = inject_loras(spec.graph, [LoraSpec(lora.name, lora.model, lora.clip) for lora in stack])
    return dataclasses.replace(
        spec,
        graph=graph,
        loras=spec.loras | {lora.name for lora in stack},
        lora_stack=lora_stack(graph),
    )
