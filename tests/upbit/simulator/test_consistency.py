"""The tape is one function: WS trades, REST candles, tickers and admin truth all agree."""

from __future__ import annotations

import json
from datetime import UTC
from decimal import Decimal

import httpx
import pytest
import websockets

from tests.upbit.simulator.helpers import frames, frames_until, sub
from upbit_pipeline.upbit.simulator import Scenario

pytestmark = pytest.mark.integration

MIDNIGHT = 1773273600000  # 2026-03-12T00:00:00Z


def _dec(raw: bytes) -> dict:
    return json.loads(raw, parse_float=Decimal)


async def test_rest_minute_candle_equals_ws_trades(sim_factory) -> None:
    sim = await sim_factory(speed=60.0)
    trades: list[dict] = []
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(sub({"type": "trade", "codes": ["KRW-BTC"], "is_only_realtime": True}))
        first = _dec(await ws.recv())
        minute = first["trade_timestamp"] // 60_000 + 1  # the first minute we see from its start
        while True:
            msg = _dec(await ws.recv())
            if msg["trade_timestamp"] // 60_000 > minute:
                break
            if msg["trade_timestamp"] // 60_000 == minute:
                trades.append(msg)
    to = (minute + 1) * 60_000
    async with httpx.AsyncClient(base_url=sim.base_url) as client:
        r = await client.get(
            "/v1/candles/minutes/1",
            params={"market": "KRW-BTC", "count": 1, "to": _iso(to)},
        )
    (candle,) = json.loads(r.text, parse_float=Decimal)
    prices = [t["trade_price"] for t in trades]
    assert candle["opening_price"] == prices[0]
    assert candle["trade_price"] == prices[-1]
    assert candle["high_price"] == max(prices) and candle["low_price"] == min(prices)
    assert candle["candle_acc_trade_volume"] == sum(t["trade_volume"] for t in trades)
    assert candle["candle_acc_trade_price"] == sum(
        t["trade_price"] * t["trade_volume"] for t in trades
    )
    assert candle["timestamp"] == trades[-1]["trade_timestamp"]


def _iso(ms: int) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_ticker_resets_at_utc_midnight(sim_factory) -> None:
    sim = await sim_factory(speed=10.0, start_ms=MIDNIGHT - 4_000)
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(sub({"type": "ticker", "codes": ["KRW-BTC"]}))
        got = await frames_until(ws, lambda m: m["trade_timestamp"] >= MIDNIGHT, timeout=15)
    before = [m for m in got if m["trade_timestamp"] < MIDNIGHT]
    after = got[-1]
    assert after["trade_date"] == "20260312"
    assert after["prev_closing_price"] == before[-1]["trade_price"]
    assert after["opening_price"] == after["trade_price"]
    assert after["acc_trade_volume"] == after["trade_volume"]
    assert before[-1]["acc_trade_volume"] > after["acc_trade_volume"]
    async with httpx.AsyncClient(base_url=sim.base_url) as client:
        day = (
            await client.get("/v1/candles/days", params={"market": "KRW-BTC", "count": 2})
        ).json()
    assert day[0]["candle_date_time_utc"] == "2026-03-12T00:00:00"
    assert day[1]["trade_price"] == after["prev_closing_price"] == day[0]["prev_closing_price"]


async def test_same_seed_same_bodies_whatever_the_speed(sim_factory) -> None:
    start = MIDNIGHT - 3_600_000
    a = await sim_factory(seed=11, start_ms=start, speed=1.0)
    b = await sim_factory(seed=11, start_ms=start, speed=30.0)
    c = await sim_factory(seed=12, start_ms=start, speed=1.0)
    to = _iso(start - 600_000)
    queries = [
        ("/v1/candles/minutes/1", {"market": "KRW-XRP", "count": 200, "to": to}),
        ("/v1/candles/days", {"market": "KRW-BTC", "count": 30, "to": to}),
        ("/v1/trades/ticks", {"market": "KRW-ETH", "count": 300, "days_ago": 2}),
        ("/v1/candles/seconds", {"market": "KRW-BTC", "count": 200, "to": to}),
    ]
    for path, params in queries:
        bodies = []
        for sim in (a, b, c):
            async with httpx.AsyncClient(base_url=sim.base_url) as client:
                bodies.append((await client.get(path, params=params)).text)
        assert bodies[0] == bodies[1], path
        assert bodies[0] != bodies[2], path


async def test_pump_is_visible_in_candles(sim_factory) -> None:
    start = MIDNIGHT
    pump = Scenario.from_dict(
        {
            "anomalies": [
                {
                    "kind": "pump",
                    "market": "KRW-XRP",
                    "start": -7200,
                    "duration_s": 3600,
                    "size": 0.5,
                }
            ]
        }
    )
    base = await sim_factory(seed=5, start_ms=start)
    pumped = await sim_factory(seed=5, start_ms=start, scenario=pump)
    params = {"market": "KRW-XRP", "count": 4, "to": _iso(start)}
    async with httpx.AsyncClient() as client:
        calm = (await client.get(base.base_url + "/v1/candles/minutes/60", params=params)).json()
        hot = (await client.get(pumped.base_url + "/v1/candles/minutes/60", params=params)).json()
        truth = (await client.get(pumped.base_url + "/_sim/truth/anomalies")).json()
    by_start = {c["candle_date_time_utc"]: c for c in calm}
    pump_hour = next(c for c in hot if c["candle_date_time_utc"] == "2026-03-11T22:00:00")
    assert pump_hour["high_price"] > 1.35 * by_start["2026-03-11T22:00:00"]["high_price"]
    assert (
        pump_hour["candle_acc_trade_volume"]
        > 1.5 * by_start["2026-03-11T22:00:00"]["candle_acc_trade_volume"]
    )
    assert truth == [
        {
            "kind": "pump",
            "market": "KRW-XRP",
            "start_ms": start - 7_200_000,
            "end_ms": start - 3_600_000,
            "size": 0.5,
        }
    ]


async def test_admin_truth_matches_ws_trades(sim_factory) -> None:
    sim = await sim_factory(speed=30.0)
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(sub({"type": "trade", "codes": ["KRW-ETH"], "is_only_realtime": True}))
        got = await frames(ws, 60, timeout=15)
    first, last = got[0]["trade_timestamp"], got[-1]["trade_timestamp"]
    seen = [m["sequential_id"] for m in got if m["trade_timestamp"] < last]
    async with httpx.AsyncClient(base_url=sim.base_url) as client:
        params = {"market": "KRW-ETH", "from_ms": first, "to_ms": last}
        truth = (await client.get("/_sim/truth/trades", params=params)).json()
    assert truth["count"] == len(seen)
    assert truth["sequential_ids"] == seen
