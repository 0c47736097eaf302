"""The REST limiter against the simulator's exact Upbit limiter (issue 6).

The simulator counts 10 requests per group in windows opened by their first request (Upbit's
request guide) and bans after repeated 429s, so every test here asserts what the server said:
no 429, no 418, and data that is right. Throughput (>= 9.5 requests/s) is a benchmark
(``bench/bench_batch.py``), not a timed test.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from upbit_pipeline.upbit.rest import RateLimiter, UpbitRestClient
from upbit_pipeline.upbit.simulator.limits import Limiter

pytestmark = pytest.mark.integration


def test_simulator_windows_open_with_their_first_request() -> None:
    """The model the client follows: a window starts at its first request and lasts 1 s."""
    now = [10.7]
    limiter = Limiter(per_s=10, ban_base_s=10.0, clock=lambda: now[0])
    assert [limiter.check("ip", "candles").remaining for _ in range(10)] == list(range(9, -1, -1))
    now[0] = 11.69  # 0.99 s after the window opened (an aligned bucket would have rolled over)
    assert limiter.check("ip", "candles").status == 429
    assert limiter.check("ip", "ticker").status == 200  # groups are independent
    now[0] = 11.7  # the window is over: this request opens the next one
    verdict = limiter.check("ip", "candles")
    assert (verdict.status, verdict.remaining) == (200, 9)
    now[0] = 12.69
    assert limiter.check("ip", "candles").remaining == 8  # still the window opened at 11.7


async def _pages(
    client: UpbitRestClient, markets: list[str], end: datetime, per_market: int, workers: int
) -> dict[tuple[str, int], list[datetime]]:
    """``workers`` callers, each paging its own markets sequentially, like the raw ingestion."""
    todo: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for code in markets:
        for page in range(per_market):
            todo.put_nowait((code, page))
    got: dict[tuple[str, int], list[datetime]] = {}

    async def worker() -> None:
        while not todo.empty():
            code, page = todo.get_nowait()
            to = end - timedelta(minutes=200 * page)
            candles = await client.candles(code, "1m", to=to, count=200)
            got[code, page] = [c.start_utc for c in candles]

    await asyncio.gather(*(worker() for _ in range(workers)))
    return got


async def test_sustained_burst_draws_no_429(sim_factory) -> None:
    sim = await sim_factory(markets=6, seed=3, rate_limits=True)
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    async with UpbitRestClient(sim.base_url) as client:
        got = await _pages(client, sim.markets, end, per_market=12, workers=8)
        stats = client.stats()["candles"]
        # the same pages again, one by one: identical answers
        for code, page in list(got)[::9]:
            again = await client.candles(code, "1m", to=end - timedelta(minutes=200 * page))
            assert [c.start_utc for c in again] == got[code, page]
    assert len(got) == 72
    assert stats.requests == 72
    assert (stats.responses_429, stats.responses_418, stats.retries) == (0, 0, 0)
    for (_, page), starts in got.items():
        upper = end - timedelta(minutes=200 * page)
        assert starts == sorted(starts, reverse=True)
        assert all(upper - timedelta(minutes=200) <= s < upper for s in starts)


async def test_irregular_demand_never_overfills_a_window(sim_factory) -> None:
    """Sends late in a window land in the next one; the limiter must notice (duplicate sec)."""
    sim = await sim_factory(markets=3, rate_limits=True)
    code = sim.markets[0]
    limiter = RateLimiter()
    async with UpbitRestClient(sim.base_url, limiter=limiter) as client:
        for pause in (0.0, 0.55, 0.9, 0.97, 0.3):
            await asyncio.gather(*(client.candles(code, "1m", count=2) for _ in range(4)))
            await asyncio.sleep(pause)  # shapes the demand; nothing waits on it
            pages = await asyncio.gather(*(client.candles(code, "1m", count=2) for _ in range(9)))
            assert all(len(p) == 2 for p in pages)
        stats = client.stats()["candles"]
    assert stats.requests == 65
    assert (stats.responses_429, stats.responses_418) == (0, 0)
    assert limiter.in_flight("candles") == 0


async def test_one_limiter_shared_by_two_clients(sim_factory) -> None:
    """Several clients on one IP share one limiter (one budget per IP): still no 429."""
    sim = await sim_factory(markets=4, rate_limits=True)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    limiter = RateLimiter()
    async with (
        UpbitRestClient(sim.base_url, limiter=limiter) as first,
        UpbitRestClient(sim.base_url, limiter=limiter) as second,
    ):
        a, b = await asyncio.gather(
            _pages(first, sim.markets[:2], end, per_market=8, workers=4),
            _pages(second, sim.markets[2:], end, per_market=8, workers=4),
        )
    assert len(a) == len(b) == 16
    stats = limiter.stats()["candles"]
    assert (stats.requests, stats.responses_429, stats.responses_418) == (32, 0, 0)


async def test_someone_else_on_the_ip_is_followed_through_sec(sim_factory) -> None:
    """Another program spends part of the budget: sec says so; never a 418, data complete."""
    sim = await sim_factory(markets=4, rate_limits=True)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    foreign: list[int] = []
    done = asyncio.Event()

    async def other_program() -> None:
        async with httpx.AsyncClient(base_url=sim.base_url) as raw:
            while not done.is_set():
                response = await raw.get("/v1/candles/days", params={"market": sim.markets[0]})
                foreign.append(response.status_code)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 0.35)  # ~3 requests/s of its own

    other = asyncio.create_task(other_program())
    try:
        async with UpbitRestClient(sim.base_url) as client:
            got = await _pages(client, sim.markets, end, per_market=8, workers=8)
            stats = client.stats()["candles"]
    finally:
        done.set()
        await asyncio.gather(other, return_exceptions=True)
    assert len(got) == 32 and all(got.values())
    assert stats.responses_418 == 0 and 418 not in foreign
    assert stats.responses_429 <= 3  # at most the odd collision, each followed by a pause
