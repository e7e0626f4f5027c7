"""Issue 17's remaining controls over loopback: pose maps kept, core style fallbacks, start/end.

Real scheduler, store and recorder against simulated nodes shaped for each
case: a node with the aux pack keeps the pose map as its own file; nodes
without ComfyUI_IPAdapter_plus carry a style with a style model or img2img and
say which in the sidecar; a node with no way at all is refused by routing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imgen_tui.comfy.responses import ObjectInfo
from imgen_tui.comfy.style_paths import style_path
from imgen_tui.comfy.websocket import Backoff
from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.flows.recorder import SessionRecorder
from imgen_tui.graphs.reference_pin import PinnedReference
from imgen_tui.graphs.references import (
    ReferenceUnavailable,
    bind_references,
    img2img_denoise,
    with_pinned_references,
)
from imgen_tui.scheduler.jobs import Job, JobSpec, JobState
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.sim.farm import SimFarm
from imgen_tui.sim.object_info import build_object_info
from imgen_tui.sim.references import POSE_COLOURS
from imgen_tui.sim.spec import SimNodeSpec
from imgen_tui.store import ImageRecord, SessionStore
from tests.test_scheduler_farm import LIBRARY

FIXTURES = Path(__file__).parent / "fixtures"
PHOTO = FIXTURES / "comfyui" / "sample_output.png"
CLIP_VISION = "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"
STYLE_MODEL = "coadapter-style-sd15v1.pth"


def sim_node(node_id: str, **changes: Any) -> SimNodeSpec:
    """An SD1.5 node with ControlNet files; `changes` give it packs, style files, speed."""
    models = {
        "checkpoints": [DEFAULT_MODELS["sd15"]],
        "controlnet": ["control_v11p_sd15_openpose.pth"],
        **changes.pop("models", {}),
    }
    return SimNodeSpec(
        id=node_id,
        tier=changes.pop("tier", "standard"),
        capabilities=changes.pop("capabilities", ("sd15", "controlnet")),
        seconds_per_step={"sd15": changes.pop("step", 0.002)},
        models=models,
        **changes,
    )


@dataclass
class Rig:
    sim: SimFarm
    store: SessionStore
    scheduler: Scheduler
    round_id: str
    session_id: str
    recorder: SessionRecorder

    async def run(self, specs: Sequence[JobSpec]) -> list[Job]:
        await self.store.add_jobs(self.round_id, [(s.job_id, s.to_json()) for s in specs])
        jobs = self.scheduler.submit_many(list(specs))
        await self.scheduler.wait_idle()
        return jobs

    async def image_of(self, job: Job) -> ImageRecord:
        images = await self.store.images(session_id=self.session_id)
        return next(image for image in images if image.job_id == job.job_id)


@asynccontextmanager
async def rig(tmp_path: Path, *nodes: SimNodeSpec) -> AsyncIterator[Rig]:
    sim = SimFarm(list(nodes), farm_models=dict(DEFAULT_MODELS), previews=False)
    await sim.start()
    store = await SessionStore.open(tmp_path / "data")
    recorder = SessionRecorder(store)
    scheduler = Scheduler(
        sim.config(),
        keeper=recorder,
        health_interval=0.2,
        retry_base=0.05,
        backoff=Backoff(first=0.05, cap=0.2),
    )
    await scheduler.start()
    session = await store.create_session("concept", "refs")
    round_info = await store.add_round(session.id, "drafts")
    try:
        yield Rig(sim, store, scheduler, round_info.id, session.id, recorder)
    finally:
        await scheduler.stop()
        await store.close()
        await sim.stop()


def job_with(
    pins: Sequence[PinnedReference], seed: int = 1, template: str = "sd15_txt2img"
) -> JobSpec:
    chosen = LIBRARY[template]
    graph = chosen.render({"prompt": "a fox in snow", "seed": seed, "steps": 2}, DEFAULT_MODELS)
    graph, images, needs = with_pinned_references(graph, chosen, list(pins))
    return JobSpec.from_graph(
        graph, "sd15", needs=frozenset(chosen.requires) | needs, reference_images=images
    )


def sidecar(image: ImageRecord) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(image.sidecar_path.read_text())
    return document


def classes(job: Job) -> set[str]:
    assert job.graph_sent is not None
    return {node["class_type"] for node in job.graph_sent.values()}


def is_pose_map(path: Path) -> bool:
    """Mostly black, with OpenPose's pure joint colours: not a photo, not the picture made."""
    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    counts: list[tuple[int, Any]] = list(picture.getcolors(1 << 20) or [])
    colours = {colour for _, colour in counts}
    dark = sum(count for count, colour in counts if max(colour) < 16)
    black = dark / (picture.width * picture.height)
    return black > 0.8 and {(255, 0, 0), (0, 0, 255), (0, 255, 0)} <= colours & set(POSE_COLOURS)


# -- 1. the pose map ---------------------------------------------------------------------------


async def test_the_pose_map_is_kept_as_its_own_image_once_per_reference(tmp_path: Path) -> None:
    aux = sim_node("gpu-aux", extra_classes=("comfyui_controlnet_aux",))
    pin = PinnedReference(kind="pose", path=str(PHOTO))
    async with rig(tmp_path, aux) as farm:
        jobs = await farm.run([job_with([pin], seed) for seed in (1, 2)])
        assert [job.state for job in jobs] == [JobState.DONE] * 2, [j.last_error for j in jobs]
        assert {"DWPreprocessor", "PreviewImage"} <= classes(jobs[0])
        entry = sidecar(await farm.image_of(jobs[0]))["references"][0]
        assert entry["kind"] == "pose" and entry["map_saved"] is True
        map_file = Path(entry["map"])
        assert map_file.parent.name == "references" and is_pose_map(map_file)
        assert json.loads(map_file.with_suffix(".json").read_text())["reference"] == str(PHOTO)
        # the map is not one of the round's pictures, and both jobs name the same file
        assert len(await farm.store.images(session_id=farm.session_id)) == 2
        second = sidecar(await farm.image_of(jobs[1]))["references"][0]
        assert second["map"] == entry["map"]
        assert sorted(p.name for p in map_file.parent.glob("*.png")) == [map_file.name]
    assert list((tmp_path / "data" / ".downloads").iterdir()) == []  # each read back, removed


async def test_a_node_without_the_aux_pack_keeps_no_map_and_says_nothing_false(
    tmp_path: Path,
) -> None:
    pin = PinnedReference(kind="pose", path=str(PHOTO))
    async with rig(tmp_path, sim_node("gpu-core")) as farm:
        [job] = await farm.run([job_with([pin])])
        assert job.state == JobState.DONE, job.last_error
        entry = sidecar(await farm.image_of(job))["references"][0]
        assert "map" not in entry and "map_saved" not in entry
        assert "DWPreprocessor" not in classes(job)


async def test_a_node_dying_mid_preprocess_hands_the_job_on_and_the_map_is_kept(
    tmp_path: Path,
) -> None:
    slow = sim_node(
        "gpu-slow-dwpose",
        tier="premium",
        step=0.0005,
        preprocess_seconds=5.0,
        extra_classes=("comfyui_controlnet_aux",),
    )
    other = sim_node(
        "gpu-other", tier="draft", step=0.01, extra_classes=("comfyui_controlnet_aux",)
    )
    pin = PinnedReference(kind="pose", path=str(PHOTO))
    async with rig(tmp_path, slow, other) as farm:
        spec = job_with([pin])
        await farm.store.add_jobs(farm.round_id, [(spec.job_id, spec.to_json())])
        [job] = farm.scheduler.submit_many([spec])
        victim = farm.sim.node("gpu-slow-dwpose")

        def preprocessing() -> bool:
            run = victim._run
            return (
                run is not None
                and run.graph.get(str(run.current_node), {}).get("class_type") == "DWPreprocessor"
            )

        for _ in range(1000):
            if preprocessing():
                break
            await _tick()
        assert preprocessing(), (job.state, job.node_id, job.last_error)
        await victim.kill()
        await farm.scheduler.wait_idle()
        assert job.state == JobState.DONE, job.last_error
        assert job.node_id == "gpu-other"
        entry = sidecar(await farm.image_of(job))["references"][0]
        assert is_pose_map(Path(entry["map"]))
        assert len(await farm.store.images(session_id=farm.session_id)) == 1


async def test_cancelling_mid_preprocess_stops_the_node_and_keeps_no_map(tmp_path: Path) -> None:
    slow = sim_node(
        "gpu-slow-dwpose", preprocess_seconds=2.0, extra_classes=("comfyui_controlnet_aux",)
    )
    pin = PinnedReference(kind="pose", path=str(PHOTO))
    async with rig(tmp_path, slow) as farm:
        spec = job_with([pin])
        await farm.store.add_jobs(farm.round_id, [(spec.job_id, spec.to_json())])
        [job] = farm.scheduler.submit_many([spec])
        node = farm.sim.node("gpu-slow-dwpose")

        def preprocessing() -> bool:
            run = node._run
            current = run.graph.get(str(run.current_node), {}) if run is not None else {}
            return current.get("class_type") == "DWPreprocessor"

        for _ in range(1000):
            if preprocessing():
                break
            await _tick()
        assert preprocessing()
        await farm.scheduler.cancel(job.job_id)
        await farm.scheduler.wait_idle()
        assert job.state == JobState.CANCELLED
        for _ in range(200):  # the interrupt reached the node: it stopped preprocessing
            if node._run is None:
                break
            await _tick()
        assert node._run is None
        assert await farm.store.images(session_id=farm.session_id) == []
        assert not list((farm.store.session_dir(farm.session_id) / "references").glob("*.png"))
        # and the next job runs there at once, map and all
        [again] = await farm.run([job_with([pin], seed=2)])
        assert again.state == JobState.DONE, again.last_error
        assert is_pose_map(Path(sidecar(await farm.image_of(again))["references"][0]["map"]))


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.01)


# -- 2. style without IP-Adapter -----------------------------------------------------------------


async def test_style_on_nodes_without_ipadapter_uses_a_core_path_and_says_which(
    tmp_path: Path,
) -> None:
    with_style_model = sim_node(
        "gpu-style-model", models={"style_models": [STYLE_MODEL], "clip_vision": [CLIP_VISION]}
    )
    core_only = sim_node("gpu-core-only")
    pin = PinnedReference(kind="style", path=str(PHOTO), strength=0.8, start=0.2, end=0.8)
    for node, via, used in (
        (with_style_model, "style model", {"StyleModelApply", "CLIPVisionEncode"}),
        (core_only, "img2img", {"VAEEncode", "ImageScale"}),
    ):
        async with rig(tmp_path / node.id, node) as farm:
            [job] = await farm.run([job_with([pin])])
            assert job.state == JobState.DONE, job.last_error
            assert used <= classes(job) and not any("IPAdapter" in c for c in classes(job))
            entry = sidecar(await farm.image_of(job))["references"][0]
            assert entry["kind"] == "style" and entry["via"] == via
            if via == "style model":
                assert STYLE_MODEL in entry["models"] and CLIP_VISION in entry["models"]
                assert (entry["strength"], entry["start"], entry["end"]) == (0.8, 0.2, 0.8)
                # the window, core's way: styled over 0.2-0.8, plain before and after
                assert job.graph_sent is not None
                ranges = sorted(
                    (n["inputs"]["start"], n["inputs"]["end"])
                    for n in job.graph_sent.values()
                    if n["class_type"] == "ConditioningSetTimestepRange"
                )
                assert ranges == [(0.0, 0.2), (0.2, 0.8), (0.8, 1.0)]
                assert "ConditioningCombine" in classes(job)
            else:
                assert entry["denoise"] == img2img_denoise(0.8) == 0.68
                assert entry["strength"] == 0.8
                assert "start" not in entry and "end" not in entry  # img2img has no window
            # and the sidecar's graph is what ran
            assert sidecar(await farm.image_of(job))["graph"] == job.graph_sent


async def test_the_style_img2img_fallback_shapes_the_picture_by_its_strength(
    tmp_path: Path,
) -> None:
    pins = [PinnedReference(kind="style", path=str(PHOTO), strength=s) for s in (0.0, 1.5)]
    async with rig(tmp_path, sim_node("gpu-core-only")) as farm:
        plain, strong = await farm.run([job_with([pin], seed=5) for pin in pins])
        with Image.open(PHOTO) as opened:
            photo = opened.convert("RGB").resize((64, 64))

        def distance(job: Job) -> float:
            from imgen_tui.sim.references import difference

            image = next(i for i in farm_images if i.job_id == job.job_id)
            with Image.open(image.path) as opened:
                return difference(opened.convert("RGB").resize((64, 64)), photo)

        farm_images = await farm.store.images(session_id=farm.session_id)
        assert distance(strong) < distance(plain) - 5  # closer to the reference when stronger


async def test_a_node_with_no_style_path_is_refused_by_routing_with_the_reason(
    tmp_path: Path,
) -> None:
    hopeless = sim_node("gpu-bare", missing_classes=("VAEEncode",))
    pin = PinnedReference(kind="style", path=str(PHOTO))
    async with rig(tmp_path, hopeless) as farm:
        runtime = farm.scheduler.nodes["gpu-bare"]
        for _ in range(500):
            if runtime.confirmed:
                break
            await _tick()
        assert "style" not in runtime.capabilities
        [job] = await farm.run([job_with([pin])])
        assert job.state == JobState.FAILED
        await farm.recorder.drain()
        [row] = await farm.store.jobs(farm.session_id)
        assert row.state == "failed"
        assert row.last_error == "no node can run this job: gpu-bare: no style"


def test_style_paths_follow_what_the_node_has() -> None:
    def via(family: str = "sd15", **changes: Any) -> str | None:
        path = style_path(ObjectInfo(build_object_info(sim_node("n", **changes), [])), family)
        return None if path is None else path.via

    ipadapter_files = {
        "clip_vision": [CLIP_VISION],
        "ipadapter": ["ip-adapter-plus_sd15.safetensors"],
    }
    assert via(extra_classes=("ComfyUI_IPAdapter_plus",), models=ipadapter_files) == "ipadapter"
    # the pack without its files would fail at run time: core carries it instead
    assert via(extra_classes=("ComfyUI_IPAdapter_plus",)) == "img2img"
    redux = {"style_models": ["flux1-redux-dev.safetensors"], "clip_vision": ["sigclip.st"]}
    assert via("flux", models=redux) == "style model"
    assert via("sd15", models=redux) == "img2img"  # Redux is not SD1.5's
    assert via(missing_classes=("VAEEncode",)) is None


def test_img2img_fallback_refuses_a_graph_that_already_has_a_source() -> None:
    template = LIBRARY["sd15_img2img"]
    graph = template.render(
        {"prompt": "a fox", "seed": 1, "steps": 2, "image": "src.png"}, DEFAULT_MODELS
    )
    pin = PinnedReference(kind="style", path=str(PHOTO))
    graph, _, _ = with_pinned_references(graph, template, [pin])
    info = ObjectInfo(build_object_info(sim_node("n"), []))
    with pytest.raises(ReferenceUnavailable, match="starts from an empty latent"):
        bind_references(graph, info, "sd15")


# -- 3. start and end --------------------------------------------------------------------------


def test_start_and_end_reach_both_kinds_of_apply_node() -> None:
    pins = [
        PinnedReference(kind="pose", path=str(PHOTO), start=0.1, end=0.6),
        PinnedReference(kind="face", path=str(PHOTO), start=0.2, end=0.9),
    ]
    graph = job_with(pins).graph
    control = next(n for n in graph.values() if n["class_type"] == "ControlNetApplyAdvanced")
    face = next(n for n in graph.values() if n["class_type"] == "IPAdapterFaceID")
    assert (control["inputs"]["start_percent"], control["inputs"]["end_percent"]) == (0.1, 0.6)
    assert (face["inputs"]["start_at"], face["inputs"]["end_at"]) == (0.2, 0.9)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ({"strength": 9, "start": -1, "end": 7}, (2.0, 0.0, 1.0)),
        ({"start": 0.9, "end": 0.3}, (0.8, 0.25, 0.3)),  # start kept before end
        ({"end": 0.0}, (0.8, 0.0, 0.05)),
    ],
)
def test_bad_values_in_a_saved_pin_are_clamped(
    given: dict[str, float], kept: tuple[float, float, float]
) -> None:
    pin = PinnedReference.model_validate({"kind": "pose", "path": "a.png", **given})
    assert (pin.strength, pin.start, pin.end) == kept


def test_a_pin_that_is_not_numbers_says_which_value() -> None:
    with pytest.raises(ValueError, match="finite"):
        PinnedReference.model_validate({"kind": "pose", "path": "a.png", "start": "nan"})


def test_nudges_move_a_step_and_stop_at_the_limits() -> None:
    pin = PinnedReference(kind="pose", path="a.png")
    assert pin.nudged("start", 2).start == 0.1
    assert pin.nudged("start", -3).start == 0.0
    assert pin.nudged("end", -4).end == 0.8
    narrow = pin.model_copy(update={"start": 0.5, "end": 0.55})
    assert narrow.nudged("start", 1) == narrow  # no closer to the end than one step
    assert narrow.nudged("end", -1) == narrow
    assert pin.nudged("strength", 30).strength == 2.0


@pytest.mark.parametrize("via", ["style model", "img2img"])
@pytest.mark.parametrize("template", ["sd15_txt2img", "sdxl_txt2img", "sd15_animatediff"])
def test_a_fallback_graph_validates_on_the_recorded_server(template: str, via: str) -> None:
    """Every node the fallback puts in is a recorded class with its inputs right, stacked with
    a pose, a narrow window and a batch; only the sampler's inputs outside the new path change."""
    from tests.test_references import problems

    chosen = LIBRARY[template]
    values = {"prompt": "a fox", "seed": 1, "steps": 2, "batch_size": 2}
    graph = chosen.render(values, DEFAULT_MODELS)
    pins = [
        PinnedReference(kind="pose", path=str(PHOTO)),
        PinnedReference(kind="style", path=str(PHOTO), start=0.3, end=0.9),
    ]
    injected, _, _ = with_pinned_references(graph, chosen, pins)
    controlnets = {"controlnet": ["control_v11p_sd15_openpose.pth", "thibaud_xl_openpose.st"]}
    # a file naming no family is taken for any (an SD1.5 coadapter would not serve SDXL)
    files = {"style_models": ["house_style.safetensors"], "clip_vision": [CLIP_VISION]}
    node = sim_node("n", models={**controlnets, **(files if via == "style model" else {})})
    bound = bind_references(injected, ObjectInfo(build_object_info(node, [])), chosen.family)
    assert problems(bound) == []
    assert not any("IPAdapter" in n["class_type"] for n in bound.values())
    load = next(n for n in bound.values() if n.get("_meta", {}).get("via"))
    assert load["_meta"]["via"] == via
    for node_id, original in graph.items():  # the user's nodes keep their class and literals
        assert bound[node_id]["class_type"] == original["class_type"]
        for name, value in original["inputs"].items():
            if not isinstance(value, list) and name != "denoise":
                assert bound[node_id]["inputs"][name] == value
