"""Asking one ComfyUI server which LoRAs it has, degrading endpoint by endpoint.

The loader's combo (`/object_info/LoraLoader`) is what a prompt may name, so it
is asked first; `/models/loras` stands in when that fails. Sizes come from
`/experiment/models/loras` and headers from `/view_metadata/loras`, both of
which older or customised servers lack: a 404 or garbage there costs only
that detail. Only a node that answers none of the list endpoints is an error.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import httpx

from imgen_tui.comfy.client import ComfyClient
from imgen_tui.comfy.errors import ComfyError
from imgen_tui.comfy.lora_answers import (
    LoraFile,
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


async def discover_loras(
    client: ComfyClient, node: str | None = None, *, known: NodeLoras | None = None
) -> NodeLoras:
    """Everything one node says about its LoRAs; never raises for a server's answer.

    `known` is an earlier discovery of this node (the cache): when the loader
    still lists exactly its files, it is returned as it is and the per-file
    header reads (one request per LoRA) are skipped.
    """
    node = node or client.name
    sources: list[str] = []
    try:
        first = await client.get("/object_info/LoraLoader")
    except ComfyError as error:  # nothing answered at all: the client's sentence says why
        return NodeLoras(node=node, error=str(error))
    names = lora_names_from_object_info(_json_of(first))
    if names is not None:
        sources.append("object_info")
        if known is not None and known.error is None and names == known.names:
            return replace(known, node=node, sources=(*sources, "cache"))
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


async def _optional_json(
    client: ComfyClient, path: str, params: dict[str, str] | None = None
) -> Any:
    """The JSON answer, or None for any failure: missing route, 404, non-JSON, no answer."""
    try:
        response = await client.get(path, params=params)
    except ComfyError:
        return None
    return _json_of(response)


def _json_of(response: httpx.Response) -> Any:
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


#: a preview is a thumbnail; anything bigger is not what the endpoint is for
PREVIEW_CAP = 4 * 1024 * 1024


async def lora_preview(client: ComfyClient, file: LoraFile) -> bytes | None:
    """The picture `/experiment/models/preview/loras/{index}/{file}` has for a LoRA, or None.

    ComfyUI answers a WEBP made from `name.preview.png` (or .jpg/.webp) next to
    the file and a bare 404 when there is none; older servers lack the route.
    None in every case but a picture, so the browser just shows no preview.
    """
    path = f"/experiment/models/preview/loras/{file.path_index or 0}/{quote(file.name, safe='/')}"
    try:
        response = await client.get(path)
    except ComfyError:
        return None
    kind = response.headers.get("content-type", "")
    if response.status_code != 200 or not kind.startswith("image/"):
        return None
    if not response.content or len(response.content) > PREVIEW_CAP:
        return None
    return response.content
