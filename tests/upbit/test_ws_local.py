"""WebSocket client behaviour against a tiny real websockets server scripted by each test.

These pin the client's own rules (heartbeats consumed, text tolerated, error names, silence,
connect pacing) independently of the simulator; test_ws_simulator.py covers the real protocol.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.server import ServerConnection, serve

from upbit_pipeline.upbit.errors import WebSocketErrorFrame
from upbit_pipeline.upbit.ws import SessionConfig, UpbitWebSocket, WsConfig

Script = Callable[[ServerConnection, list], Awaitable[None]]


@pytest.fixture
async def ws_server() -> AsyncIterator[Callable[[Script], Awaitable[tuple[str, list]]]]:
    servers = []

    async def start(script: Script) -> tuple[str, list]:
        received: list = []

        async def handler(conn: ServerConnection) -> None:
            received.append(("connect", conn.request.headers if conn.request else None))
            await script(conn, received)

        server = await serve(handler, "127.0.0.1", 0)
        servers.append(server)
        port = next(iter(server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/websocket/v1", received

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def fast(**session: float) -> WsConfig:
    return WsConfig(
        session=SessionConfig(**{"keepalive_s": 5.0, "silence_timeout_s": 5.0, **session}),
        backoff_base_s=0.05,
        backoff_max_s=0.2,
    )


async def take(ws: UpbitWebSocket, n: int, timeout_s: float = 5.0) -> list:
    frames = []
    async with asyncio.timeout(timeout_s):
        async for frame in ws.frames():
            frames.append(frame)
            if len(frames) == n:
                return frames
    return frames


async def test_status_frames_consumed_text_tolerated_bytes_untouched(ws_server) -> None:
    async def script(conn: ServerConnection, received: list) -> None:
        received.append(json.loads(await conn.recv()))
        received.append(await conn.recv())  # the text PING
        await conn.send(b'{"status":"UP"}')
        await conn.send(b'{"ty":"trade","cd":"KRW-BTC","tp":1.16539E8}')
        await conn.send('{"ty":"trade","cd":"KRW-ETH"}')  # a text frame
        await conn.send(b'{"status":"UP"}')
        await conn.wait_closed()

    url, received = await ws_server(script)
    async with UpbitWebSocket(
        url, ["trade", "ticker"], ["krw-btc", "KRW-ETH"], config=fast()
    ) as ws:
        frames = await take(ws, 2)
        await asyncio.sleep(0.05)
        stats = ws.stats()
    assert frames[0].data == b'{"ty":"trade","cd":"KRW-BTC","tp":1.16539E8}'
    assert frames[1].data == b'{"ty":"trade","cd":"KRW-ETH"}'
    assert frames[0].conn_id == frames[1].conn_id == "0-0"
    assert frames[0].fmt == "SIMPLE"
    assert frames[0].received_ns <= frames[1].received_ns
    assert stats.status_up == 2
    assert stats.frames == 2
    assert stats.connections[0].text_frames == 1
    request = received[1]
    assert [m.get("type") for m in request[1:-1]] == ["trade", "ticker"]
    assert request[1]["codes"] == ["KRW-BTC", "KRW-ETH"]
    assert received[2] == "PING"
    headers = received[0][1]
    assert "Origin" not in headers


async def test_terminal_error_frame_is_raised_by_name(ws_server) -> None:
    async def script(conn: ServerConnection, received: list) -> None:
        await conn.recv()
        await conn.send(b'{"error":{"name":"INVALID_PARAM","message":"nope"}}')
        await asyncio.sleep(0.15)
        await conn.close()

    url, received = await ws_server(script)
    async with UpbitWebSocket(url, ["trade"], ["KRW-BTC"], config=fast()) as ws:
        with pytest.raises(WebSocketErrorFrame) as caught:
            await take(ws, 1)
        assert caught.value.name == "INVALID_PARAM"
        assert ws.stats().error_frames == {"INVALID_PARAM": 1}
    assert sum(1 for r in received if r[0] == "connect") == 1  # never retried


async def test_other_error_frame_reconnects(ws_server) -> None:
    async def script(conn: ServerConnection, received: list) -> None:
        await conn.recv()
        if sum(1 for r in received if r[0] == "connect") == 1:
            await conn.send(b'{"error":{"name":"SERVER_BUSY","message":"later"}}')
            await conn.close()
            return
        await conn.send(b'{"ty":"trade"}')
        await conn.wait_closed()

    url, _ = await ws_server(script)
    async with UpbitWebSocket(url, ["trade"], ["KRW-BTC"], config=fast()) as ws:
        [frame] = await take(ws, 1)
        assert frame.conn_id == "0-1"
        stats = ws.stats()
    assert stats.error_frames == {"SERVER_BUSY": 1}
    assert stats.reconnects == 1


async def test_silence_watchdog_reconnects_dead_socket(ws_server) -> None:
    async def script(conn: ServerConnection, received: list) -> None:
        await conn.recv()
        if sum(1 for r in received if r[0] == "connect") == 1:
            await conn.wait_closed()  # accepts, answers pings, never sends a frame
            return
        await conn.send(b'{"ty":"trade"}')
        await conn.wait_closed()

    url, _ = await ws_server(script)
    config = fast(silence_timeout_s=0.5)
    async with UpbitWebSocket(url, ["trade"], ["KRW-BTC"], config=config) as ws:
        started = time.monotonic()
        [frame] = await take(ws, 1)
        assert time.monotonic() - started >= 0.5
        assert frame.conn_id == "0-1"
        assert ws.stats().silence_reconnects == 1


async def test_connects_are_paced_across_shards(ws_server) -> None:
    times: list[float] = []

    async def script(conn: ServerConnection, received: list) -> None:
        times.append(time.monotonic())
        await conn.recv()
        await conn.send(b'{"ty":"trade"}')
        await conn.wait_closed()

    url, _ = await ws_server(script)
    config = WsConfig(max_codes_per_conn=1, connects_per_s=5)
    codes = [f"KRW-C{i}" for i in range(7)]
    async with UpbitWebSocket(url, ["trade"], codes, config=config) as ws:
        frames = await take(ws, 7)
    assert {f.conn_id for f in frames} == {f"{i}-0" for i in range(7)}
    times.sort()
    assert times[5] - times[0] >= 1.0  # at most 5 connects in any second
