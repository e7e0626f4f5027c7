"""LoRA discovery: recorded ComfyUI answers parse, and a node missing endpoints degrades.

The loopback server here replays what a real ComfyUI 0.3.64 sent
(tests/fixtures/comfyui/lora_discovery_v2.json); variants drop or garble
endpoints the way older and customised servers do.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from imgen_tui.comfy import ComfyClient
from imgen_tui.comfy.lora_answers import (
    LoraFile,
    LoraMetadata,
    NodeLoras,
    family_from_metadata,
    files_from_experiment_models,
    lora_names_from_model_list,
    lora_names_from_object_info,
    parse_metadata,
    trigger_words,
)
from imgen_tui.comfy.loras import discover_loras, lora_preview
from tests.conftest import recorded_json
from tests.loopback import serve

RECORDED = recorded_json("lora_discovery_v2.json")
FIXTURE_DIR = Path(__file__).parent / "fixtures" / "comfyui"
NAMES = (
    "meta-lora.safetensors",
    "nometa-lora.safetensors",
    "styles/sub-lora.safetensors",
    "tiny-lora.safetensors",
)


def answer(path: str) -> Any:
    entry = RECORDED[path]
    return entry["json"] if "json" in entry else entry.get("text")


def as_combo(object_info: dict[str, Any]) -> dict[str, Any]:
    """The same answer in newer ComfyUI's `["COMBO", {"options": [...]}]` shape."""
    info = copy.deepcopy(object_info)
    spec = info["LoraLoader"]["input"]["required"]["lora_name"]
    info["LoraLoader"]["input"]["required"]["lora_name"] = [
        "COMBO",
        {**spec[1], "options": spec[0]},
    ]
    return info


# -- pure parsing against the recorded answers ------------------------------------------


def test_lora_names_from_both_combo_shapes() -> None:
    recorded = answer("/object_info/LoraLoader")
    assert lora_names_from_object_info(recorded) == NAMES
    assert lora_names_from_object_info(as_combo(recorded)) == NAMES


def test_a_non_loader_answer_is_not_a_file_list() -> None:
    assert lora_names_from_object_info(answer("/object_info/LoraLoaderModelOnly")) is None
    assert lora_names_from_object_info("<html>not found</html>") is None
    assert lora_names_from_object_info({"LoraLoader": {"input": {}}}) is None


def test_models_list_and_its_404() -> None:
    assert lora_names_from_model_list(answer("/models/loras")) == NAMES
    assert lora_names_from_model_list(answer("/models/no_such_folder")) is None
    assert lora_names_from_model_list([1, 2]) is None


def test_experiment_models_give_sizes_and_skip_garbage() -> None:
    files = files_from_experiment_models(answer("/experiment/models/loras"))
    assert set(files) == set(NAMES)
    assert files["meta-lora.safetensors"].size == 349568
    assert files["styles/sub-lora.safetensors"].path_index == 0
    assert files_from_experiment_models(answer("/experiment/models/no_such_folder")) == {}
    odd = files_from_experiment_models([{"name": "a.safetensors", "size": "big"}, 7, {"x": 1}])
    assert odd == {"a.safetensors": LoraFile(name="a.safetensors")}


def test_kohya_metadata_gives_family_triggers_and_title() -> None:
    metadata = parse_metadata(answer("/view_metadata/loras?filename=meta-lora.safetensors"))
    assert metadata == LoraMetadata(
        family="sd15",
        trigger_words=("red fox", "snow"),
        title="Meta LoRA (test)",
        base_model="tiny-sd15.safetensors",
    )


def test_minimal_and_missing_metadata_say_nothing() -> None:
    assert parse_metadata(answer("/view_metadata/loras?filename=tiny-lora.safetensors")) == (
        LoraMetadata()
    )
    assert parse_metadata(answer("/view_metadata/loras?filename=nometa-lora.safetensors")) == (
        LoraMetadata()
    )
    assert parse_metadata(["not", "a", "header"]) == LoraMetadata()


def test_tag_frequency_needs_a_second_parse_and_garbage_is_ignored() -> None:
    tags = json.dumps({"a": {"fox": 3, "snow": 9, "bad": "x"}, "b": {"fox": 8}, "c": [1]})
    assert trigger_words({"ss_tag_frequency": tags}) == ("fox", "snow")
    assert trigger_words({"ss_tag_frequency": "{not json"}) == ()
    assert trigger_words({"ss_tag_frequency": "[1, 2]"}) == ()
    assert trigger_words({"modelspec.trigger_phrase": "wcstyle", "ss_tag_frequency": tags}) == (
        "wcstyle",
        "fox",
        "snow",
    )
    many = json.dumps({"d": {f"tag{i}": i for i in range(20)}})
    assert trigger_words({"ss_tag_frequency": many}) == (
        "tag19",
        "tag18",
        "tag17",
        "tag16",
        "tag15",
    )


def test_family_from_the_header_only_when_it_says_so() -> None:
    assert family_from_metadata({"ss_base_model_version": "sdxl_base_v1-0"}) == "sdxl"
    assert (
        family_from_metadata(
            {"ss_base_model_version": "sdxl_base_v1-0", "ss_sd_model_name": "ponyDiffusionV6XL"}
        )
        == "pony"
    )
    assert (
        family_from_metadata(
            {
                "modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
                "ss_sd_model_name": "Illustrious-XL-v0.1.safetensors",
            }
        )
        == "illustrious"
    )
    assert family_from_metadata({"modelspec.architecture": "flux-1-dev/lora"}) == "flux"
    assert family_from_metadata({"ss_base_model_version": "sd_v1"}) == "sd15"
    assert family_from_metadata({"ss_network_dim": "4"}) is None
    assert family_from_metadata({"ss_base_model_version": "sd_v2"}) is None


# -- the client over loopback ---------------------------------------------------------------


Variant = Callable[[str, Any], Any]


def replay_app(variant: Variant | None = None) -> web.Application:
    """Answers as the recorded server did; `variant(path, answer)` may replace an answer
    (return a `web.Response` to send it as is)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        key = request.path
        if "filename" in request.query:
            key += f"?filename={request.query['filename']}"
        entry = RECORDED.get(key, {"status": 404, "text": ""})
        body: Any = web.Response(status=404)
        if entry["status"] == 200 and "saved_as" in entry:  # a picture, kept beside the JSON
            picture = (FIXTURE_DIR / entry["saved_as"]).read_bytes()
            body = web.Response(body=picture, content_type=entry["headers"]["content-type"])
        elif entry["status"] == 200:
            body = web.json_response(entry["json"])
        if variant is not None:
            body = variant(request.path, body)
        assert isinstance(body, web.StreamResponse)
        return body

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


async def test_a_real_servers_answers_give_files_sizes_and_metadata() -> None:
    async with serve(replay_app()) as url, ComfyClient(url, name="recorded") as client:
        found = await discover_loras(client)
    assert found.error is None
    assert tuple(f.name for f in found.files) == NAMES
    assert found.sources == ("object_info", "experiment_models", "view_metadata")
    assert {f.name: f.size for f in found.files}["tiny-lora.safetensors"] == 349008
    assert found.metadata["styles/sub-lora.safetensors"].trigger_words == ("red fox", "snow")
    assert found.metadata["meta-lora.safetensors"].family == "sd15"
    assert "nometa-lora.safetensors" not in found.metadata  # a bare 404: no header


async def test_a_preview_where_the_server_has_one_and_none_elsewhere() -> None:
    async with serve(replay_app()) as url, ComfyClient(url, name="recorded") as client:
        found = await discover_loras(client)
        files = {f.name: f for f in found.files}
        picture = await lora_preview(client, files["meta-lora.safetensors"])
        assert await lora_preview(client, files["tiny-lora.safetensors"]) is None  # recorded 404
        assert await lora_preview(client, LoraFile(name="missing.safetensors")) is None
    assert picture is not None and picture[:4] == b"RIFF" and picture[8:12] == b"WEBP"
    assert picture == (FIXTURE_DIR / "experiment_models_preview_meta-lora.webp").read_bytes()


async def test_an_unreachable_node_is_one_sentence_naming_it() -> None:
    async with ComfyClient("http://127.0.0.1:9", name="gpu-gone") as client:
        found = await discover_loras(client)
        assert await lora_preview(client, LoraFile(name="x.safetensors")) is None
    assert found.files == () and found.error is not None
    assert found.error.startswith("gpu-gone (http://127.0.0.1:9) is unreachable")


async def test_an_old_server_with_only_the_model_list_degrades_to_names() -> None:
    def only_models(path: str, body: Any) -> Any:
        return body if path == "/models/loras" else web.Response(status=404)

    async with serve(replay_app(only_models)) as url, ComfyClient(url, name="old") as client:
        found = await discover_loras(client)
    assert found == NodeLoras(
        node="old", files=tuple(LoraFile(name=name) for name in NAMES), sources=("models",)
    )


async def test_garbage_answers_cost_only_their_detail() -> None:
    def garbled(path: str, body: Any) -> Any:
        if path in ("/object_info/LoraLoader", "/experiment/models/loras"):
            return web.Response(text="<html>proxy says hi</html>", content_type="text/html")
        if path.startswith("/view_metadata"):
            return web.json_response("a string, not a header")
        return body

    async with serve(replay_app(garbled)) as url, ComfyClient(url, name="odd") as client:
        found = await discover_loras(client)
    assert found.error is None
    assert found.sources == ("models",)
    assert tuple(f.name for f in found.files) == NAMES
    assert found.metadata == {}


async def test_a_server_with_no_list_at_all_is_an_error_not_an_exception() -> None:
    async with (
        serve(replay_app(lambda path, body: web.Response(status=404))) as url,
        ComfyClient(url, name="bare") as client,
    ):
        found = await discover_loras(client)
    assert found.files == () and found.error is not None
    assert "bare" in found.error and "/models/loras" in found.error


async def test_an_unreachable_node_is_reported_not_raised() -> None:
    async with serve(replay_app()) as url:
        pass  # the server is gone once the block ends
    async with ComfyClient(url, name="gone") as client:
        found = await discover_loras(client)
    assert found.error is not None and "gone" in found.error
