"""REST client against the simulator: typed round trips, paging, limits and faults."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from upbit_pipeline.upbit.errors import UpbitApiError
from upbit_pipeline.upbit.models import Candle, Market, Orderbook, Ticker, Trade
from upbit_pipeline.upbit.rest import UpbitRestClient

pytestmark = pytest.mark.integration


def _minute(dt: datetime) -> datetime:
    return dt.replace(second=0, microsecond=0)


async def test_every_endpoint_round_trips_typed(sim_factory) -> None:
    sim = await sim_factory(markets=5, seed=7)
    code = sim.markets[0]
    async with UpbitRestClient(sim.base_url) as client:
        markets = await client.markets()
        assert [m.market for m in markets] == sim.markets
        assert all(isinstance(m, Market) and m.market_event is not None for m in markets)
        plain = await client.markets(details=False)
        assert all(m.market_event is None for m in plain)

        for interval in (
            "1s",
            "1m",
            "3m",
            "5m",
            "10m",
            "15m",
            "30m",
            "60m",
            "240m",
            "1d",
            "1w",
            "1mo",
            "1y",
        ):
            page = await client.candles(code, interval, count=3)
            assert page, interval
            assert all(isinstance(c, Candle) and c.interval == interval for c in page)
            assert [c.start_utc for c in page] == sorted((c.start_utc for c in page), reverse=True)

        trades = await client.trades(code, count=50)
        assert 0 < len(trades) <= 50
        assert all(isinstance(t, Trade) and t.code == code for t in trades)

        tickers = await client.ticker(sim.markets[:3])
        assert [t.code for t in tickers] == sim.markets[:3]
        assert all(isinstance(t, Ticker) for t in tickers)

        books = await client.orderbook(sim.markets[:2], count=5)
        assert [b.code for b in books] == sim.markets[:2]
        assert all(isinstance(b, Orderbook) and 0 < len(b.units) <= 5 for b in books)
        stats = client.stats()
    assert set(stats) == {"market", "candles", "crix-trades", "ticker", "orderbook"}
    assert all(s.responses_429 == 0 and s.last_remaining is not None for s in stats.values())


@pytest.mark.parametrize(
    ("interval", "span"), [("1m", timedelta(minutes=650)), ("1s", timedelta(minutes=40))]
)
async def test_candles_range_matches_small_pages_and_the_tape(sim_factory, interval, span) -> None:
    sim = await sim_factory(markets=5, seed=7)
    now = datetime.fromtimestamp(sim.now_ms() / 1000, UTC)
    end = _minute(now) - timedelta(hours=2)
    start = end - span
    step_ms = 60_000 if interval == "1m" else 1000
    code = sim.markets[-1]
    async with UpbitRestClient(sim.base_url) as client:
        got = [c async for c in client.candles_range(code, interval, start, end)]
        starts = [c.start_utc for c in got]
        assert starts == sorted(set(starts), reverse=True)  # newest first, no duplicates
        assert all(start <= s < end for s in starts)

        # the same range fetched by small pages (count=30) chained by hand
        small: list[Candle] = []
        to = end
        while True:
            page = await client.candles(code, interval, to=to, count=30)
            small += [c for c in page if c.start_utc >= start]
            if len(page) < 30 or page[-1].start_utc <= start:
                break
            to = page[-1].start_utc
        assert [c.start_utc for c in small] == starts
        assert [c.trade_price for c in small] == [c.trade_price for c in got]
        stats = client.stats()["candles"]
    assert stats.requests > 3 + len(starts) // 30
    assert stats.responses_429 == 0

    # against the tape: a candle exists exactly for the minutes with at least one trade
    async with httpx.AsyncClient(base_url=sim.base_url) as admin:
        truth = (
            await admin.get(
                "/_sim/truth/trades",
                params={
                    "market": code,
                    "from_ms": int(start.timestamp() * 1000),
                    "to_ms": int(end.timestamp() * 1000),
                },
            )
        ).json()
    # the simulator's sequential_id is trade_ms * 10_000 + n (Upbit's observed structure)
    buckets = {(sid // 10_000) // step_ms * step_ms for sid in truth["sequential_ids"]}
    assert {int(s.timestamp() * 1000) for s in starts} == buckets
    assert len(starts) > 400  # crosses several page boundaries
    if interval == "1s":
        assert len(starts) < span.total_seconds()  # quiet seconds: absent, not zero-filled


async def test_candles_range_is_exact_at_page_boundaries(sim_factory) -> None:
    """Every candle of the boundary minutes is present once: compare with one big page."""
    sim = await sim_factory(markets=3, seed=3)
    code = sim.markets[0]
    now = datetime.fromtimestamp(sim.now_ms() / 1000, UTC)
    end = _minute(now) - timedelta(minutes=30)
    async with UpbitRestClient(sim.base_url) as client:
        big = await client.candles(code, "1m", to=end, count=200)
        start = big[-1].start_utc
        ranged = [c async for c in client.candles_range(code, "1m", start, end)]
    assert [c.start_utc for c in ranged] == [c.start_utc for c in big]


async def test_trades_iter_pages_by_cursor_without_dup(sim_factory) -> None:
    sim = await sim_factory(markets=3, seed=5)
    code = sim.markets[0]
    async with UpbitRestClient(sim.base_url) as client:
        newest = await client.trades(code, count=1)
        since = newest[0].trade_timestamp - 5 * 60 * 1000
        got = [t async for t in client.trades_iter(code, since_ms=since, count=50)]
        calls = client.stats()["crix-trades"].requests
    ids = [t.sequential_id for t in got]
    assert len(ids) == len(set(ids))
    assert len(ids) > 50  # several pages
    assert calls >= 2
    async with httpx.AsyncClient(base_url=sim.base_url) as admin:
        truth = (
            await admin.get(
                "/_sim/truth/trades",
                params={"market": code, "from_ms": since, "to_ms": newest[0].trade_timestamp + 1},
            )
        ).json()
    assert set(truth["sequential_ids"]) <= set(ids)


async def test_burst_of_60_candle_requests_draws_no_429(sim_factory) -> None:
    sim = await sim_factory(markets=3, rate_limits=True)
    code = sim.markets[0]
    async with UpbitRestClient(sim.base_url) as client:
        started = time.monotonic()
        pages = await asyncio.gather(*(client.candles(code, "1m", count=5) for _ in range(60)))
        elapsed = time.monotonic() - started
        stats = client.stats()["candles"]
    assert all(len(p) == 5 for p in pages)
    assert stats.responses_429 == 0
    assert stats.responses_418 == 0
    assert stats.requests == 60
    assert 5.0 <= elapsed < 9.0  # ~10/s: at the ceiling, not far below it


async def test_429_burst_is_retried(sim_factory) -> None:
    sim = await sim_factory(markets=3)
    async with httpx.AsyncClient(base_url=sim.base_url) as admin:
        await admin.post("/_sim/faults/rest_429", params={"seconds": 1.5})
    async with UpbitRestClient(sim.base_url) as client:
        started = time.monotonic()
        tickers = await client.ticker(sim.markets[:1])
        elapsed = time.monotonic() - started
        stats = client.stats()["ticker"]
    assert len(tickers) == 1
    assert stats.responses_429 >= 1
    assert stats.retries == stats.responses_429
    assert elapsed >= 1.0


async def test_5xx_burst_is_retried(sim_factory) -> None:
    sim = await sim_factory(markets=3)
    async with httpx.AsyncClient(base_url=sim.base_url) as admin:
        await admin.post("/_sim/faults/rest_5xx", params={"seconds": 0.5})
    async with UpbitRestClient(sim.base_url, backoff_base_s=0.2, max_retries=6) as client:
        books = await client.orderbook(sim.markets[:1])
        stats = client.stats()["orderbook"]
    assert len(books) == 1
    assert stats.server_errors >= 1


async def test_typed_errors_for_unknown_code_and_bad_unit(sim_factory) -> None:
    sim = await sim_factory(markets=3)
    async with UpbitRestClient(sim.base_url) as client:
        with pytest.raises(UpbitApiError) as not_found:
            await client.ticker([sim.markets[0], "KRW-NOPE"])
        with pytest.raises(UpbitApiError) as bad_unit:
            await client.candles(sim.markets[0], "2m")
    assert (not_found.value.status, not_found.value.name) == (404, 404)
    assert not_found.value.message == "Code not found"
    assert (bad_unit.value.status, bad_unit.value.name) == (400, 400)
    assert bad_unit.value.message == "specified unit is not valid."
