"""The simulator serves the LoRA discovery endpoints, so the demo shows every case."""

from __future__ import annotations

from imgen_tui.comfy import ComfyClient
from imgen_tui.comfy.loras import discover_loras
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
        response = await client._request("GET", path, params=params)
        assert response.status_code == 404 and response.content == b"", path
