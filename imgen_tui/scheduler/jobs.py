"""What the scheduler is asked to run: a job's needs, not how to reach a node."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any

from imgen_tui.comfy.events import ImageRef
from imgen_tui.config import TIERS
from imgen_tui.graphs.graph import Graph
from imgen_tui.graphs.lora_stack import LoraStack, lora_stack
from imgen_tui.graphs.params import extract_parameters, read_values


class Priority(IntEnum):
    """Lower runs first: the operator's current round before background batches."""

    INTERACTIVE = 0
    BACKGROUND = 10


@dataclass(frozen=True)
class JobSpec:
    """One graph to run once, with what routing needs to know about it.

    `min_tier` is a preference with overflow (quality work), not a filter:
    "draft" means any capable node will do, the fastest first.
    """

    graph: Graph = field(repr=False)
    family: str
    needs: frozenset[str] = frozenset()
    width: int = 512
    height: int = 512
    steps: int = 20
    checkpoint: str | None = None
    loras: frozenset[str] = frozenset()  # LoRA files the graph loads: a node must have them
    #: the LoRAs and strengths that patch the model: a node whose last prompt had another
    #: stack re-patches its weights (LoRA-stack affinity avoids that)
    lora_stack: LoraStack = ()
    min_tier: str = "draft"
    priority: Priority = Priority.INTERACTIVE
    round_id: str | None = None
    time_limit: float = 300.0
    parent_image_id: str | None = None  # the image an img2img or upscale job starts from
    source_image: str | None = None  # its file: uploaded to whichever node takes the job
    #: (LoadImage node id, local file) of each reference image: uploaded like source_image
    reference_images: tuple[tuple[str, str], ...] = ()
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def from_graph(cls, graph: Graph, family: str, **options: Any) -> JobSpec:
        """Size, steps and checkpoint read from the graph; `options` override them."""
        values = read_values(graph)
        found: dict[str, Any] = {
            "width": int(values.get("width", 512)),
            "height": int(values.get("height", 512)),
            "steps": int(values.get("steps", 20)),
            "checkpoint": values.get("checkpoint"),
            "loras": frozenset(
                p.value
                for p in extract_parameters(graph)
                if p.kind == "lora_name" and isinstance(p.value, str)
            ),
            "lora_stack": lora_stack(graph),
        }
        needs = frozenset(options.pop("needs", frozenset()))
        if family in FAMILY_CAPABILITIES:
            needs |= {family}
        return cls(graph=graph, family=family, needs=needs, **{**found, **options})

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def to_json(self) -> str:
        """The whole spec, graph included: what the store keeps to run it again."""
        data = asdict(self)
        data["needs"] = sorted(self.needs)
        data["loras"] = sorted(self.loras)
        data["priority"] = int(self.priority)
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        """A spec as `to_json` wrote it; anything else is an UnreadableSpec saying what is wrong."""
        try:
            return cls._from_json(text)
        except (ValueError, TypeError, KeyError) as error:
            raise UnreadableSpec(f"its saved job cannot be read ({error})") from error

    @classmethod
    def _from_json(cls, text: str) -> JobSpec:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        data["needs"] = frozenset(data.get("needs", ()))
        data["loras"] = frozenset(data.get("loras", ()))
        data["lora_stack"] = tuple(
            (str(name), float(model), float(clip))
            for name, model, clip in data.get("lora_stack", ())
        )
        data["priority"] = Priority(data.get("priority", Priority.INTERACTIVE))
        data["reference_images"] = tuple(tuple(pair) for pair in data.get("reference_images", ()))
        return cls(**data)


class UnreadableSpec(ValueError):
    """A stored job whose spec is not one `JobSpec.to_json` wrote (damaged, or from elsewhere)."""


# Families that are also capabilities: an sdxl job needs an sdxl-capable node.
FAMILY_CAPABILITIES = frozenset({"sd15", "sdxl", "flux", "pony", "illustrious"})


def tier_rank(tier: str) -> int:
    return TIERS.index(tier) if tier in TIERS else 0


class JobState(IntEnum):
    QUEUED = 0  # waiting in the app (late binding)
    ASSIGNED = 1  # posted to a node, waiting in its queue
    RUNNING = 2
    DONE = 3
    FAILED = 4
    CANCELLED = 5

    @property
    def finished(self) -> bool:
        return self >= JobState.DONE


@dataclass(eq=False)
class Job:
    """A job's life in the scheduler; only the scheduler mutates it."""

    spec: JobSpec
    seq: int
    state: JobState = JobState.QUEUED
    node_id: str | None = None
    prompt_id: str | None = None
    attempts: int = 0
    last_error: str | None = None
    not_before: float = 0.0  # retry backoff: not dispatched before this monotonic time
    excluded: set[str] = field(default_factory=set)  # nodes that cannot run this graph
    #: nodes an attempt failed on for a reason that may pass (a refused POST, a cut
    #: download): a retry goes elsewhere while another node can run it
    avoided: set[str] = field(default_factory=set)
    switched_model: bool = False  # its node had another checkpoint loaded when it started
    adopted: bool = False  # posted by an earlier run, whose client id may get its events
    accepted: bool = False  # the node has answered the POST: asking after it now means something
    taken_back: bool = False  # moved once from a slow node's queue to a faster node: not again
    graph_sent: Graph | None = None  # what was posted (source image name filled in)
    #: (kind, reference LoadImage id, image) of the preprocessor maps the last run left on
    #: its node's temp folder: the keeper keeps them as images of their own
    reference_maps: tuple[tuple[str, str, ImageRef], ...] = ()
    #: this attempt's `executed` outputs by node, heard since its execution_start with no
    #: frame missed on the way; None: not heard whole, so /history says what it made
    heard_outputs: dict[str, Any] | None = None
    queued_at: float = 0.0
    posted_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    #: (step, monotonic time) of this attempt's first and latest progress event
    first_step: tuple[int, float] | None = None
    last_step: tuple[int, float] | None = None
    #: since when no live node could run it (it fails after its time limit unless told to wait)
    stranded_since: float | None = None

    def sampling(self) -> tuple[int, float] | None:
        """(steps, seconds) between this attempt's first and latest progress event."""
        if self.first_step is None or self.last_step is None:
            return None
        steps = self.last_step[0] - self.first_step[0]
        return (steps, self.last_step[1] - self.first_step[1]) if steps > 0 else None

    @property
    def job_id(self) -> str:
        return self.spec.job_id
