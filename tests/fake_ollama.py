"""A loopback HTTP server that speaks Ollama's /api/chat and /api/show, scripted per test.

It answers from a queue of replies and keeps every request, so tests can
check what the client sent (the schema in `format`, the options, images as
plain base64) as well as what the pipeline did with the answers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.loopback import serve


@dataclass
class Reply:
    content: str = ""
    done_reason: str = "stop"
    status: int = 200
    delay: float = 0.0


@dataclass
class FakeOllama:
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    pulled: set[str] = field(default_factory=set)
    vision_models: set[str] = field(default_factory=set)
    url: str = ""

    def answer(self, payload: object, **kwargs: Any) -> None:
        self.replies.append(Reply(json.dumps(payload), **kwargs))

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if body["model"] not in self.pulled:
            return web.json_response({"error": f"model '{body['model']}' not found"}, status=404)
        reply = self.replies.pop(0)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return web.json_response(
            {
                "model": body["model"],
                "created_at": "2026-11-21T12:00:00Z",
                "message": {"role": "assistant", "content": reply.content},
                "done": True,
                "done_reason": reply.done_reason,
            },
            status=reply.status,
        )

    async def _show(self, request: web.Request) -> web.Response:
        body = await request.json()
        model = body.get("model") or body.get("name")
        if model not in self.pulled:
            return web.json_response({"error": f"model '{model}' not found"}, status=404)
        capabilities = ["completion"] + (["vision"] if model in self.vision_models else [])
        return web.json_response({"modelfile": "", "model_info": {}, "capabilities": capabilities})


@asynccontextmanager
async def fake_ollama() -> AsyncIterator[FakeOllama]:
    fake = FakeOllama()
    app = web.Application()
    app.router.add_post("/api/chat", fake._chat)
    app.router.add_post("/api/show", fake._show)
    async with serve(app) as fake.url:
        yield fake
