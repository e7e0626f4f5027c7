"""Running one prompt on a simulated node, message for message like ComfyUI.

Order, as recorded from a real server: execution_start, execution_cached, then
per node `executing`, per sampler step `progress` and a binary preview,
`executed` on each output, execution_success (or execution_error /
execution_interrupted), then the node's `status` and `executing` with a null
node.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from imgen_tui.comfy.ipadapter_presets import PresetError
from imgen_tui.graphs.graph import is_link
from imgen_tui.graphs.lora_stack import LoraStack, lora_stack
from imgen_tui.graphs.params import read_values
from imgen_tui.sim import images, video
from imgen_tui.sim.model_files import apply_lora_look
from imgen_tui.sim.references import (
    PREPROCESSORS,
    UNIFIED_LOADERS,
    apply_references,
    check_unified_loader,
    image_at,
    reference_load_ids,
)
from imgen_tui.sim.spec import SimNodeSpec, family_of_checkpoint

OOM_MESSAGE = (
    "Allocation on device 0 would exceed allowed memory. (out of memory)\n"
    "Currently allocated     : 3.71 GiB\nRequested               : 1.50 GiB"
)


@dataclass
class QueuedPrompt:
    number: int
    prompt_id: str
    graph: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]

    @property
    def client_id(self) -> str | None:
        value = self.extra_data.get("client_id")
        return None if value is None else str(value)

    def as_queue_item(self) -> list[Any]:
        return [self.number, self.prompt_id, self.graph, self.extra_data, self.outputs]


@dataclass
class Faults:
    """Failure injection: each counter makes that many coming prompts misbehave."""

    oom: int = 0
    hang: int = 0
    reject: int = 0
    truncate: int = 0  # downloads from /view, not prompts: cut the file in half


class NodeFailure(Exception):
    def __init__(self, node_id: str, node_type: str, exception_type: str, message: str) -> None:
        super().__init__(message)
        self.node_id, self.node_type, self.exception_type = node_id, node_type, exception_type


class PromptInterrupted(Exception):
    def __init__(self, node_id: str, node_type: str) -> None:
        super().__init__(node_id)
        self.node_id, self.node_type = node_id, node_type


Send = Callable[[str, dict[str, Any]], Awaitable[None]]
SendPreview = Callable[[bytes, dict[str, Any]], Awaitable[None]]


@dataclass
class NodeMemory:
    """What survives between prompts on one node: loaded model, caches, file counters."""

    loaded_checkpoint: str | None = None
    checkpoint_loads: int = 0
    lora_stack: LoraStack = ()  # what the loaded model is patched with
    lora_patches: int = 0
    signatures: dict[str, dict[str, Any]] = field(default_factory=dict)  # signature -> output
    counters: dict[str, int] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    #: (start, end) monotonic times of every prompt run, for idle-time measurements
    timeline: list[tuple[float, float]] = field(default_factory=list)


UPSCALE_TILE_SECONDS = 0.05  # how often a simulated upscale looks for an interrupt


class PromptRun:
    """Executes one queued prompt; the node supplies senders, state and its file root."""

    def __init__(
        self,
        item: QueuedPrompt,
        *,
        spec: SimNodeSpec,
        farm_models: dict[str, str],
        root: Path,
        memory: NodeMemory,
        faults: Faults,
        send: Send,
        send_preview: SendPreview,
        interrupted: Callable[[], bool],
        previews: bool,
    ) -> None:
        self.item, self.spec, self.farm_models, self.root = item, spec, farm_models, root
        self.memory, self.faults, self.previews = memory, faults, previews
        self.send, self.send_preview, self.interrupted = send, send_preview, interrupted
        self.graph = item.graph
        self.messages: list[list[Any]] = []
        self.outputs: dict[str, Any] = {}
        self.executed: list[str] = []
        self.current_node: str | None = None
        self._picture: Image.Image | None = None  # picture 0, rendered once for previews and saving
        self._source: Image.Image | None = None  # the LoadImage input, read once per run
        self._encoded = False  # a text encoder has run: its fixed cost is paid

    async def run(self) -> str:
        """Run to the end; returns the history status ("success" or "error")."""
        prompt_id = self.item.prompt_id
        self._source = await asyncio.to_thread(self._load_source)
        await self._message("execution_start", {"prompt_id": prompt_id, "timestamp": _now_ms()})
        order = self._execution_order()
        signatures = {node_id: self._signature(node_id) for node_id in order}
        cached = [node for node in order if signatures[node] in self.memory.signatures]
        await self._message(
            "execution_cached", {"nodes": cached, "prompt_id": prompt_id, "timestamp": _now_ms()}
        )
        # Like ComfyUI's default cache, only the previous prompt's outputs are kept:
        # switching back and forth between two checkpoints reloads each time.
        kept = {signatures[node]: self.memory.signatures[signatures[node]] for node in cached}
        for node_id in cached:
            output = kept[signatures[node_id]]
            if output:
                self.outputs[node_id] = output
                await self._executed(node_id, output)
        try:
            for node_id in order:
                if node_id in cached:
                    continue
                self.current_node = node_id
                await self.send(
                    "executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}
                )
                produced = await self._execute_node(node_id)
                self.executed.append(node_id)
                kept[signatures[node_id]] = produced or {}
                if produced:
                    self.outputs[node_id] = produced
                    await self._executed(node_id, produced)
        except NodeFailure as failure:
            await self._message(
                "execution_error",
                {
                    "prompt_id": prompt_id,
                    "node_id": failure.node_id,
                    "node_type": failure.node_type,
                    "executed": self.executed,
                    "exception_message": str(failure),
                    "exception_type": failure.exception_type,
                    "traceback": [],
                    "current_inputs": {},
                    "current_outputs": {},
                    "timestamp": _now_ms(),
                },
            )
            return "error"
        except PromptInterrupted as stop:
            await self._message(
                "execution_interrupted",
                {
                    "prompt_id": prompt_id,
                    "node_id": stop.node_id,
                    "node_type": stop.node_type,
                    "executed": self.executed,
                    "timestamp": _now_ms(),
                },
            )
            return "error"
        finally:
            self.memory.signatures = kept
        await self._message("execution_success", {"prompt_id": prompt_id, "timestamp": _now_ms()})
        return "success"

    async def _message(self, kind: str, data: dict[str, Any]) -> None:
        self.messages.append([kind, data])
        await self.send(kind, data)

    async def _executed(self, node_id: str, output: dict[str, Any]) -> None:
        await self.send(
            "executed",
            {
                "node": node_id,
                "display_node": node_id,
                "output": output,
                "prompt_id": self.item.prompt_id,
            },
        )

    # -- planning ---------------------------------------------------------------------

    def _execution_order(self) -> list[str]:
        order: list[str] = []
        seen: set[str] = set()

        def visit(node_id: str) -> None:
            if node_id in seen or node_id not in self.graph:
                return
            seen.add(node_id)
            for value in (self.graph[node_id].get("inputs") or {}).values():
                if is_link(value):
                    visit(value[0])
            order.append(node_id)

        for output in self.item.outputs:
            visit(output)
        return order

    def _signature(self, node_id: str) -> str:
        """A node's identity for caching: its class, literals and upstream signatures."""
        node = self.graph[node_id]
        parts: dict[str, Any] = {"class": node["class_type"]}
        for name, value in sorted((node.get("inputs") or {}).items()):
            parts[name] = [self._signature(value[0]), value[1]] if is_link(value) else value
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()

    # -- node behaviour ---------------------------------------------------------------------

    async def _execute_node(self, node_id: str) -> dict[str, Any] | None:
        node = self.graph[node_id]
        class_type, inputs = node["class_type"], node.get("inputs") or {}
        if video.handles(class_type):  # AnimateDiff's savers and interpolators: sim/video.py
            return await video.execute(self, node_id, class_type, inputs)
        if class_type == "CheckpointLoaderSimple":
            name = str(inputs.get("ckpt_name"))
            if "broken" in name:  # a corrupt file fails where real ComfyUI's loader does
                raise _corrupt_file(node_id, class_type)
            if self.memory.loaded_checkpoint != name:
                await asyncio.sleep(self.spec.load_seconds)
                self.memory.loaded_checkpoint = name
                self.memory.checkpoint_loads += 1
                self.memory.lora_stack = ()  # fresh weights: any LoRA is patched again
        elif class_type in ("LoraLoader", "LoraLoaderModelOnly") and "broken" in str(
            inputs.get("lora_name")
        ):
            raise _corrupt_file(node_id, class_type)
        elif class_type.startswith("CLIPTextEncode") and self.spec.fixed_seconds:
            if not self._encoded:  # the prompt's first encoding stands for all of them
                self._encoded = True
                await asyncio.sleep(self.spec.fixed_seconds / 2)
        elif class_type == "VAEDecode" and self.spec.fixed_seconds:
            # (no zero sleep without a fixed cost: a yield per node slows a busy shared loop)
            await asyncio.sleep(self.spec.fixed_seconds / 2)
        elif class_type in UNIFIED_LOADERS:  # presets find their files only now, as recorded
            family = family_of_checkpoint(self.farm_models, self.memory.loaded_checkpoint or "")
            try:
                check_unified_loader(inputs, self.spec.models, family != "sd15")
            except PresetError as error:
                raise NodeFailure(node_id, class_type, "Exception", f"{error}\n") from None
        elif class_type in ("KSampler", "KSamplerAdvanced"):
            await self._sample(node_id, class_type, inputs)
        elif class_type == "ImageUpscaleWithModel":
            await self._upscale(node_id)
        elif class_type in ("SaveImage", "PreviewImage"):
            return await self._save(class_type, inputs)
        elif class_type in PREPROCESSORS and self.spec.preprocess_seconds:
            await self._preprocess(node_id, class_type)
        return None

    async def _preprocess(self, node_id: str, class_type: str) -> None:
        """A detector model's run (DWPose takes seconds on a real GPU); an interrupt stops it."""
        remaining = self.spec.preprocess_seconds
        while remaining > 0:
            if self.interrupted():
                raise PromptInterrupted(node_id, class_type)
            await asyncio.sleep(min(remaining, UPSCALE_TILE_SECONDS))
            remaining -= UPSCALE_TILE_SECONDS

    async def _patch_loras(self) -> None:
        """Like ComfyUI's model patcher: another LoRA stack (or strength) re-patches the weights.

        Charged when the first sampler needs the model, once per change; going
        back to no LoRA unpatches, which costs the same.
        """
        stack = lora_stack(self.graph)
        if stack == self.memory.lora_stack:
            return
        self.memory.lora_stack = stack
        self.memory.lora_patches += 1
        if self.spec.patch_seconds:
            await asyncio.sleep(self.spec.patch_seconds)

    async def _sample(self, node_id: str, class_type: str, inputs: dict[str, Any]) -> None:
        if self.faults.oom > 0:
            self.faults.oom -= 1
            raise NodeFailure(node_id, class_type, "torch.OutOfMemoryError", OOM_MESSAGE)
        hang = self.faults.hang > 0
        if hang:
            self.faults.hang -= 1
        await self._patch_loras()
        steps = int(inputs.get("steps") or 1)
        width, height = self._output_size()
        family = family_of_checkpoint(self.farm_models, self.memory.loaded_checkpoint or "")
        per_step = self.spec.step_seconds(family, width, height) * max(1, self._batch_size())
        if self.spec.jitter:
            per_step *= self.memory.rng.uniform(1 - self.spec.jitter, 1 + self.spec.jitter)
        self._picture = await asyncio.to_thread(self._compose_picture, 0)
        step = 0
        while step < steps or hang:
            if self.interrupted():
                raise PromptInterrupted(node_id, class_type)
            await asyncio.sleep(per_step if not hang else 0.05)
            if hang:
                continue
            step += 1
            await self.send(
                "progress",
                {"value": step, "max": steps, "prompt_id": self.item.prompt_id, "node": node_id},
            )
            if self.previews:
                frame = await asyncio.to_thread(images.preview_frame, self._picture, step, steps)
                await self.send_preview(
                    frame,
                    {
                        "node_id": node_id,
                        "prompt_id": self.item.prompt_id,
                        "display_node_id": node_id,
                        "parent_node_id": None,
                        "real_node_id": node_id,
                    },
                )

    async def _upscale(self, node_id: str) -> None:
        width, height = self._output_size()
        remaining = self.spec.upscale_seconds * (width * height) / (1024 * 1024)
        while True:  # tile by tile, as ComfyUI's tiled upscale: an interrupt stops it between
            if self.interrupted():
                raise PromptInterrupted(node_id, "ImageUpscaleWithModel")
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, UPSCALE_TILE_SECONDS))
            remaining -= UPSCALE_TILE_SECONDS

    async def _save(self, class_type: str, inputs: dict[str, Any]) -> dict[str, Any]:
        folder_type = "output" if class_type == "SaveImage" else "temp"
        prefix = re.sub(r"[^A-Za-z0-9_.-]", "_", str(inputs.get("filename_prefix") or "ComfyUI"))
        # what this saver is given: a preprocessor's map (say) rather than the sampled picture
        own = await asyncio.to_thread(
            image_at, self.graph, inputs.get("images"), self.root / "input"
        )
        refs = []
        for index in range(1 if own is not None else self._batch_size()):
            counter = self.memory.counters.get(prefix, 0) + 1
            self.memory.counters[prefix] = counter
            filename = f"{prefix}_{counter:05}_.png"
            path = self.root / folder_type / filename
            await asyncio.to_thread(self._write_png, path, index, own)
            refs.append({"filename": filename, "subfolder": "", "type": folder_type})
        return {"images": refs}

    # -- pictures -----------------------------------------------------------------------

    def _write_png(self, path: Path, index: int, own: Image.Image | None = None) -> None:
        picture = own if own is not None else self._picture
        if picture is None or (index != 0 and own is None):
            picture = self._compose_picture(index)
        pnginfo = self.item.extra_data.get("extra_pnginfo")
        data = images.encode_png(
            picture, self.graph, pnginfo if isinstance(pnginfo, dict) else None
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def _compose_picture(self, index: int) -> Image.Image:
        values = read_values(self.graph)
        source = self._source
        width, height = self._output_size()
        if any(
            node.get("class_type") in ("KSampler", "KSamplerAdvanced")
            for node in self.graph.values()
        ):
            prompt = str(values.get("positive_prompt", values.get("prompt", "")))
            seed = int(values.get("seed") or 0) + index
            picture = images.render_picture(prompt, seed, *self._sampled_size())
            picture = apply_lora_look(picture, lora_stack(self.graph))
            denoise = float(values.get("denoise", 1.0))
            if source is not None and denoise < 1.0:
                picture = images.blend_with_source(picture, source, denoise)
            picture = apply_references(picture, self.graph, self.root / "input")
        elif (saved := self._saved_map()) is not None:  # e.g. LoadImage -> Canny -> PreviewImage
            return saved
        elif source is not None:
            picture = source.convert("RGB")
        else:
            picture = Image.new("RGB", (width, height), "gray")
        if picture.size != (width, height):
            picture = picture.resize((width, height), Image.Resampling.LANCZOS)
        return picture

    def _saved_map(self) -> Image.Image | None:
        for node in self.graph.values():
            if node.get("class_type") in ("SaveImage", "PreviewImage"):
                found = image_at(self.graph, node["inputs"].get("images"), self.root / "input")
                if found is not None:
                    return found
        return None

    def _load_source(self) -> Image.Image | None:
        references = reference_load_ids(self.graph)
        for node_id, node in self.graph.items():
            if node.get("class_type") == "LoadImage" and node_id not in references:
                path = self.root / "input" / str(node["inputs"].get("image"))
                if path.is_file():
                    with Image.open(path) as image:
                        image.load()
                        return image
        return None

    def _sampled_size(self) -> tuple[int, int]:
        for node in self.graph.values():
            inputs = node.get("inputs") or {}
            if node.get("class_type") in ("EmptyLatentImage", "EmptySD3LatentImage", "ImageScale"):
                return int(inputs.get("width") or 512), int(inputs.get("height") or 512)
        return self._source.size if self._source is not None else (512, 512)

    def _output_size(self) -> tuple[int, int]:
        width, height = self._sampled_size()
        for node in self.graph.values():
            if node.get("class_type") == "UpscaleModelLoader":
                match = re.search(r"(\d+)x", str(node["inputs"].get("model_name")))
                factor = int(match.group(1)) if match else 4
                return width * factor, height * factor
        return width, height

    def _batch_size(self) -> int:
        """Latents per sample: an empty batch's size, or what a keyframe batch chain adds up to."""
        for node in self.graph.values():
            if node.get("class_type") in ("EmptyLatentImage", "EmptySD3LatentImage"):
                return max(1, int(node["inputs"].get("batch_size") or 1))
        for node_id, node in self.graph.items():
            if node.get("class_type") in ("KSampler", "KSamplerAdvanced"):
                return video.latent_count(self.graph, node_id)
        return 1


def _corrupt_file(node_id: str, class_type: str) -> NodeFailure:
    """What ComfyUI raises for a model file that is not safetensors (recorded with a LoRA)."""
    return NodeFailure(
        node_id,
        class_type,
        "safetensors._safetensors_rust.SafetensorError",
        "Error while deserializing header: header too large\n",
    )


def _now_ms() -> int:
    return int(time.time() * 1000)
