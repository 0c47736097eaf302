"""Scenario and run-time faults through /_sim/."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.upbit.simulator.helpers import frames, sub, wait_for
from upbit_pipeline.upbit.simulator import Scenario

pytestmark = pytest.mark.integration


async def test_rest_5xx_and_429_bursts(simulator) -> None:
    async with httpx.AsyncClient(base_url=simulator.base_url) as client:
        assert (
            await client.post("/_sim/faults/rest_5xx", params={"seconds": 0.3})
        ).status_code == 200
        assert (await client.get("/v1/ticker", params={"markets": "KRW-BTC"})).status_code == 500

        async def healthy() -> bool:
            return (
                await client.get("/v1/ticker", params={"markets": "KRW-BTC"})
            ).status_code == 200

        await wait_for(healthy, timeout=5)
        await client.post("/_sim/faults/rest_429", params={"seconds": 5})
        assert (await client.get("/v1/market/all")).status_code == 429
        await client.post("/_sim/faults/clear")
        assert await healthy()
        status = (await client.get("/_sim/status")).json()
        assert status["markets"] == simulator.markets


async def test_drop_now_gives_1006(sim_factory) -> None:
    sim = await sim_factory(speed=10.0)
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(sub({"type": "ticker", "codes": ["KRW-BTC"]}))
        await frames(ws, 1)
        async with httpx.AsyncClient(base_url=sim.base_url) as client:
            assert (await client.post("/_sim/faults/drop")).json() == {"dropped": 1}
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is None


async def test_malformed_fraction_from_scenario(sim_factory) -> None:
    scenario = Scenario.from_dict({"faults": {"malformed_fraction": 0.5}})
    sim = await sim_factory(speed=30.0, scenario=scenario)
    bad = 0
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(sub({"type": "trade", "codes": ["KRW-BTC"]}))
        for _ in range(40):
            raw = await asyncio.wait_for(ws.recv(), 5)
            try:
                json.loads(raw)
            except ValueError:
                bad += 1
    assert 5 < bad < 35


async def test_scenario_file_round_trip(tmp_path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        '[[anomalies]]\nkind = "volume_spike"\nmarket = "krw-eth"\nstart = "+60s"\n'
        "duration_s = 30\nsize = 4\n"
        '[faults]\ndrop_ws_every_s = 30\nsilence = [{ start = "+10s", duration_s = 2 }]\n'
    )
    scenario = Scenario.load(path)
    assert scenario.anomalies[0].market == "KRW-ETH"
    assert scenario.anomalies[0].window(1_000) == (61_000, 91_000)
    assert scenario.faults.silence[0].bounds(0) == (10_000, 12_000)
