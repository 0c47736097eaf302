"""Shared helpers for the simulator tests: poll a condition with a deadline, read WS frames."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection


async def wait_for(
    cond: Callable[[], Awaitable[bool]], timeout: float = 10.0, every: float = 0.02
) -> None:
    """Poll ``cond`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await cond():
            return
        await asyncio.sleep(every)
    raise AssertionError("condition not met before the deadline")


async def frames(ws: ClientConnection, count: int, timeout: float = 10.0) -> list[Any]:
    """Receive ``count`` frames; each must be binary JSON."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        raw = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
        assert isinstance(raw, bytes), f"text frame: {raw!r}"
        out.append(json.loads(raw))
    return out


async def frames_until(
    ws: ClientConnection, pred: Callable[[Any], bool], timeout: float = 10.0
) -> list[Any]:
    """Receive frames until one satisfies ``pred`` (inclusive)."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        raw = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
        assert isinstance(raw, bytes)
        msg = json.loads(raw)
        out.append(msg)
        if pred(msg):
            return out


def sub(*types: dict[str, Any], fmt: str | None = None, ticket: str = "t1") -> str:
    body: list[dict[str, Any]] = [{"ticket": ticket}, *types]
    if fmt:
        body.append({"format": fmt})
    return json.dumps(body)
