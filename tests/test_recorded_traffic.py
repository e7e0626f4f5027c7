"""Every message recorded from a real ComfyUI parses into the client's typed events."""

from __future__ import annotations

import pytest

from imgen_tui.comfy import GraphRejected
from imgen_tui.comfy.errors import graph_rejected
from imgen_tui.comfy.events import (
    Executed,
    Executing,
    ExecutionCached,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    Preview,
    Progress,
    Status,
    parse_binary,
    parse_message,
)
from imgen_tui.comfy.responses import HistoryEntry, ObjectInfo, QueueState, SystemStats
from tests.conftest import RECORDED, recorded_json, recorded_ws

WS_RECORDINGS = sorted(path.name for path in RECORDED.glob("*.jsonl"))


@pytest.mark.parametrize("name", WS_RECORDINGS)
def test_every_recorded_json_message_parses(name: str) -> None:
    known = {
        "status",
        "execution_start",
        "execution_cached",
        "executing",
        "progress",
        "executed",
        "execution_success",
        "execution_error",
        "execution_interrupted",
    }
    parsed = 0
    for entry in recorded_ws(name):
        if "json" not in entry:
            continue
        event = parse_message(entry["json"])
        if entry["json"]["type"] in known:
            assert event is not None, entry["json"]["type"]
            parsed += 1
        else:  # progress_state, feature_flags: newer or heavier messages are ignored
            assert event is None
    assert parsed > 0


def test_txt2img_run_decodes_to_the_documented_order() -> None:
    kinds = []
    for entry in recorded_ws("txt2img_ws.jsonl"):
        if "json" in entry:
            event = parse_message(entry["json"])
            if event is not None:
                kinds.append(type(event))
    assert kinds[:4] == [Status, Status, Status, ExecutionStart]
    assert kinds[4] is ExecutionCached
    assert kinds[-4:] == [Executed, ExecutionSuccess, Status, Executing]
    assert kinds.count(Progress) == 4


def test_recorded_run_carries_output_image_and_end_marker() -> None:
    events = [parse_message(e["json"]) for e in recorded_ws("txt2img_ws.jsonl") if "json" in e]
    executed = [e for e in events if isinstance(e, Executed)]
    assert executed[0].images[0].filename == "tui_test_00001_.png"
    assert executed[0].images[0].type == "output"
    end = events[-1]
    assert (
        isinstance(end, Executing) and end.node is None and end.prompt_id == executed[0].prompt_id
    )
    first_status = events[0]
    assert isinstance(first_status, Status) and first_status.sid is not None


def test_type1_preview_frame_decodes() -> None:
    frame = (RECORDED / "preview_frame_type1.bin").read_bytes()
    preview = parse_binary(frame)
    assert isinstance(preview, Preview)
    assert preview.format == "jpeg" and preview.prompt_id is None
    assert preview.image[:2] == b"\xff\xd8" and len(preview.image) == len(frame) - 8


def test_type4_preview_frame_carries_prompt_and_node() -> None:
    preview = parse_binary((RECORDED / "preview_frame_type4.bin").read_bytes())
    assert isinstance(preview, Preview)
    assert preview.prompt_id == "9a3b7ae2-ecd3-4f59-aa40-302249b3a5c3"
    assert preview.node_id == "5" and preview.format == "jpeg"
    assert preview.image[:2] == b"\xff\xd8"


def test_runtime_error_and_interrupt_messages() -> None:
    errors = [
        parse_message(e["json"]) for e in recorded_ws("runtime_error_ws.jsonl") if "json" in e
    ]
    failure = next(e for e in errors if isinstance(e, ExecutionError))
    assert failure.node_id == "10" and failure.node_type == "LoraLoader"
    assert "header too large" in failure.exception_message
    stops = [parse_message(e["json"]) for e in recorded_ws("interrupt_ws.jsonl") if "json" in e]
    stop = next(e for e in stops if isinstance(e, ExecutionInterrupted))
    assert stop.node_type == "KSampler"


def test_history_entries_parse() -> None:
    ok = recorded_json("history_prompt.json")["json"]
    ((prompt_id, entry),) = ok.items()
    parsed = HistoryEntry.from_json(prompt_id, entry)
    assert parsed.status == "success" and parsed.completed
    assert parsed.saved_images[0].filename == "tui_test_00001_.png"
    failed = recorded_json("runtime_error_history.json")["json"]
    ((failed_id, failed_entry),) = failed.items()
    broken = HistoryEntry.from_json(failed_id, failed_entry)
    assert broken.status == "error" and broken.error is not None
    assert broken.error.node_type == "LoraLoader"
    interrupted = recorded_json("interrupt.json")["history_after_interrupt"]["json"]
    ((stopped_id, stopped_entry),) = interrupted.items()
    assert HistoryEntry.from_json(stopped_id, stopped_entry).interrupted


def test_queue_pending_is_sorted_by_number() -> None:
    queue = QueueState.from_json(recorded_json("queue.json")["queue_with_pending"]["json"])
    assert [item.number for item in queue.pending] == [-20, 18, 19]
    assert queue.state_of("4b06333e-b28e-4706-b70a-1f3a7bf1a4a5") == "running"
    assert queue.state_of("39696fe6-6a1f-4c41-b410-bb7938c9b075") == "pending"
    assert queue.state_of("nope") is None


def test_system_stats_parse() -> None:
    stats = SystemStats.from_json(recorded_json("system_stats.json")["json"])
    assert stats.comfyui_version == "0.3.64"
    assert stats.vram_total == 25276510208


def test_object_info_reads_both_model_list_shapes() -> None:
    old_shape = ObjectInfo.from_json(recorded_json("object_info_ckpt.json")["json"])
    assert old_shape.checkpoints == ("tiny-sd15.safetensors",)
    combo_shape = ObjectInfo.from_json(recorded_json("object_info_upscale.json")["json"])
    assert combo_shape.upscale_models == ("tiny-compact-2x.safetensors",)
    assert ObjectInfo.from_json(recorded_json("object_info_unknown.json")["json"]).classes == {}


EXPECTED_SUMMARIES = {
    "unknown_ckpt_name": "node 1 CheckpointLoaderSimple: ckpt_name 'nope.safetensors' is not "
    "installed on gpu-draft",
    "missing_input_seed": "node 5 KSampler: required input seed is missing",
    "unknown_class_type": "Cannot execute because node NoSuchNode does not exist (Node ID '#8')",
    "value_below_min": "node 4 EmptyLatentImage: width 1 is below the minimum",
    "value_above_max": "node 5 KSampler: cfg 1000.0 is above the maximum",
    "bad_sampler_name": "node 5 KSampler: sampler_name 'nope' is not one of the allowed values",
    "wrong_link_type": "node 6 VAEDecode: vae is linked to an output of the wrong type",
    "no_output_nodes": "Prompt has no outputs",
}


@pytest.mark.parametrize("case", sorted(EXPECTED_SUMMARIES))
def test_recorded_rejections_become_one_readable_sentence(case: str) -> None:
    body = recorded_json("validation_error.json")[case]["json"]
    error = graph_rejected(body, "gpu-draft")
    assert isinstance(error, GraphRejected)
    assert EXPECTED_SUMMARIES[case] in str(error)
    assert str(error).startswith("gpu-draft rejected the graph: ")
    assert "\n" not in str(error)


def test_missing_models_are_listed_for_routing() -> None:
    body = recorded_json("validation_error.json")["unknown_ckpt_name"]["json"]
    assert graph_rejected(body, "gpu-draft").missing_models == ("nope.safetensors",)
