"""The routing policy: which nodes may run a job, and which would finish it first.

A pure function of a job and snapshots of the nodes, so it is tested alone and
the dispatcher can ask it on every free slot. Every refused node comes with a
reason a person can read ("gpu-draft: no sdxl"), so "why is nothing running"
always has an answer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from imgen_tui.graphs.lora_stack import LoraStack
from imgen_tui.scheduler.jobs import JobSpec, tier_rank
from imgen_tui.scheduler.speed import run_seconds

NodeState = Literal["up", "degraded", "down"]

DEGRADED_FACTOR = 1.5


@dataclass(frozen=True)
class NodeView:
    """What routing knows of one node at one moment."""

    id: str
    tier: str
    state: NodeState
    capabilities: frozenset[str]
    max_resolution: int
    busy_seconds: float = 0.0  # until it can start another job (its queue, others' included)
    loaded_checkpoint: str | None = None
    checkpoints: frozenset[str] | None = None  # installed; None until /object_info answered
    loras: frozenset[str] | None = None  # installed LoRA files; None until it answered
    seconds_per_step: Mapping[str, float] = field(default_factory=dict)  # at native size
    fixed_seconds: Mapping[str, float] = field(default_factory=dict)  # per job, any size
    load_seconds: float = 5.0
    loaded_loras: LoraStack = ()  # the stack its model is patched with once its queue has run
    patch_seconds: float = 1.5

    def run_seconds(self, job: JobSpec) -> float:
        return run_seconds(job, self.seconds_per_step, self.fixed_seconds)

    def below_tier(self, job: JobSpec) -> bool:
        """Whether this node is under the tier the job prefers (it may still overflow here)."""
        return tier_rank(self.tier) < tier_rank(job.min_tier)

    def load_cost(self, job: JobSpec) -> float:
        return self.switch_cost(job, self.loaded_checkpoint, self.loaded_loras)

    def switch_cost(self, job: JobSpec, checkpoint: str | None, loras: LoraStack) -> float:
        """Loading another checkpoint (then patching its LoRAs), or re-patching the loaded one.

        A job without a model (an upscale) leaves the loaded model alone, so it
        costs nothing and changes nothing.
        """
        if job.checkpoint is None:
            return 0.0
        if job.checkpoint != checkpoint:
            return self.load_seconds + (self.patch_seconds if job.lora_stack else 0.0)
        return self.patch_seconds if job.lora_stack != loras else 0.0


@dataclass(frozen=True)
class Choice:
    node_id: str
    finish_in: float  # estimated seconds from now until this node would finish the job
    note: str = ""


@dataclass(frozen=True)
class Routing:
    ranked: tuple[Choice, ...]
    refused: Mapping[str, str]

    @property
    def best(self) -> Choice | None:
        return self.ranked[0] if self.ranked else None

    def explain(self) -> str:
        """Why no node can take the job, in one sentence."""
        reasons = "; ".join(self.refused.values()) or "no nodes are configured"
        return f"no node can run this job: {reasons}"


def refusal(job: JobSpec, node: NodeView) -> str | None:
    """Why `node` can never run `job` right now, or None if it can."""
    if node.state == "down":
        return f"{node.id}: down"
    missing = sorted(job.needs - node.capabilities)
    if missing:
        return f"{node.id}: no {', '.join(missing)}"
    side = max(job.width, job.height)
    if side > node.max_resolution:
        return f"{node.id}: {side} px is over its {node.max_resolution} px limit"
    if node.checkpoints is not None and job.checkpoint and job.checkpoint not in node.checkpoints:
        return f"{node.id}: {job.checkpoint} is not installed"
    if node.loras is not None and not job.loras <= node.loras:
        return f"{node.id}: LoRA {', '.join(sorted(job.loras - node.loras))} is not installed"
    return None


def estimate(job: JobSpec, node: NodeView, *, affinity: bool = True) -> Choice:
    """When `node` would finish `job`, with the penalties routing applies.

    Affinity counts the checkpoint load or LoRA re-patch a node would need; a degraded node
    counts as slower; a node below the job's preferred tier counts its run
    twice, so quality work overflows to it only when the preferred tiers are
    that much busier.
    """
    run = node.run_seconds(job)
    finish = node.busy_seconds + run + (node.load_cost(job) if affinity else 0.0)
    notes = []
    if node.state == "degraded":
        finish *= DEGRADED_FACTOR
        notes.append("degraded")
    if node.below_tier(job):
        finish += run
        notes.append(f"overflow below {job.min_tier}")
    return Choice(node.id, finish, ", ".join(notes))


def route(job: JobSpec, nodes: Sequence[NodeView], *, affinity: bool = True) -> Routing:
    refused: dict[str, str] = {}
    choices: list[Choice] = []
    for node in nodes:
        reason = refusal(job, node)
        if reason is not None:
            refused[node.id] = reason
        else:
            choices.append(estimate(job, node, affinity=affinity))
    choices.sort(key=lambda choice: choice.finish_in)
    return Routing(ranked=tuple(choices), refused=refused)


def plan_tail(
    jobs: Sequence[JobSpec],
    nodes: Sequence[NodeView],
    *,
    affinity: bool = True,
    excluded: Sequence[Collection[str]] | None = None,
) -> dict[str, int]:
    """Which waiting job each node should start next, by earliest completion time.

    Near the end of a round, handing the last jobs to whichever node is free
    first lets a slow GPU finish after a fast one would have. Instead the
    remaining jobs are list-scheduled, in order, each onto the node that would
    complete it first (its current backlog included); a free node takes the
    first job this plan gives it, and stays idle if the plan gives it none.
    `excluded[i]` names nodes job i must not go to (they failed it before).
    A node below a job's preferred tier counts its run twice when the plan
    compares nodes (as `estimate` does), so quality work overflows down only
    when the preferred tiers are that much busier; its backlog grows by the
    real run. Returns node id -> index into `jobs`.
    """
    available = {node.id: node.busy_seconds for node in nodes}
    loaded = {node.id: node.loaded_checkpoint for node in nodes}
    patched = {node.id: node.loaded_loras for node in nodes}
    first: dict[str, int] = {}
    # A round's jobs mostly share one shape: judge each shape once per node.
    runs: dict[tuple[str, tuple[object, ...]], float | None] = {}
    for index, job in enumerate(jobs):
        shape = (job.family, job.steps, job.width, job.height, job.checkpoint, job.needs, job.loras)
        best_id, best_finish, best_rank = None, float("inf"), float("inf")
        for node in nodes:
            key = (node.id, shape)
            if key not in runs:
                factor = DEGRADED_FACTOR if node.state == "degraded" else 1.0
                runs[key] = None if refusal(job, node) else node.run_seconds(job) * factor
            run = runs[key]
            if run is None or (excluded and node.id in excluded[index]):
                continue
            switch = node.switch_cost(job, loaded[node.id], patched[node.id]) if affinity else 0.0
            finish = available[node.id] + switch + run
            ranked = finish + run if node.below_tier(job) else finish
            if ranked < best_rank:
                best_id, best_finish, best_rank = node.id, finish, ranked
        if best_id is None:
            continue
        available[best_id] = best_finish
        if job.checkpoint is not None:
            loaded[best_id], patched[best_id] = job.checkpoint, job.lora_stack
        first.setdefault(best_id, index)
        if len(first) == len(nodes):
            break
    return first
