"""LoRA-stack affinity: routing counts a re-patch, the simulator charges one, a sweep groups."""

from __future__ import annotations

import time

from imgen_tui.bench.lora_sweep import SWEEP_LORAS, lora_sweep_row, sweep_graphs
from imgen_tui.comfy import ComfyClient, NodeEventStream
from imgen_tui.comfy.run import run_prompt
from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.graphs import load_library, with_values
from imgen_tui.graphs.inject import LoraSpec, inject_loras
from imgen_tui.graphs.lora_stack import describe_stack, lora_stack
from imgen_tui.locations import bundled_dir
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.routing import NodeView, plan_tail, route
from imgen_tui.sim.node import SimulatedNode

LIBRARY = load_library([bundled_dir("workflows")])
BASE = LIBRARY["sd15_txt2img"].render({"prompt": "a heron", "steps": 4}, DEFAULT_MODELS)


def graph_with(*loras: LoraSpec, seed: int = 1) -> dict[str, object]:
    return with_values(inject_loras(BASE, list(loras)), {"seed": seed})


def job_with(*loras: LoraSpec, seed: int = 1) -> JobSpec:
    return JobSpec.from_graph(graph_with(*loras, seed=seed), "sd15")


def node(node_id: str, stack: tuple[tuple[str, float, float], ...] = ()) -> NodeView:
    return NodeView(
        id=node_id,
        tier="standard",
        state="up",
        capabilities=frozenset({"sd15"}),
        max_resolution=1024,
        loaded_checkpoint=DEFAULT_MODELS["sd15"],
        loaded_loras=stack,
        seconds_per_step={"sd15": 0.1},
        patch_seconds=2.0,
    )


DETAIL = LoraSpec("detail-tweaker.safetensors", 0.7)


def test_the_stack_is_files_and_strengths_and_a_zero_strength_lora_is_none() -> None:
    assert lora_stack(graph_with(DETAIL)) == (("detail-tweaker.safetensors", 0.7, 0.7),)
    assert lora_stack(graph_with(LoraSpec("detail-tweaker.safetensors", 0.0))) == ()
    two = graph_with(LoraSpec("b.safetensors", 1.0, 0.5), LoraSpec("a.safetensors", 0.4))
    assert lora_stack(two) == (("a.safetensors", 0.4, 0.4), ("b.safetensors", 1.0, 0.5))
    assert describe_stack(lora_stack(two)) == "a 0.4, b 1/0.5"
    assert describe_stack(()) == "no LoRA"
    spec = job_with(DETAIL)
    assert JobSpec.from_json(spec.to_json()).lora_stack == spec.lora_stack


def test_routing_prefers_the_node_already_patched_with_the_stack() -> None:
    job = job_with(DETAIL)
    patched = node("patched", job.lora_stack)
    plain = node("plain")
    assert plain.load_cost(job) == 2.0 and patched.load_cost(job) == 0.0
    assert route(job, [plain, patched]).best.node_id == "patched"  # type: ignore[union-attr]
    # without LoRAs the patched node has to unpatch: the plain one wins
    assert route(job_with(), [patched, plain]).best.node_id == "plain"  # type: ignore[union-attr]
    # another strength is another patch
    assert patched.load_cost(job_with(LoraSpec(DETAIL.name, 1.0))) == 2.0
    # affinity off: the first (equally fast) node, patch or not
    assert route(job, [plain, patched], affinity=False).best.node_id == "plain"  # type: ignore[union-attr]


def test_the_tail_plan_keeps_a_stack_on_the_node_that_has_it() -> None:
    jobs = [job_with(DETAIL, seed=1), job_with(DETAIL, seed=2), job_with(seed=3)]
    plan = plan_tail(jobs, [node("plain"), node("patched", jobs[0].lora_stack)])
    assert plan == {"patched": 0, "plain": 2}


async def test_the_simulator_charges_a_patch_only_when_the_stack_changes(
    client: ComfyClient, stream: NodeEventStream, sim_node: SimulatedNode
) -> None:
    sim_node.spec = sim_node.spec.model_copy(update={"patch_seconds": 0.3})
    timings = []
    for graph in (
        graph_with(DETAIL, seed=1),  # patch
        graph_with(DETAIL, seed=2),  # same stack: none
        graph_with(LoraSpec(DETAIL.name, 1.0), seed=3),  # another strength: patch
        graph_with(seed=4),  # back to no LoRA: unpatch
    ):
        started = time.monotonic()
        await run_prompt(client, stream, graph, time_limit=10)
        timings.append(time.monotonic() - started)
    assert sim_node.lora_patches == 3
    assert timings[1] < 0.3 <= min(timings[0], timings[2], timings[3])


async def test_a_sweep_re_patches_less_with_affinity() -> None:
    assert len(sweep_graphs()) == 32 and len(SWEEP_LORAS) == 4
    on = await lora_sweep_row(True, 0.1)
    off = await lora_sweep_row(False, 0.1)
    assert on.jobs == off.jobs == 32
    # 12 LoRA stacks (strength 0 is the baseline): at least 12 patches either way
    assert 12 <= on.patches < off.patches
