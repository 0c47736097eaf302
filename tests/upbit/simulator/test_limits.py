"""Server-side limits: Remaining-Req, 429 then 418 with a growing ban, Origin, WS connects."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.upbit.simulator.helpers import wait_for

pytestmark = pytest.mark.integration


async def test_429_then_418_then_ban_ends(sim_factory) -> None:
    sim = await sim_factory(rate_limits=True, ban_base_s=0.5)
    async with httpx.AsyncClient(base_url=sim.base_url) as client:
        statuses = []
        for _ in range(40):
            r = await client.get("/v1/market/all")
            statuses.append(r.status_code)
            assert r.headers["remaining-req"].startswith("group=market; min=600; sec=")
            if r.status_code == 418:
                break
        assert 429 in statuses and statuses[-1] == 418
        assert statuses.index(429) < statuses.index(418)
        assert r.json()["error"]["name"] == "too_many_requests"
        assert (
            "0 seconds" in r.json()["error"]["message"]
            or "1 seconds" in r.json()["error"]["message"]
        )
        # other groups are independent
        assert (await client.get("/v1/ticker", params={"markets": "KRW-BTC"})).status_code == 200
        assert (await client.get("/v1/market/all")).status_code == 418

        async def unbanned() -> bool:
            return (await client.get("/v1/market/all")).status_code == 200

        await wait_for(unbanned, timeout=5)


async def test_origin_group(sim_factory) -> None:
    sim = await sim_factory(rate_limits=True)
    async with httpx.AsyncClient(
        base_url=sim.base_url, headers={"Origin": "https://example.com"}
    ) as client:
        first = await client.get("/v1/ticker", params={"markets": "KRW-BTC"})
        second = await client.get("/v1/ticker", params={"markets": "KRW-BTC"})
    assert first.status_code == 200
    assert first.headers["remaining-req"] == "group=origin; min=6; sec=0"
    assert second.status_code == 429


async def test_websocket_connect_limit(sim_factory) -> None:
    sim = await sim_factory(rate_limits=True)
    rejected = 0
    opened = []
    for _ in range(12):
        try:
            opened.append(await websockets.connect(sim.ws_url))
        except InvalidStatus as exc:
            assert exc.response.status_code in (429, 418)
            rejected += 1
    for ws in opened:
        await ws.close()
    assert rejected >= 1
    assert opened[0].response.headers["remaining-req"].startswith("group=websocket; min=300; sec=")


async def test_ws_message_rate_limit(simulator) -> None:
    async with websockets.connect(simulator.ws_url) as ws:
        for i in range(7):
            await ws.send(f'[{{"ticket":"t{i}"}},{{"type":"ticker","codes":["KRW-NOPE"]}}]')
        raw = await asyncio.wait_for(ws.recv(), 5)
    assert b"TOO_MANY_REQUESTS" in raw
