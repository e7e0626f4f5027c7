"""Deterministic procedural pictures for the simulator.

The same (prompt, seed, size) always gives the same picture; another seed
gives a visibly different one, and the prompt sets the palette, so a grid of
drafts looks like a grid of drafts. Everything here is CPU work: callers run it
in a thread.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import json
import random
from typing import Any

from PIL import Image, ImageDraw, ImageFilter
from PIL.PngImagePlugin import PngInfo


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def render_picture(prompt: str, seed: int, width: int, height: int) -> Image.Image:
    palette_rng = random.Random(_stable_int(prompt))
    rng = random.Random(_stable_int(f"{prompt}\0{seed}"))
    hue = palette_rng.random()

    def colour(shift: float, saturation: float, value: float) -> tuple[int, int, int]:
        r, g, b = colorsys.hsv_to_rgb((hue + shift) % 1.0, saturation, value)
        return int(r * 255), int(g * 255), int(b * 255)

    # Draw small and scale up: cheap, and soft edges read as "painted".
    small_w, small_h = max(8, width // 4), max(8, height // 4)
    image = Image.new("RGB", (small_w, small_h))
    draw = ImageDraw.Draw(image)
    top, bottom = colour(0.0, 0.5, 0.35), colour(rng.uniform(-0.15, 0.15), 0.7, 0.9)
    for y in range(small_h):
        t = y / max(1, small_h - 1)
        draw.line(
            [(0, y), (small_w, y)],
            fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    for _ in range(rng.randint(4, 9)):
        cx, cy = rng.uniform(0, small_w), rng.uniform(0, small_h)
        radius = rng.uniform(0.08, 0.35) * min(small_w, small_h)
        box = (cx - radius, cy - radius * rng.uniform(0.5, 1.5), cx + radius, cy + radius)
        fill = colour(rng.uniform(-0.3, 0.3), rng.uniform(0.4, 1.0), rng.uniform(0.4, 1.0))
        if rng.random() < 0.6:
            draw.ellipse(box, fill=fill)
        else:
            draw.rectangle(box, fill=fill)
    image = image.filter(ImageFilter.GaussianBlur(radius=0.6))
    return image.resize((width, height), Image.Resampling.BICUBIC)


def blend_with_source(picture: Image.Image, source: Image.Image, denoise: float) -> Image.Image:
    """img2img stand-in: low denoise keeps the source, high denoise keeps the new picture."""
    source = source.convert("RGB").resize(picture.size, Image.Resampling.LANCZOS)
    return Image.blend(source, picture, max(0.0, min(1.0, denoise)))


def preview_frame(final: Image.Image, step: int, steps: int, max_side: int = 256) -> bytes:
    """A JPEG of the picture `step/steps` of the way out of the noise."""
    preview = final.copy()
    preview.thumbnail((max_side, max_side))
    noise = Image.effect_noise(preview.size, 64).convert("RGB")
    mixed = Image.blend(noise, preview, step / max(1, steps))
    buffer = io.BytesIO()
    mixed.save(buffer, format="JPEG", quality=70)
    return buffer.getvalue()


def encode_png(
    image: Image.Image, prompt: dict[str, Any], extra_pnginfo: dict[str, Any] | None
) -> bytes:
    """PNG with the text chunks ComfyUI's SaveImage writes: "prompt" and each extra_pnginfo key."""
    info = PngInfo()
    info.add_text("prompt", json.dumps(prompt))
    for key, value in (extra_pnginfo or {}).items():
        info.add_text(key, json.dumps(value))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=4)
    return buffer.getvalue()


def to_jpeg(data: bytes, quality: int) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
        return buffer.getvalue()
