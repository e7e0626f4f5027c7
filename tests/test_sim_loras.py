"""The simulator serves the LoRA discovery endpoints, so the demo shows every case."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from imgen_tui.comfy import ComfyClient
from imgen_tui.comfy.lora_cache import LoraDiscoveryCache
from imgen_tui.comfy.loras import discover_loras, lora_preview
from imgen_tui.sim.node import SimulatedNode


async def test_discovery_against_the_simulator_covers_every_metadata_case(
    sim_node: SimulatedNode, client: ComfyClient
) -> None:
    found = await discover_loras(client)
    assert found.error is None
    assert found.sources == ("object_info", "experiment_models", "view_metadata")
    names = [f.name for f in found.files]
    assert names == list(sim_node.spec.models["loras"])
    assert all(f.size is not None and f.size > 1_000_000 for f in found.files)
    detail = found.metadata["detail-tweaker.safetensors"]
    assert detail.family == "sd15" and detail.trigger_words[0] == "detailed"
    assert "film-grain.safetensors" not in found.metadata  # no header: a bare 404


async def test_simulator_metadata_failures_are_bare_404s(client: ComfyClient) -> None:
    for path, params in [
        ("/view_metadata/loras", {}),
        ("/view_metadata/loras", {"filename": "not-on-this-node.safetensors"}),
        ("/view_metadata/loras", {"filename": "detail-tweaker.ckpt"}),
        ("/view_metadata/no_such_folder", {"filename": "detail-tweaker.safetensors"}),
        ("/experiment/models/no_such_folder", {}),
    ]:
        response = await client.get(path, params=params)
        assert response.status_code == 404 and response.content == b"", path


async def test_the_simulator_serves_one_preview_and_404s_the_rest(client: ComfyClient) -> None:
    found = await discover_loras(client)
    files = {f.name: f for f in found.files}
    picture = await lora_preview(client, files["detail-tweaker.safetensors"])
    assert picture is not None
    with Image.open(io.BytesIO(picture)) as image:
        assert image.format == "WEBP" and image.size == (128, 128)
    assert await lora_preview(client, files["film-grain.safetensors"]) is None
    response = await client.get("/experiment/models/preview/loras/1/detail-tweaker.safetensors")
    assert response.status_code == 404


async def test_the_cache_skips_the_headers_until_the_file_list_changes(
    sim_node: SimulatedNode, client: ComfyClient, tmp_path: Path
) -> None:
    cache = LoraDiscoveryCache(tmp_path / "loras")
    first = await cache.discover(client, "node")
    assert "view_metadata" in first.sources and "cache" not in first.sources
    again = await cache.discover(client, "node")
    assert "cache" in again.sources
    assert again.files == first.files and dict(again.metadata) == dict(first.metadata)
    sim_node.spec.models["loras"].append("new-style.safetensors")  # a file copied onto the node
    sim_node._object_info_cache = None  # as ComfyUI rescans its folders on the next ask
    changed = await cache.discover(client, "node")
    assert "cache" not in changed.sources and "new-style.safetensors" in changed.names
    refreshed = await cache.discover(client, "node", refresh=True)
    assert "cache" not in refreshed.sources


async def test_a_garbled_cache_file_is_ignored(client: ComfyClient, tmp_path: Path) -> None:
    cache = LoraDiscoveryCache(tmp_path)
    cache.path_for(client, "node").write_text("{not json")
    found = await cache.discover(client, "node")
    assert found.error is None and "cache" not in found.sources
    assert "cache" in (await cache.discover(client, "node")).sources  # rewritten whole
