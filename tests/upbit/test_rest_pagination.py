"""Paging logic against an in-memory page function that follows Upbit's documented semantics
(newest first, ``to`` exclusive, at most 200 per page, candles without trades absent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upbit_pipeline.upbit.models import Candle, Trade
from upbit_pipeline.upbit.rest import (
    ceil_to_boundary,
    format_to,
    interval_path,
    iter_candles_range,
    iter_trades,
)

T0 = datetime(2026, 3, 11, 0, 0, tzinfo=UTC)


def candle(start: datetime) -> Candle:
    return Candle("KRW-BTC", "1m", start, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0)


def exchange(starts: list[datetime]):
    """A page function over a fixed set of candle starts, counting calls."""
    ordered = sorted(starts, reverse=True)
    calls: list[datetime] = []

    async def fetch(to: datetime, count: int) -> list[Candle]:
        calls.append(to)
        return [candle(s) for s in ordered if s < to][: min(count, 200)]

    return fetch, calls


async def collect(fetch, start: datetime, end: datetime, interval: str = "1m") -> list[Candle]:
    return [c async for c in iter_candles_range(fetch, start, end, interval)]


async def test_range_over_several_pages_has_no_dup_and_no_hole() -> None:
    starts = [T0 + timedelta(minutes=i) for i in range(1000) if i % 7 != 3]  # quiet minutes absent
    fetch, calls = exchange(starts)
    start, end = T0 + timedelta(minutes=5), T0 + timedelta(minutes=905)
    got = await collect(fetch, start, end)
    expected = [s for s in starts if start <= s < end]
    assert [c.start_utc for c in got] == sorted(expected, reverse=True)
    assert len({c.start_utc for c in got}) == len(got)
    assert len(calls) == 4  # 771 candles in range: 4 pages, the 4th reaches `start`
    assert calls[0] == end


async def test_short_page_stops() -> None:
    starts = [T0 + timedelta(minutes=i) for i in range(50)]
    fetch, calls = exchange(starts)
    got = await collect(fetch, T0 - timedelta(days=1), T0 + timedelta(hours=1))
    assert len(got) == 50
    assert len(calls) == 1


async def test_unaligned_end_is_rounded_up_and_filtered() -> None:
    starts = [T0 + timedelta(minutes=i) for i in range(10)]
    fetch, calls = exchange(starts)
    got = await collect(fetch, T0 + timedelta(minutes=2), T0 + timedelta(minutes=5, seconds=30))
    assert [c.start_utc.minute for c in got] == [5, 4, 3, 2]
    assert calls[0] == T0 + timedelta(minutes=6)


async def test_empty_or_inverted_range() -> None:
    fetch, calls = exchange([T0])
    assert await collect(fetch, T0, T0) == []
    assert calls == []
    with pytest.raises(ValueError, match="aware"):
        await collect(fetch, datetime(2026, 1, 1), T0)


@settings(max_examples=40, deadline=None)
@given(
    minutes=st.sets(st.integers(0, 1500), max_size=900),
    a=st.integers(-10, 1510),
    b=st.integers(-10, 1510),
)
async def test_range_equals_filter_property(minutes: set[int], a: int, b: int) -> None:
    starts = [T0 + timedelta(minutes=m) for m in minutes]
    fetch, _ = exchange(starts)
    start, end = T0 + timedelta(minutes=min(a, b)), T0 + timedelta(minutes=max(a, b))
    got = [c.start_utc for c in await collect(fetch, start, end)]
    assert got == sorted((s for s in starts if start <= s < end), reverse=True)


def test_interval_paths() -> None:
    assert interval_path("1s") == "/candles/seconds"
    assert interval_path("240m") == "/candles/minutes/240"
    assert interval_path("1d") == "/candles/days"
    assert interval_path("1w") == "/candles/weeks"
    assert interval_path("1mo") == "/candles/months"
    assert interval_path("1y") == "/candles/years"
    assert interval_path("2m") == "/candles/minutes/2"  # the server answers 400 for it
    with pytest.raises(ValueError):
        interval_path("1h")


def test_ceil_to_boundary() -> None:
    t = datetime(2026, 3, 11, 14, 40, 30, 500, tzinfo=UTC)
    assert ceil_to_boundary(t, "1s") == datetime(2026, 3, 11, 14, 40, 31, tzinfo=UTC)
    assert ceil_to_boundary(t, "1m") == datetime(2026, 3, 11, 14, 41, tzinfo=UTC)
    assert ceil_to_boundary(t, "240m") == datetime(2026, 3, 11, 16, 0, tzinfo=UTC)
    assert ceil_to_boundary(t, "1d") == datetime(2026, 3, 12, tzinfo=UTC)
    assert ceil_to_boundary(t, "1w") == datetime(2026, 3, 16, tzinfo=UTC)  # a Monday
    assert ceil_to_boundary(t, "1mo") == datetime(2026, 4, 1, tzinfo=UTC)
    assert ceil_to_boundary(datetime(2026, 12, 5, tzinfo=UTC), "1mo") == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    assert ceil_to_boundary(t, "1y") == datetime(2027, 1, 1, tzinfo=UTC)
    aligned = datetime(2026, 3, 9, tzinfo=UTC)
    for interval in ("1s", "1m", "1d", "1w"):
        assert ceil_to_boundary(aligned, interval) == aligned


def test_format_to() -> None:
    assert format_to(datetime(2025, 6, 24, 4, 56, 53, tzinfo=UTC)) == "2025-06-24T04:56:53Z"
    kst = datetime(2025, 6, 24, 13, 56, 53, tzinfo=UTC).astimezone(
        __import__("datetime").timezone(timedelta(hours=9))
    )
    assert format_to(kst) == "2025-06-24T13:56:53Z"
    assert format_to(datetime(2025, 6, 24, 4, 56, 53, 1, tzinfo=UTC)) == "2025-06-24T04:56:54Z"
    with pytest.raises(ValueError):
        format_to(datetime(2025, 6, 24))


def trade(sid: int, ts: int) -> Trade:
    return Trade("KRW-BTC", ts, 1.0, 1.0, "ASK", sid, 1.0, 0.0, ts, "2026-03-11", "00:00:00")


async def test_trades_iter_pages_by_cursor() -> None:
    trades = [trade(1000 - i, 10_000 - i) for i in range(1200)]  # newest first
    cursors: list[int | None] = []

    async def fetch(cursor: int | None, count: int) -> list[Trade]:
        cursors.append(cursor)
        rest = trades if cursor is None else [t for t in trades if t.sequential_id < cursor]
        return rest[:count]

    got = [t async for t in iter_trades(fetch, count=500)]
    assert [t.sequential_id for t in got] == [t.sequential_id for t in trades]
    assert cursors == [None, trades[499].sequential_id, trades[999].sequential_id]

    cursors.clear()
    since = [t async for t in iter_trades(fetch, count=500, since_ms=10_000 - 600)]
    assert len(since) == 601
    assert len(cursors) == 2
