"""WebSocket client against the simulator: frames, channels, sharding, keepalive, reconnects,
the silence watchdog, error frames and code updates. Conditions are polled with deadlines."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from upbit_pipeline.upbit.errors import WebSocketErrorFrame
from upbit_pipeline.upbit.ws import (
    ConnStats,
    RawFrame,
    SessionConfig,
    UpbitWebSocket,
    WsConfig,
    build_request,
    run_session,
)

pytestmark = pytest.mark.integration

FAST = WsConfig(
    session=SessionConfig(keepalive_s=0.5, ping_timeout_s=2.0, silence_timeout_s=5.0),
    backoff_base_s=0.05,
    backoff_max_s=0.5,
)


def code_of(frame: RawFrame) -> str:
    obj = json.loads(frame.data)
    obj = obj[0] if isinstance(obj, list) else obj
    return obj.get("cd") or obj.get("code")


def kind_of(frame: RawFrame) -> str:
    obj = json.loads(frame.data)
    obj = obj[0] if isinstance(obj, list) else obj
    return obj.get("ty") or obj.get("type")


async def until(
    ws: UpbitWebSocket, done: Callable[[list[RawFrame]], bool], timeout_s: float = 10.0
) -> list[RawFrame]:
    """Collect frames until ``done(frames)`` holds; fail after ``timeout_s``."""
    frames: list[RawFrame] = []
    async with asyncio.timeout(timeout_s):
        async for frame in ws.frames():
            frames.append(frame)
            if done(frames):
                break
    return frames


async def fault(sim, name: str, **params: float) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url) as admin:
        response = await admin.post(f"/_sim/faults/{name}", params=params)
        response.raise_for_status()


async def test_frames_are_raw_bytes_with_increasing_receive_time(sim_factory) -> None:
    sim = await sim_factory(markets=3, speed=20.0)
    async with UpbitWebSocket(sim.ws_url, ["trade", "ticker"], sim.markets, config=FAST) as ws:
        frames = await until(ws, lambda f: len(f) >= 50)
    assert all(isinstance(f.data, bytes) and f.data.startswith((b"{", b"[")) for f in frames)
    assert all(f.fmt == "SIMPLE" and f.conn_id == "0-0" for f in frames)
    stamps = [f.received_ns for f in frames]
    assert stamps == sorted(stamps)
    assert abs(stamps[-1] / 1e9 - time.time()) < 5
    assert {kind_of(f) for f in frames} == {"trade", "ticker"}  # several channels, one request
    snapshots = [f for f in frames if json.loads(f.data).get("st") == "SNAPSHOT"]
    assert snapshots  # first connect asks for snapshots


async def test_several_channels_in_one_request(sim_factory) -> None:
    sim = await sim_factory(markets=2, speed=20.0)
    channels = ["trade", "ticker", "orderbook", "candle.1m"]
    async with UpbitWebSocket(sim.ws_url, channels, sim.markets, config=FAST) as ws:
        frames = await until(ws, lambda f: {kind_of(x) for x in f} >= set(channels))
        assert {f.conn_id for f in frames} == {"0-0"}
        assert ws.stats().connects == 1
        assert ws.stats().connections[0].requests_sent == 1


async def test_sharding_spreads_codes_and_every_code_arrives(sim_factory) -> None:
    sim = await sim_factory(markets=7, speed=20.0)
    config = WsConfig(session=FAST.session, max_codes_per_conn=3)
    async with UpbitWebSocket(sim.ws_url, ["ticker"], sim.markets, config=config) as ws:
        assert [len(s) for s in ws.shards] == [3, 3, 1]
        frames = await until(ws, lambda f: {code_of(x) for x in f} == set(sim.markets))
        conns = {f.conn_id for f in frames}
        assert conns == {"0-0", "1-0", "2-0"}
        for shard, codes in enumerate(ws.shards):
            seen = {code_of(f) for f in frames if f.conn_id == f"{shard}-0"}
            assert seen <= set(codes)
        assert ws.stats().connects == 3


async def test_keepalive_survives_idle_timeout_raw_client_does_not(sim_factory) -> None:
    sim = await sim_factory(markets=2, idle_timeout_s=2.0, status_interval_s=10.0)
    quiet = ["KRW-NOT-LISTED"]  # ignored silently by the server: a perfectly quiet subscription

    raw_closed: list[int | None] = []

    async def raw_client() -> None:
        async with connect(sim.ws_url, ping_interval=None) as raw:
            await raw.send(build_request(["trade"], quiet).decode())
            try:
                while True:
                    await raw.recv()
            except websockets.ConnectionClosed as exc:
                raw_closed.append(exc.rcvd.code if exc.rcvd else 1006)

    raw_task = asyncio.create_task(raw_client())
    config = WsConfig(session=SessionConfig(keepalive_s=0.5, silence_timeout_s=30.0))
    async with UpbitWebSocket(sim.ws_url, ["trade"], quiet, config=config) as ws:
        await asyncio.sleep(5.0)  # the property is "still the first connection after 5 s"
        stats = ws.stats()
        assert stats.connects == 1
        assert stats.reconnects == 0
        assert 0 in stats.connections and stats.connections[0].conn_id == "0-0"
        assert stats.status_up >= 1  # the PING answer
    async with asyncio.timeout(5):
        await raw_task
    assert raw_closed == [1006]


async def test_reconnects_after_drop_with_new_conn_id(sim_factory) -> None:
    sim = await sim_factory(markets=3, speed=20.0)
    async with UpbitWebSocket(sim.ws_url, ["ticker", "trade"], sim.markets, config=FAST) as ws:
        await until(ws, lambda f: len(f) >= 5)
        await fault(sim, "drop")
        frames = await until(ws, lambda f: any(x.conn_id == "0-1" for x in f[-1:]))
        after = await until(ws, lambda f: len(f) >= 10)
        assert {f.conn_id for f in after} == {"0-1"}
        assert ws.stats().reconnects == 1
    assert frames[-1].conn_id == "0-1"


async def test_silence_watchdog_reconnects_a_dead_socket(sim_factory) -> None:
    """With no heartbeat (text PING off) a silence fault is total silence on a live TCP socket."""
    sim = await sim_factory(markets=3, speed=20.0)
    session = SessionConfig(keepalive_s=0.5, silence_timeout_s=1.0, heartbeat=False)
    config = WsConfig(session=session, backoff_base_s=0.05)
    async with UpbitWebSocket(sim.ws_url, ["ticker"], sim.markets, config=config) as ws:
        await until(ws, lambda f: len(f) >= 3)
        await fault(sim, "silence", seconds=2.5)
        started = time.monotonic()
        frames = await until(ws, lambda f: f[-1].conn_id != "0-0")
        assert ws.stats().silence_reconnects >= 1
        assert time.monotonic() - started >= 1.0
    assert frames[-1].conn_id.startswith("0-")


async def test_quiet_market_with_heartbeats_does_not_flap(sim_factory) -> None:
    sim = await sim_factory(markets=3, speed=20.0, status_interval_s=0.3)
    session = SessionConfig(keepalive_s=0.5, silence_timeout_s=1.0)
    config = WsConfig(session=session)
    async with UpbitWebSocket(sim.ws_url, ["ticker"], sim.markets, config=config) as ws:
        await until(ws, lambda f: len(f) >= 3)
        await fault(sim, "silence", seconds=3.0)  # no data for 3 s; heartbeats go on
        await asyncio.sleep(3.0)
        stats = ws.stats()
        assert stats.silence_reconnects == 0
        assert stats.reconnects == 0
        assert stats.status_up >= 5
        frames = await until(ws, lambda f: len(f) >= 3)  # data resumes on the same connection
    assert {f.conn_id for f in frames} == {"0-0"}


async def test_error_frame_surfaces_by_name(sim_factory) -> None:
    sim = await sim_factory(markets=2)
    stats = ConnStats(conn_id="raw-0", shard=0)

    async def emit(frame: RawFrame) -> None:
        pass

    bad = b'[{"ticket":"t"},{"type":"nope","codes":["KRW-BTC"]},{"format":"SIMPLE"}]'
    no_ticket = b'[{"type":"trade","codes":["KRW-BTC"]}]'
    for request, name in ((bad, "INVALID_PARAM"), (no_ticket, "NO_TICKET")):
        with pytest.raises(WebSocketErrorFrame) as caught:
            async with asyncio.timeout(5):
                await run_session(
                    sim.ws_url, stats, "SIMPLE", lambda r=request: r, emit, config=SessionConfig()
                )
        assert caught.value.name == name


async def test_update_codes_adds_a_market_whose_frames_arrive(sim_factory) -> None:
    sim = await sim_factory(markets=4, speed=20.0)
    first, later = sim.markets[:2], sim.markets[2]
    async with UpbitWebSocket(sim.ws_url, ["ticker"], first, config=FAST) as ws:
        frames = await until(ws, lambda f: {code_of(x) for x in f} == set(first))
        assert later not in {code_of(f) for f in frames}
        ws.update_codes([*first, later])
        await until(ws, lambda f: later in {code_of(x) for x in f})
        stats = ws.stats()
        assert stats.connects == 1  # the same connection, re-subscribed
        assert stats.connections[0].requests_sent == 2
        # removing every code closes the shard
        ws.update_codes([])
        await asyncio.sleep(0.1)
        assert ws.stats().connections == {}
