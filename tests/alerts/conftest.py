"""Fixtures of the alert tests: a local Slack-compatible incoming-webhook receiver.

    async def test_x(slack_receiver):
        slack_receiver.url              # http://127.0.0.1:PORT/services/T000/B000/<secret>
        slack_receiver.fail(429, retry_after=1)   # answer 429 until told otherwise
        slack_receiver.fail(500)
        slack_receiver.recover()
        slack_receiver.posts            # JSON bodies accepted with 200, in order
        slack_receiver.refused          # (status, body) answered with an error

A real aiohttp server on a free port, stopped at teardown. Like Slack it answers ``ok`` with 200,
``Retry-After`` with 429, and rejects a post without text or blocks with 400.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from aiohttp import web


@dataclass
class SlackReceiver:
    url: str = ""
    secret: str = ""
    posts: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    status: int = 200
    retry_after: float | None = None

    def fail(self, status: int, retry_after: float | None = None) -> None:
        self.status, self.retry_after = status, retry_after

    def recover(self) -> None:
        self.status, self.retry_after = 200, None

    async def handle(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        if self.status != 200:
            self.refused.append((self.status, body))
            headers = {}
            if self.retry_after is not None:
                headers["Retry-After"] = str(self.retry_after)
            text = "rate_limited" if self.status == 429 else "internal_error"
            return web.Response(status=self.status, text=text, headers=headers)
        if not body.get("text") and not body.get("blocks"):
            return web.Response(status=400, text="no_text")
        self.posts.append(body)
        return web.Response(status=200, text="ok")


@pytest_asyncio.fixture
async def slack_receiver() -> AsyncIterator[SlackReceiver]:
    receiver = SlackReceiver(secret=secrets.token_hex(12))
    app = web.Application()
    app.router.add_post(f"/services/T000/B000/{receiver.secret}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/services/T000/B000/{receiver.secret}"
    try:
        yield receiver
    finally:
        await runner.cleanup()
