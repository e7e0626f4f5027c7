"""The simulator answers like the real ComfyUI that the fixtures were recorded from.

A simulated node shaped like the recording server receives the very requests
that were recorded, and its answers must have the recorded keys, types and,
where the server is deterministic, values. If the simulator drifts from
reality, these fail.
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from imgen_tui.sim.node import SimulatedNode
from tests.conftest import recorded_json, recorded_ws


def shape(value: Any) -> Any:
    """Keys and JSON types, with list items merged: what a client may rely on."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__


def assert_shape_covers(recorded: Any, actual: Any, where: str = "") -> None:
    """Everything the recording has, the simulator has too, with the same type."""
    if isinstance(recorded, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, item in recorded.items():
            assert key in actual, f"{where}.{key} is missing"
            assert_shape_covers(item, actual[key], f"{where}.{key}")
    elif isinstance(recorded, list) and recorded and actual:
        assert isinstance(actual, list), f"{where}: expected a list"
        assert_shape_covers(recorded[0], actual[0], f"{where}[0]")
    elif recorded not in ("null",) and actual != "null" and recorded != []:
        assert recorded == actual, f"{where}: {recorded} != {actual}"


VALIDATION_CASES = [
    "unknown_ckpt_name",
    "missing_input_seed",
    "unknown_class_type",
    "missing_class_type",
    "no_prompt_key",
    "no_output_nodes",
    "bad_value_type",
    "value_below_min",
    "value_above_max",
    "bad_sampler_name",
    "wrong_link_type",
]


@pytest.mark.parametrize("case", VALIDATION_CASES)
async def test_validation_answers_match_the_recording(
    recording_node: SimulatedNode, case: str
) -> None:
    recorded = recorded_json("validation_error.json")[case]
    async with httpx.AsyncClient(base_url=recording_node.url) as http:
        answer = await http.post("/prompt", json=recorded["request"]["json"])
    assert answer.status_code == recorded["status"]
    assert answer.json() == recorded["json"]


async def test_link_to_a_missing_node_is_reported_like_comfyui(
    recording_node: SimulatedNode,
) -> None:
    recorded = recorded_json("validation_error.json")["link_to_missing_node"]
    async with httpx.AsyncClient(base_url=recording_node.url) as http:
        answer = await http.post("/prompt", json=recorded["request"]["json"])
    assert answer.status_code == 400
    body = answer.json()
    expected = copy.deepcopy(recorded["json"])
    for payload in (body, expected):
        for error in payload["node_errors"]["6"]["errors"]:
            error["extra_info"].pop("traceback")
    assert body == expected


async def test_one_bad_output_still_queues_the_good_one(recording_node: SimulatedNode) -> None:
    recorded = recorded_json("validation_error.json")["one_output_invalid_others_ok"]
    async with httpx.AsyncClient(base_url=recording_node.url) as http:
        answer = await http.post("/prompt", json=recorded["request"]["json"])
    assert answer.status_code == 200
    body = answer.json()
    assert set(body["node_errors"]) == set(recorded["json"]["node_errors"])
    assert_shape_covers(shape(recorded["json"]), shape(body))


async def test_invalid_json_is_a_plain_text_500(recording_node: SimulatedNode) -> None:
    async with httpx.AsyncClient(base_url=recording_node.url) as http:
        answer = await http.post(
            "/prompt", content=b"{not json", headers={"content-type": "application/json"}
        )
    recorded = recorded_json("validation_error.json")["invalid_json_body"]
    assert answer.status_code == 500
    assert answer.text == recorded["body_text"]


def message_kinds(messages: list[dict[str, Any]]) -> list[str]:
    skipped = {"progress_state", "feature_flags"}
    kinds = []
    for entry in messages:
        if entry.get("binary"):
            kinds.append("<preview>")
        elif entry["type"] not in skipped:
            kinds.append(entry["type"])
    return kinds


async def _record_run(
    node: SimulatedNode, body: dict[str, Any], *, feature_flags: bool
) -> list[Any]:
    """Submit `body` with a fresh socket listening, and return what the socket saw."""
    client_id = body["client_id"]
    seen: list[dict[str, Any]] = []
    async with websockets.connect(f"ws://{node.host}:{node.port}/ws?clientId={client_id}") as ws:
        if feature_flags:
            await ws.send(
                json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
            )
        seen.append(json.loads(await ws.recv()))
        async with httpx.AsyncClient(base_url=node.url) as http:
            answer = await http.post("/prompt", json=body)
            assert answer.status_code == 200
        while True:
            frame = await asyncio.wait_for(ws.recv(), 10)
            if isinstance(frame, bytes):
                seen.append({"binary": True, "head": frame[:8]})
                continue
            message = json.loads(frame)
            seen.append(message)
            if message["type"] == "executing" and message["data"]["node"] is None:
                return seen


def _recorded_messages(name: str) -> list[dict[str, Any]]:
    return [entry.get("json", {"binary": True}) for entry in recorded_ws(name)]


async def test_txt2img_message_sequence_matches_the_recording(
    recording_node: SimulatedNode,
) -> None:
    body = recorded_json("txt2img_submit.json")["request"]["json"]
    seen = await _record_run(recording_node, body, feature_flags=False)
    recorded = _recorded_messages("txt2img_ws.jsonl")
    assert message_kinds(seen) == message_kinds(recorded)
    mine = [m for m in seen if m.get("type") not in (None, "progress_state")]
    theirs = [m for m in recorded if m.get("type") not in (None, "progress_state")]
    for ours, real in zip(mine, theirs, strict=True):
        assert_shape_covers(shape(real), shape(ours), ours["type"])
    first = seen[0]
    assert first["type"] == "status" and first["data"]["sid"] == body["client_id"]
    previews = [m for m in seen if m.get("binary")]
    assert all(p["head"] == b"\x00\x00\x00\x01\x00\x00\x00\x01" for p in previews)


async def test_feature_flags_switch_previews_to_type_4(recording_node: SimulatedNode) -> None:
    body = copy.deepcopy(recorded_json("txt2img_submit.json")["request"]["json"])
    body["prompt"]["5"]["inputs"]["seed"] = 2024
    seen = await _record_run(recording_node, body, feature_flags=True)
    previews = [m for m in seen if m.get("binary")]
    assert previews and all(p["head"][:4] == b"\x00\x00\x00\x04" for p in previews)


async def test_identical_resubmission_is_all_cached_and_makes_no_new_file(
    recording_node: SimulatedNode,
) -> None:
    body = recorded_json("txt2img_submit.json")["request"]["json"]
    first = await _record_run(recording_node, body, feature_flags=False)
    again = await _record_run(recording_node, body, feature_flags=False)
    assert message_kinds(again) == message_kinds(_recorded_messages("cached_rerun_ws.jsonl"))
    cached = next(m for m in again if m.get("type") == "execution_cached")
    assert sorted(cached["data"]["nodes"]) == sorted(body["prompt"])
    name = next(m for m in first if m.get("type") == "executed")["data"]["output"]["images"][0]
    assert (
        next(m for m in again if m.get("type") == "executed")["data"]["output"]["images"][0] == name
    )
    assert len(list((recording_node.root / "output").iterdir())) == 1


async def test_submit_and_history_answers_have_the_recorded_shape(
    recording_node: SimulatedNode,
) -> None:
    recorded_submit = recorded_json("txt2img_submit.json")
    body = copy.deepcopy(recorded_submit["request"]["json"])
    body["prompt_id"] = "11111111-2222-3333-4444-555555555555"
    body["prompt"]["5"]["inputs"]["seed"] = 77
    seen = await _record_run(recording_node, body, feature_flags=False)
    assert seen
    async with httpx.AsyncClient(base_url=recording_node.url) as http:
        history = (await http.get(f"/history/{body['prompt_id']}")).json()
        unknown = (await http.get("/history/not-a-real-id")).json()
        queue = (await http.get("/queue")).json()
    recorded_history = recorded_json("history_prompt.json")["json"]
    (recorded_entry,) = recorded_history.values()
    assert_shape_covers(shape(recorded_entry), shape(history[body["prompt_id"]]), "history")
    assert history[body["prompt_id"]]["prompt"][1] == body["prompt_id"]
    assert unknown == recorded_json("history_ops.json")["history_unknown_id"]["json"]
    assert queue == recorded_json("misc_get.json")["queue_idle"]["json"]


async def test_queue_front_delete_and_clear_behave_as_recorded(
    recording_node: SimulatedNode,
) -> None:
    recording_node.faults.hang = 1
    body = recorded_json("txt2img_submit.json")["request"]["json"]
    async with httpx.AsyncClient(base_url=recording_node.url) as http:
        ids = []
        for seed in (1, 2, 3):
            graph = copy.deepcopy(body)
            graph["prompt"]["5"]["inputs"]["seed"] = seed
            ids.append((await http.post("/prompt", json=graph)).json()["prompt_id"])
        front = copy.deepcopy(body)
        front["front"] = True
        front["prompt"]["5"]["inputs"]["seed"] = 4
        answer = (await http.post("/prompt", json=front)).json()
        assert answer["number"] < 0
        await asyncio.sleep(0.05)
        queue = (await http.get("/queue")).json()
        recorded_queue = recorded_json("queue.json")["queue_with_pending"]["json"]
        assert_shape_covers(shape(recorded_queue), shape(queue), "queue")
        assert (await http.post("/queue", json={"delete": [ids[1]]})).status_code == 200
        after = (await http.get("/queue")).json()
        assert ids[1] not in [item[1] for item in after["queue_pending"]]
        await http.post("/queue", json={"delete": [ids[0]]})  # running: unaffected
        assert (await http.get("/queue")).json()["queue_running"][0][1] == ids[0]
        await http.post("/queue", json={"clear": True})
        assert (await http.get("/queue")).json()["queue_pending"] == []
        await http.post("/interrupt", json={"prompt_id": ids[0]})


async def test_view_and_upload_answer_as_recorded(recording_node: SimulatedNode) -> None:
    recorded_view = recorded_json("view.json")
    recorded_upload = recorded_json("upload.json")
    async with httpx.AsyncClient(base_url=recording_node.url) as http:
        for case in ("view_missing", "view_dotdot", "view_bad_type", "view_no_filename"):
            url = recorded_view[case]["request"]["url"].split("8188", 1)[1]
            assert (await http.get(url)).status_code == recorded_view[case]["status"], case
        png = b"\x89PNG first"
        names = []
        for data, overwrite in ((png, False), (png, False), (b"other", False), (b"third", True)):
            answer = await http.post(
                "/upload/image",
                files={"image": ("tui_upload.png", data)},
                data={"overwrite": "true" if overwrite else "false"},
            )
            names.append(answer.json())
        assert names == [
            recorded_upload[case]["json"]
            for case in (
                "first_upload",
                "same_name_same_bytes",
                "same_name_different_bytes",
                "overwrite_true",
            )
        ]
        missing = await http.post("/upload/image", data={"type": "input"})
        assert missing.status_code == recorded_upload["missing_image_field"]["status"]


@pytest.mark.parametrize(
    ("fixture", "path"),
    [
        ("object_info_ckpt.json", "/object_info/CheckpointLoaderSimple"),
        ("object_info_lora.json", "/object_info/LoraLoader"),
        ("object_info_upscale.json", "/object_info/UpscaleModelLoader"),
        ("object_info_unknown.json", "/object_info/NoSuchNode"),
        ("system_stats.json", "/system_stats"),
        ("features.json", "/features"),
    ],
)
async def test_small_gets_have_the_recorded_shape(
    recording_node: SimulatedNode, fixture: str, path: str
) -> None:
    async with httpx.AsyncClient(base_url=recording_node.url) as http:
        answer = await http.get(path)
    recorded = recorded_json(fixture)
    assert answer.status_code == recorded["status"]
    assert_shape_covers(shape(recorded["json"]), shape(answer.json()), path)


async def test_model_folders_answer_like_comfyui(recording_node: SimulatedNode) -> None:
    recorded = recorded_json("models.json")
    async with httpx.AsyncClient(base_url=recording_node.url) as http:
        assert (await http.get("/models/checkpoints")).json() == recorded["/models/checkpoints"][
            "json"
        ]
        assert (await http.get("/models/nonexistent")).status_code == 404


async def test_upload_and_view_stay_inside_their_folder(
    recording_node: SimulatedNode, tmp_path: Path
) -> None:
    """Issue 12, item 23: an absolute `subfolder` used to write wherever it named."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (recording_node.root / "input" / "out").symlink_to(elsewhere)
    async with httpx.AsyncClient(base_url=recording_node.url) as http:
        for subfolder in (str(elsewhere), "../../elsewhere", "out", "a/../../.."):
            answer = await http.post(
                "/upload/image",
                files={"image": ("evil.sh", b"#!/bin/sh\n")},
                data={"subfolder": subfolder},
            )
            assert answer.status_code == 400, subfolder
            view = await http.get(
                "/view", params={"filename": "x.png", "subfolder": subfolder, "type": "input"}
            )
            assert view.status_code == 400, subfolder
        assert list(elsewhere.iterdir()) == []
        inside = await http.post(
            "/upload/image", files={"image": ("ok.png", b"png")}, data={"subfolder": "mine"}
        )
        assert inside.json() == {"name": "ok.png", "subfolder": "mine", "type": "input"}
        assert (recording_node.root / "input" / "mine" / "ok.png").read_bytes() == b"png"
        view = await http.get(
            "/view", params={"filename": "ok.png", "subfolder": "mine", "type": "input"}
        )
        assert view.content == b"png"
