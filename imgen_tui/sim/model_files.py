"""What a simulated node says about its model files: sizes, dates, safetensors headers.

Serves `/experiment/models`, `/experiment/models/{folder}`, the preview picture
`/experiment/models/preview/{folder}/{index}/{file}` and `/view_metadata/{folder}`
in the shapes ComfyUI 0.3.64 was recorded sending
(tests/fixtures/comfyui/lora_discovery_v2.json). The demo LoRAs cover every case
the LoRA explorer must show: kohya metadata, a bare SAI model spec, minimal
metadata, none at all, and one trained for another family than the demo's
SD1.5 checkpoint. Every failure is a bare 404, as upstream sends it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web
from PIL import Image

from imgen_tui.sim.spec import SimNodeSpec

#: when the simulated files were "copied" onto the nodes (2024-12-01), fixed so answers repeat
_FILE_TIME = 1733011200.0


def _kohya(
    *, base: str, model: str, output: str, tags: dict[str, int], architecture: str, title: str
) -> dict[str, str]:
    """A kohya sd-scripts header: every value a string, nested ones serialised JSON."""
    return {
        "ss_base_model_version": base,
        "ss_sd_model_name": model,
        "ss_output_name": output,
        "ss_network_module": "networks.lora",
        "ss_network_dim": "32",
        "ss_network_alpha": "16.0",
        "ss_num_epochs": "10",
        "ss_resolution": "(1024, 1024)" if "xl" in base else "(512, 512)",
        "ss_tag_frequency": json.dumps({"10_dataset": tags}),
        "ss_dataset_dirs": json.dumps({"10_dataset": {"n_repeats": 10, "img_count": 40}}),
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": architecture,
        "modelspec.title": title,
        "modelspec.date": "2024-11-20T12:00:00",
    }


DEMO_LORA_METADATA: dict[str, dict[str, str]] = {
    "detail-tweaker.safetensors": _kohya(
        base="sd_v1",
        model="v1-5-pruned-emaonly.safetensors",
        output="detail-tweaker",
        tags={"detailed": 38, "intricate details": 31, "sharp focus": 22, "1girl": 4},
        architecture="stable-diffusion-v1/lora",
        title="Detail Tweaker",
    ),
    # trained on SDXL: the wrong family for the demo's SD1.5 checkpoint
    "watercolor-style.safetensors": {
        **_kohya(
            base="sdxl_base_v1-0",
            model="sd_xl_base_1.0.safetensors",
            output="watercolor-style",
            tags={"watercolor": 52, "paper texture": 27, "soft edges": 19, "landscape": 11},
            architecture="stable-diffusion-xl-v1-base/lora",
            title="Watercolor Style XL",
        ),
        "modelspec.trigger_phrase": "wcstyle",
    },
    # only what some trainers write: network shape, no base model, no tags
    "cinematic-light.safetensors": {"ss_network_module": "networks.lora", "ss_network_dim": "16"},
    # film-grain.safetensors has no __metadata__ at all: /view_metadata answers 404
}


#: LoRAs that have a `.preview.png` next to them on the simulated nodes (the others: none)
DEMO_PREVIEWS = frozenset({"detail-tweaker.safetensors", "watercolor-style.safetensors"})


@dataclass
class PreviewLog:
    """What the preview route was asked, so a test can count refetches.

    `delay` holds each answer back (seconds); `cut` makes that many coming
    requests lose their connection with no answer, as when the node dies
    while sending it.
    """

    requests: Counter[str] = field(default_factory=Counter)
    delay: float = 0.0
    cut: int = 0


def preview_webp(name: str, side: int = 128) -> bytes:
    """A small WEBP as ComfyUI makes from `name.preview.png`: a gradient in a colour of its own."""
    digest = hashlib.sha256(name.encode()).digest()
    gradient = Image.linear_gradient("L").resize((side, side))
    tint = Image.new("RGB", (side, side), (digest[0], digest[1], digest[2]))
    picture = Image.merge("RGB", (gradient, gradient.rotate(90), gradient.rotate(180)))
    out = io.BytesIO()
    Image.blend(picture, tint, 0.5).save(out, "WEBP", quality=80)
    return out.getvalue()


def apply_lora_look(picture: Image.Image, stack: Iterable[tuple[str, float, float]]) -> Image.Image:
    """What a LoRA does to a simulated picture: its own tint over its own part of the frame.

    Each file gets a stable colour and region; the model strength sets how
    far that region moves toward the tint, so a sweep shows the effect grow
    and an A/B overlay finds each LoRA where it acts.
    """
    result = picture.convert("RGB")
    width, height = result.size
    for name, model, _clip in stack:
        digest = hashlib.sha256(name.encode()).digest()
        tint = Image.new("RGB", result.size, (digest[0], digest[1], digest[2]))
        left = digest[3] % 2 * width // 2
        top = digest[4] % 2 * height // 2
        box = (left, top, left + width // 2 + width // 4, top + height // 2 + height // 4)
        amount = min(1.0, abs(model)) * 0.6
        mask = Image.new("L", result.size, 0)
        mask.paste(round(255 * amount), box)
        result = Image.composite(tint, result, mask)
    return result


def file_size(folder: str, name: str) -> int:
    """A stable, plausible size: LoRAs 18-220 MB, other models 0.3-6.9 GB."""
    digest = int.from_bytes(hashlib.sha256(f"{folder}/{name}".encode()).digest()[:4], "big")
    if folder == "loras":
        return 18_000_000 + digest % 202_000_000
    return 300_000_000 + digest % 6_600_000_000


def experiment_listing(folder: str, names: Iterable[str]) -> list[dict[str, object]]:
    return [
        {
            "name": name,
            "pathIndex": 0,
            "modified": _FILE_TIME + index,
            "created": _FILE_TIME + index,
            "size": file_size(folder, name),
        }
        for index, name in enumerate(names)
    ]


def add_model_file_routes(
    app: web.Application,
    spec: Callable[[], SimNodeSpec],
    folders: Callable[[], set[str]],
    previews: PreviewLog | None = None,
) -> None:
    """Registers the routes; `spec` and `folders` are read per request so faults and
    edits to the node show at once."""

    async def folders_listing(request: web.Request) -> web.Response:
        return web.json_response(
            [
                {"name": name, "folders": [f"/opt/ComfyUI/models/{name}"]}
                for name in sorted(folders())
            ]
        )

    async def folder_listing(request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        if folder not in folders():
            return web.Response(status=404)
        return web.json_response(experiment_listing(folder, spec().models.get(folder, [])))

    async def view_metadata(request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        name = request.query.get("filename", "")
        if (
            folder not in folders()
            or not name.endswith(".safetensors")
            or name not in spec().models.get(folder, [])
        ):
            return web.Response(status=404)
        header = DEMO_LORA_METADATA.get(name) if folder == "loras" else None
        if header is None:
            return web.Response(status=404)
        return web.json_response(header)

    async def preview(request: web.Request) -> web.Response:
        folder, name = request.match_info["folder"], request.match_info["filename"]
        if previews is not None:
            previews.requests[name] += 1
            if previews.delay:
                await asyncio.sleep(previews.delay)
            if previews.cut > 0 and request.transport is not None:
                previews.cut -= 1
                request.transport.close()
                raise web.HTTPServiceUnavailable  # never sent: the connection is gone
        if (
            folder not in folders()
            or request.match_info["index"] != "0"
            or name not in spec().models.get(folder, [])
            or name not in DEMO_PREVIEWS
        ):
            return web.Response(status=404)
        body = await asyncio.to_thread(preview_webp, name)
        return web.Response(body=body, content_type="image/webp")

    app.router.add_get("/experiment/models", folders_listing)
    app.router.add_get("/experiment/models/preview/{folder}/{index}/{filename:.*}", preview)
    app.router.add_get("/experiment/models/{folder}", folder_listing)
    app.router.add_get("/view_metadata/{folder}", view_metadata)
