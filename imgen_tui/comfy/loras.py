"""Asking one ComfyUI server which LoRAs it has, degrading endpoint by endpoint.

The loader's combo (`/object_info/LoraLoader`) is what a prompt may name, so it
is asked first; `/models/loras` stands in when that fails. Sizes come from
`/experiment/models/loras` and headers from `/view_metadata/loras`, both of
which older or customised servers lack: a 404 or garbage there costs only
that detail. Only a node that answers none of the list endpoints is an error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from imgen_tui.comfy.client import ComfyClient
from imgen_tui.comfy.errors import ComfyError
from imgen_tui.comfy.lora_answers import (
    LoraMetadata,
    NodeLoras,
    files_from_experiment_models,
    lora_names_from_model_list,
    lora_names_from_object_info,
    merge_files,
    parse_metadata,
    wants_metadata,
)

#: metadata requests in flight per node: a header read is a small disk read, but a
#: farm with hundreds of LoRAs must not open hundreds of connections at once
METADATA_CONCURRENCY = 8


async def discover_loras(client: ComfyClient, node: str | None = None) -> NodeLoras:
    """Everything one node says about its LoRAs; never raises for a server's answer."""
    node = node or client.name
    sources: list[str] = []
    names = lora_names_from_object_info(await _optional_json(client, "/object_info/LoraLoader"))
    if names is not None:
        sources.append("object_info")
    else:
        names = lora_names_from_model_list(await _optional_json(client, "/models/loras"))
        if names is not None:
            sources.append("models")
    details = files_from_experiment_models(await _optional_json(client, "/experiment/models/loras"))
    if details:
        sources.append("experiment_models")
    if names is None and not details:
        return NodeLoras(
            node=node,
            error=f"{node} ({client.base_url}) listed no LoRAs: neither /object_info/LoraLoader "
            "nor /models/loras answered; check that ComfyUI runs there",
        )
    files = merge_files(names, details)
    metadata = await _all_metadata(client, [f.name for f in files if wants_metadata(f.name)])
    if metadata:
        sources.append("view_metadata")
    return NodeLoras(node=node, files=files, metadata=metadata, sources=tuple(sources))


async def _all_metadata(client: ComfyClient, names: list[str]) -> dict[str, LoraMetadata]:
    gate = asyncio.Semaphore(METADATA_CONCURRENCY)

    async def one(name: str) -> tuple[str, Any]:
        async with gate:
            return name, await _optional_json(
                client, "/view_metadata/loras", params={"filename": name}
            )

    answers = await asyncio.gather(*(one(name) for name in names))
    return {name: parse_metadata(data) for name, data in answers if isinstance(data, dict)}


async def _optional_json(client: ComfyClient, path: str, **kwargs: Any) -> Any:
    """The JSON answer, or None for any failure: missing route, 404, non-JSON, no answer."""
    try:
        response = await client._request("GET", path, **kwargs)
    except ComfyError:
        return None
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None
