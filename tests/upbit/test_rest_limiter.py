"""REST limiter and retry policy, against a tiny real HTTP server (aiohttp) run inside each test.

The server counts what actually reached it, which is what the properties are about: no burst
above 10/s per group, a 429 pauses and retries, a 418 stops the group without further requests.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from upbit_pipeline.upbit.errors import (
    BannedError,
    RateLimitedError,
    UpbitApiError,
    UpbitServerError,
)
from upbit_pipeline.upbit.rest import (
    RateLimiter,
    SlidingWindow,
    UpbitRestClient,
    group_for_path,
    parse_ban_seconds,
    parse_remaining_req,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class TinyServer:
    base_url: str
    requests: list[web.Request] = field(default_factory=list)
    times: list[float] = field(default_factory=list)


@pytest.fixture
async def tiny_server() -> AsyncIterator[Callable[[Handler], Awaitable[TinyServer]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> TinyServer:
        server = TinyServer(base_url="")

        async def record(request: web.Request) -> web.StreamResponse:
            server.requests.append(request)
            server.times.append(time.monotonic())
            return await handler(request)

        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", record)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        server.base_url = f"http://127.0.0.1:{port}"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


def _group_of(request: web.Request) -> str:
    return group_for_path(request.path.removeprefix("/v1"))


def upbit_like(limit: int = 10) -> tuple[Handler, list[int]]:
    """A server enforcing Upbit's rule: > ``limit`` requests in 1 s per group -> 429."""
    sent: dict[str, list[float]] = {}
    rejected: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        group = _group_of(request)
        now = time.monotonic()
        window = [t for t in sent.get(group, []) if t > now - 1.0]
        if len(window) >= limit:
            rejected.append(1)
            return web.json_response(
                {"error": {"name": "too_many_requests", "message": "Too many requests"}},
                status=429,
                headers={"Remaining-Req": f"group={group}; min=600; sec=0"},
            )
        window.append(now)
        sent[group] = window
        left = limit - len(window)
        return web.Response(
            body=b"[]",
            content_type="application/json",
            headers={"Remaining-Req": f"group={group}; min=600; sec={left}"},
        )

    return handler, rejected


# -- pure parts ------------------------------------------------------------------------------


def test_parse_remaining_req_allows_dash_in_group() -> None:
    assert parse_remaining_req("group=crix-trades; min=600; sec=9") == ("crix-trades", 9)
    assert parse_remaining_req("group=candles; min=600; sec=0") == ("candles", 0)
    assert parse_remaining_req("group=default; min=1800; sec=29") == ("default", 29)
    assert parse_remaining_req(None) is None
    assert parse_remaining_req("garbage") is None


def test_group_for_path_uses_wire_names() -> None:
    assert group_for_path("/market/all") == "market"
    assert group_for_path("/candles/minutes/1") == "candles"
    assert group_for_path("/candles/seconds") == "candles"
    assert group_for_path("/trades/ticks") == "crix-trades"
    assert group_for_path("/ticker") == "ticker"
    assert group_for_path("/ticker/all") == "ticker"
    assert group_for_path("/orderbook") == "orderbook"
    assert group_for_path("/orderbook/instruments") == "orderbook"


@pytest.mark.parametrize(
    ("body", "retry_after", "expected"),
    [
        (b'{"error":{"name":418,"message":"blocked for 30 seconds"}}', None, 30.0),
        ("요청이 차단되었습니다. 5분 후 다시 시도".encode(), None, 300.0),
        (b"ban 1.5 min", None, 90.0),
        (b"120s", None, 120.0),
        (b"no duration here", None, None),
        (b"", "7", 7.0),
    ],
)
def test_parse_ban_seconds(body: bytes, retry_after: str | None, expected: float | None) -> None:
    assert parse_ban_seconds(body, retry_after) == expected


def test_sliding_window_never_exceeds_limit() -> None:
    now = [0.0]
    window = SlidingWindow(3, 1.0, lambda: now[0])
    for _ in range(3):
        assert window.delay() == 0.0
        window.record()
    assert window.delay() == pytest.approx(1.0)
    now[0] = 0.5
    assert window.delay() == pytest.approx(0.5)
    now[0] = 1.0
    assert window.delay() == 0.0


async def test_server_sec_zero_blocks_until_its_window_ends() -> None:
    limiter = RateLimiter(10, margin_s=0.0)
    sent_at = await limiter.acquire("ticker")
    limiter.observe("ticker", sent_at, 200, "group=ticker; min=600; sec=0")
    started = time.monotonic()
    await limiter.acquire("ticker")
    assert time.monotonic() - started >= 0.9
    assert limiter.stats()["ticker"].requests == 2


# -- against a real local server -------------------------------------------------------------


async def test_burst_of_60_runs_at_ceiling_without_429(tiny_server) -> None:
    handler, rejected = upbit_like()
    server = await tiny_server(handler)
    async with UpbitRestClient(server.base_url) as client:
        started = time.monotonic()
        await asyncio.gather(*(client.candles("KRW-BTC", "1m", count=1) for _ in range(60)))
        elapsed = time.monotonic() - started
        stats = client.stats()["candles"]
    assert rejected == []
    assert stats.responses_429 == 0
    assert stats.requests == 60
    assert len(server.requests) == 60
    # 60 requests at 10/s: the first 10 at once, then 5 more windows
    assert 5.0 <= elapsed < 9.0
    # no 1-s window at the server ever saw more than 10
    times = sorted(server.times)
    assert all(times[i + 10] - times[i] >= 1.0 for i in range(len(times) - 10))


async def test_groups_are_independent(tiny_server) -> None:
    handler, rejected = upbit_like()
    server = await tiny_server(handler)
    async with UpbitRestClient(server.base_url) as client:
        started = time.monotonic()
        await asyncio.gather(
            *(client.candles("KRW-BTC", "1d", count=1) for _ in range(10)),
            *(client.ticker(["KRW-BTC"]) for _ in range(10)),
            *(client.trades("KRW-BTC", count=1) for _ in range(10)),
        )
        elapsed = time.monotonic() - started
        assert set(client.stats()) == {"candles", "ticker", "crix-trades"}
    assert rejected == []
    assert elapsed < 0.9  # 10 per group fit in one window each


async def test_429_pauses_the_group_and_retries(tiny_server) -> None:
    calls = {"n": 0}

    async def handler(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            return web.json_response(
                {"error": {"name": "too_many_requests", "message": "Too many requests"}},
                status=429,
            )
        return web.Response(body=b"[]", content_type="application/json")

    server = await tiny_server(handler)
    async with UpbitRestClient(server.base_url) as client:
        started = time.monotonic()
        assert await client.ticker(["KRW-BTC"]) == []
        elapsed = time.monotonic() - started
        stats = client.stats()["ticker"]
    assert stats.responses_429 == 2
    assert stats.retries == 2
    assert len(server.requests) == 3
    # paused one window after the first 429, two after the second
    assert elapsed >= 2.9
    assert server.times[1] - server.times[0] >= 0.95
    assert server.times[2] - server.times[1] >= 1.9


async def test_429_retries_are_bounded(tiny_server) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=429, text="slow down")

    server = await tiny_server(handler)
    limiter = RateLimiter(window_s=0.05, max_pause_s=0.1)
    async with UpbitRestClient(server.base_url, limiter=limiter, max_429_retries=3) as client:
        with pytest.raises(RateLimitedError) as caught:
            await client.ticker(["KRW-BTC"])
        assert caught.value.group == "ticker"
        assert client.stats()["ticker"].responses_429 == 4
    assert len(server.requests) == 4


async def test_418_bans_the_group_and_fails_fast(tiny_server) -> None:
    async def handler(request: web.Request) -> web.Response:
        if _group_of(request) == "candles" and len(server.requests) == 1:
            return web.json_response(
                {"error": {"name": 418, "message": "IP blocked for 2 seconds"}}, status=418
            )
        return web.Response(body=b"[]", content_type="application/json")

    server = await tiny_server(handler)
    async with UpbitRestClient(server.base_url) as client:
        with pytest.raises(BannedError) as caught:
            await client.candles("KRW-BTC", "1m")
        assert caught.value.group == "candles"
        # during the ban: immediate BannedError, nothing reaches the server
        for _ in range(5):
            started = time.monotonic()
            with pytest.raises(BannedError):
                await client.candles("KRW-BTC", "1m")
            assert time.monotonic() - started < 0.1
        assert len(server.requests) == 1
        # other groups still work
        assert await client.ticker(["KRW-BTC"]) == []
        assert client.stats()["candles"].responses_418 == 1
        # after the ban (2 s parsed from the body) the group works again
        await asyncio.sleep(max(0.0, caught.value.until_s - time.monotonic()) + 0.05)
        assert await client.candles("KRW-BTC", "1m") == []
    assert len(server.requests) == 3


async def test_418_without_duration_uses_conservative_default(tiny_server) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=418, text="I'm a teapot")

    server = await tiny_server(handler)
    async with UpbitRestClient(server.base_url) as client:
        with pytest.raises(BannedError) as caught:
            await client.markets()
        assert caught.value.until_s - time.monotonic() > 250
    assert len(server.requests) == 1


async def test_5xx_retried_then_succeeds(tiny_server) -> None:
    async def handler(request: web.Request) -> web.Response:
        if len(server.requests) <= 2:
            return web.Response(status=502, text="bad gateway")
        return web.Response(body=b"[]", content_type="application/json")

    server = await tiny_server(handler)
    async with UpbitRestClient(server.base_url, backoff_base_s=0.01) as client:
        assert await client.orderbook(["KRW-BTC"]) == []
        stats = client.stats()["orderbook"]
    assert stats.server_errors == 2
    assert stats.retries == 2


async def test_5xx_exhausted_raises_server_error(tiny_server) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down")

    server = await tiny_server(handler)
    async with UpbitRestClient(server.base_url, backoff_base_s=0.01, max_retries=2) as client:
        with pytest.raises(UpbitServerError):
            await client.orderbook(["KRW-BTC"])
    assert len(server.requests) == 3


async def test_transport_error_raises_server_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens
    async with UpbitRestClient(
        f"http://127.0.0.1:{port}", backoff_base_s=0.01, max_retries=1
    ) as client:
        with pytest.raises(UpbitServerError):
            await client.markets()
        assert client.stats()["market"].transport_errors == 2


async def test_error_body_is_typed(tiny_server) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": {"name": 404, "message": "Code not found"}}, status=404)

    server = await tiny_server(handler)
    async with UpbitRestClient(server.base_url) as client:
        with pytest.raises(UpbitApiError) as caught:
            await client.ticker(["KRW-NOPE"])
    assert (caught.value.status, caught.value.name, caught.value.message) == (
        404,
        404,
        "Code not found",
    )
    assert len(server.requests) == 1  # 4xx is never retried


async def test_request_headers_and_to_encoding(tiny_server) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b"[]", content_type="application/json")

    server = await tiny_server(handler)
    from datetime import UTC, datetime

    async with UpbitRestClient(server.base_url) as client:
        await client.candles("KRW-BTC", "5m", to=datetime(2025, 6, 24, 4, 56, 53, tzinfo=UTC))
        await client.markets()
    request = server.requests[0]
    assert "Origin" not in request.headers
    assert request.headers["Accept"] == "application/json"
    assert "gzip" in request.headers["Accept-Encoding"]
    assert request.path == "/v1/candles/minutes/5"
    assert "to=2025-06-24T04%3A56%3A53Z" in request.raw_path  # URL-encoded on the wire
    assert request.query["to"] == "2025-06-24T04:56:53Z"
    assert server.requests[1].path == "/v1/market/all"
    assert server.requests[1].query["is_details"] == "true"
