"""What the simulator does beyond the wire format: pictures, img2img, upscale, faults."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageStat

from imgen_tui.comfy import ComfyClient, NodeEventStream, ProtocolError
from imgen_tui.comfy.run import run_prompt
from imgen_tui.config import DEFAULT_MODELS
from imgen_tui.graphs import load_library
from imgen_tui.locations import bundled_dir
from imgen_tui.sim.images import render_picture
from imgen_tui.sim.node import SimulatedNode

LIBRARY = load_library([bundled_dir("workflows")])


def difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def test_pictures_are_deterministic_and_seeds_look_different() -> None:
    first = render_picture("a red fox in snow", 1, 256, 256)
    assert difference(first, render_picture("a red fox in snow", 1, 256, 256)) == 0
    assert difference(first, render_picture("a red fox in snow", 2, 256, 256)) > 10


async def test_img2img_keeps_the_source_and_upscale_multiplies_its_size(
    client: ComfyClient, stream: NodeEventStream
) -> None:
    draft = LIBRARY["sd15_txt2img"].render({"prompt": "a red fox", "seed": 4}, DEFAULT_MODELS)
    source_entry = await run_prompt(client, stream, draft, time_limit=10)
    source_png = await client.download(source_entry.saved_images[0])
    uploaded = await client.upload_image(source_png, "draft.png")

    refine = LIBRARY["sdxl_img2img"].render(
        {"prompt": "a red fox", "image": uploaded.filename, "seed": 99, "denoise": 0.2},
        DEFAULT_MODELS,
    )
    refined_entry = await run_prompt(client, stream, refine, time_limit=10)
    refined = Image.open(io.BytesIO(await client.download(refined_entry.saved_images[0]))).convert(
        "RGB"
    )
    source = Image.open(io.BytesIO(source_png)).convert("RGB").resize(refined.size)
    unrelated = render_picture("a red fox", 99, *refined.size)
    assert refined.size == (1024, 1024)
    assert difference(refined, source) < difference(refined, unrelated)

    upscale = LIBRARY["upscale_esrgan"].render({"image": uploaded.filename}, DEFAULT_MODELS)
    upscaled_entry = await run_prompt(client, stream, upscale, time_limit=10)
    upscaled = Image.open(io.BytesIO(await client.download(upscaled_entry.saved_images[0])))
    assert upscaled.size == (2048, 2048)  # 4x-UltraSharp on a 512x512 draft


async def test_only_a_checkpoint_switch_loads_a_model(
    client: ComfyClient, stream: NodeEventStream, sim_node: SimulatedNode
) -> None:
    sd15 = LIBRARY["sd15_txt2img"].render({"prompt": "x", "seed": 1}, DEFAULT_MODELS)
    sd15_again = LIBRARY["sd15_txt2img"].render({"prompt": "x", "seed": 2}, DEFAULT_MODELS)
    sdxl = LIBRARY["sdxl_txt2img"].render({"prompt": "x", "seed": 1}, DEFAULT_MODELS)
    await run_prompt(client, stream, sd15, time_limit=10)
    assert (sim_node.loaded_checkpoint, sim_node.checkpoint_loads) == (DEFAULT_MODELS["sd15"], 1)
    await run_prompt(client, stream, sd15_again, time_limit=10)
    assert sim_node.checkpoint_loads == 1
    await run_prompt(client, stream, sdxl, time_limit=10)
    assert (sim_node.loaded_checkpoint, sim_node.checkpoint_loads) == (DEFAULT_MODELS["sdxl"], 2)


async def test_a_rejecting_node_answers_500_and_the_client_says_so(
    client: ComfyClient, sim_node: SimulatedNode
) -> None:
    sim_node.faults.reject = 1
    graph = LIBRARY["sd15_txt2img"].render({"prompt": "x"}, DEFAULT_MODELS)
    with pytest.raises(ProtocolError, match="gpu-test answered /prompt with HTTP 500"):
        await client.submit(graph)
    assert (await client.submit(graph)).prompt_id


async def test_front_puts_a_prompt_before_the_waiting_ones(
    client: ComfyClient, sim_node: SimulatedNode
) -> None:
    sim_node.faults.hang = 1
    graph = LIBRARY["sd15_txt2img"].render({"prompt": "x"}, DEFAULT_MODELS)
    blocker = await client.submit(
        graph | {"5": {**graph["5"], "inputs": {**graph["5"]["inputs"], "seed": 1}}}
    )
    later = await client.submit(
        graph | {"5": {**graph["5"], "inputs": {**graph["5"]["inputs"], "seed": 2}}}
    )
    urgent = await client.submit(
        graph | {"5": {**graph["5"], "inputs": {**graph["5"]["inputs"], "seed": 3}}}, front=True
    )
    queue = await client.queue()
    assert [item.prompt_id for item in queue.pending] == [urgent.prompt_id, later.prompt_id]
    await client.delete_queued([urgent.prompt_id, later.prompt_id])
    await client.interrupt(blocker.prompt_id)
