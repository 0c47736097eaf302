"""WebSocket protocol: binary frames, subscription replace, snapshots, errors, keepalive, idle."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.upbit.simulator.helpers import frames, frames_until, sub
from upbit_pipeline.upbit import fields

pytestmark = pytest.mark.integration


async def test_snapshot_then_realtime_binary(sim_factory) -> None:
    sim = await sim_factory(speed=20.0)
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(
            sub({"type": "trade", "codes": ["KRW-BTC"]}, {"type": "ticker", "codes": ["KRW-BTC"]})
        )
        got = await frames(ws, 30)
    trades = [m for m in got if m["type"] == "trade"]
    tickers = [m for m in got if m["type"] == "ticker"]
    assert trades[0]["stream_type"] == "SNAPSHOT" and tickers[0]["stream_type"] == "SNAPSHOT"
    assert all(m["stream_type"] == "REALTIME" for m in trades[1:] + tickers[1:])
    assert list(trades[0]) == list(fields.TRADE)
    assert list(tickers[0]) == list(fields.TICKER)
    ids = [m["sequential_id"] for m in trades[1:]]
    assert len(set(ids)) == len(ids)


async def test_orderbook_units_suffix_and_simple(sim_factory) -> None:
    sim = await sim_factory(speed=5.0)
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(
            sub({"type": "orderbook", "codes": ["KRW-BTC.5", "KRW-ETH.20"]}, fmt="SIMPLE")
        )
        got = await frames(ws, 6)
    by_code = {m["cd"]: m for m in got}
    assert len(by_code["KRW-BTC"]["obu"]) == 5
    assert len(by_code["KRW-ETH"]["obu"]) == 30
    assert list(got[0]) == list(fields.ORDERBOOK.values())
    assert list(got[0]["obu"][0]) == list(fields.ORDERBOOK_UNIT.values())


async def test_default_orderbook_uses_java_double_prices(sim_factory) -> None:
    sim = await sim_factory()
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(sub({"type": "orderbook", "codes": ["KRW-BTC"]}))
        raw = await ws.recv()
    assert isinstance(raw, bytes)
    assert b'"ask_price":1.' in raw and b"E8," in raw


async def test_subscription_is_replaced(sim_factory) -> None:
    sim = await sim_factory(speed=20.0)
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(sub({"type": "trade", "codes": ["KRW-BTC"]}))
        await frames(ws, 3)
        await ws.send(sub({"type": "trade", "codes": ["KRW-ETH"]}, ticket="t2"))
        got = await frames_until(
            ws, lambda m: m["code"] == "KRW-ETH" and m["stream_type"] == "REALTIME"
        )
        later = await frames(ws, 10)
    assert all(m["code"] == "KRW-ETH" for m in later)
    assert next(m["stream_type"] for m in got if m["code"] == "KRW-ETH") == "SNAPSHOT"


async def test_unknown_and_lowercase_codes_are_ignored(sim_factory) -> None:
    sim = await sim_factory(speed=20.0)
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(sub({"type": "ticker", "codes": ["KRW-NOPE", "krw-btc", "KRW-ETH"]}))
        got = await frames(ws, 5)
    assert {m["code"] for m in got} == {"KRW-ETH"}


async def test_only_snapshot_and_only_realtime(sim_factory) -> None:
    sim = await sim_factory(speed=20.0)
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(
            sub(
                {"type": "ticker", "codes": ["KRW-BTC"], "is_only_snapshot": True},
                {"type": "trade", "codes": ["KRW-ETH"], "isOnlyRealtime": True},
            )
        )
        got = await frames(ws, 15)
    btc = [m for m in got if m["code"] == "KRW-BTC"]
    eth = [m for m in got if m["code"] == "KRW-ETH"]
    assert [m["stream_type"] for m in btc] == ["SNAPSHOT"]
    assert eth and all(m["stream_type"] == "REALTIME" for m in eth)


@pytest.mark.parametrize(
    ("request_text", "name"),
    [
        ("hello", "WRONG_FORMAT"),
        ('{"ticket":"x"}', "WRONG_FORMAT"),
        ('[{"type":"trade","codes":["KRW-BTC"]}]', "NO_TICKET"),
        ('[{"ticket":"x"},{"format":"SIMPLE"}]', "NO_TYPE"),
        ('[{"ticket":"x"},{"type":"trade"}]', "NO_CODES"),
        ('[{"ticket":"x"},{"type":"nope","codes":["KRW-BTC"]}]', "INVALID_PARAM"),
        ('[{"ticket":"x"},{"type":"trade","codes":["KRW-BTC"]},{"format":"XML"}]', "WRONG_FORMAT"),
    ],
)
async def test_error_frame_then_close_1000(simulator, request_text: str, name: str) -> None:
    async with websockets.connect(simulator.ws_url) as ws:
        await ws.send(request_text)
        raw = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(raw, bytes)
        assert json.loads(raw)["error"]["name"] == name
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1000


async def test_ping_status_up_and_cycle(sim_factory) -> None:
    sim = await sim_factory(status_interval_s=0.2)
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send("PING")
        got = await frames(ws, 3, timeout=5)
    assert got == [{"status": "UP"}] * 3


async def test_idle_socket_is_aborted_with_1006(sim_factory) -> None:
    sim = await sim_factory(idle_timeout_s=0.5)
    async with websockets.connect(sim.ws_url, ping_interval=None) as ws:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is None  # no close frame -> 1006 on the client
    assert 0.4 < time.monotonic() - started < 3


async def test_keepalive_ping_keeps_socket_open(sim_factory) -> None:
    sim = await sim_factory(idle_timeout_s=0.5, status_interval_s=0.2)
    async with websockets.connect(sim.ws_url, ping_interval=None) as ws:
        await ws.send("PING")
        got = await frames(ws, 6, timeout=5)  # 1.0+ s > idle timeout
    assert len(got) == 6


@pytest.mark.parametrize("fmt", ["JSON_LIST", "SIMPLE_LIST"])
async def test_list_formats(sim_factory, fmt: str) -> None:
    sim = await sim_factory(speed=20.0)
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(sub({"type": "trade", "codes": ["KRW-BTC"]}, fmt=fmt))
        got = await frames(ws, 3)
    assert all(isinstance(m, list) and len(m) == 1 for m in got)
    key = "cd" if fmt == "SIMPLE_LIST" else "code"
    assert got[0][0][key] == "KRW-BTC"


async def test_list_subscriptions(simulator) -> None:
    async with websockets.connect(simulator.ws_url) as ws:
        await ws.send(
            sub(
                {"type": "ticker", "codes": ["KRW-BTC"]},
                {"type": "orderbook", "codes": ["KRW-ETH"]},
            )
        )
        await ws.send(json.dumps([{"ticket": "t1"}, {"method": "LIST_SUBSCRIPTIONS"}]))
        got = await frames_until(ws, lambda m: "method" in m)
    assert got[-1] == {
        "method": "LIST_SUBSCRIPTIONS",
        "result": [
            {"type": "ticker", "codes": ["KRW-BTC"]},
            {"type": "orderbook", "codes": ["KRW-ETH"], "level": 0},
        ],
        "ticket": "t1",
    }


async def test_candle_channel(sim_factory) -> None:
    sim = await sim_factory(speed=20.0)
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(
            sub(
                {"type": "candle.1s", "codes": ["KRW-BTC"]},
                {"type": "candle.1m", "codes": ["KRW-BTC"]},
            )
        )
        got = await frames(ws, 8)
    assert {m["type"] for m in got} == {"candle.1s", "candle.1m"}
    assert list(got[0]) == list(fields.CANDLE)


async def test_raw_aiohttp_client(sim_factory) -> None:
    """A different client library (aiohttp) sees the same protocol."""
    sim = await sim_factory(speed=20.0)
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.ws_url) as ws:
        assert ws._response.headers["Remaining-Req"].startswith("group=websocket; min=300; sec=")
        await ws.send_str(sub({"type": "trade", "codes": ["KRW-BTC"]}, fmt="SIMPLE"))
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.BINARY
        assert json.loads(msg.data)["st"] == "SNAPSHOT"
