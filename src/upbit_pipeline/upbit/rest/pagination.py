"""Paging over Upbit's newest-first REST lists: candles by ``to``, trades by ``cursor``.

Candles (``/v1/candles/*``): pages of at most 200, newest first; ``to`` is exclusive; the next
``to`` is the start of the oldest candle received. Candles without trades do not exist, so a
"hole" in the result is a quiet period, never a paging artefact. Guarantees of
:func:`iter_candles_range`: every candle Upbit holds with ``start <= start_utc < end`` is yielded
exactly once, newest first; no candle outside the range is yielded; it stops at the first short
page or at the first page that reaches ``start``.

``to`` for a non-aligned instant (inside a candle) is undocumented by Upbit, so the first ``to``
is rounded *up* to the interval boundary and candles at or after ``end`` are filtered locally.
The newest page may hold the still-forming candle when ``end`` is in the future.

Trades (``/v1/trades/ticks``): ``cursor`` = ``sequential_id`` of the last trade received gives
the trades before it. ``sequential_id`` does not order trades, so the iterator also drops ids it
has already yielded at the page boundary.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

from upbit_pipeline.upbit.models import Candle, Trade

__all__ = [
    "CANDLE_PAGE_MAX",
    "TRADE_PAGE_MAX",
    "ceil_to_boundary",
    "format_to",
    "interval_path",
    "iter_candles_range",
    "iter_trades",
]

log = logging.getLogger(__name__)

CANDLE_PAGE_MAX = 200
TRADE_PAGE_MAX = 500

MINUTE_UNITS = (1, 3, 5, 10, 15, 30, 60, 240)
_FIXED_PATHS = {
    "1s": "/candles/seconds",
    "1d": "/candles/days",
    "1w": "/candles/weeks",
    "1mo": "/candles/months",
    "1y": "/candles/years",
}

CandlePage = Callable[[datetime, int], Awaitable[list[Candle]]]
TradePage = Callable[[int | None, int], Awaitable[list[Trade]]]


def interval_path(interval: str) -> str:
    """REST path (relative to ``/v1``) of a canonical interval: ``"5m"`` -> ``/candles/minutes/5``.

    Any ``<n>m`` is passed through (the server answers 400 "specified unit is not valid." for an
    unsupported unit, which the client raises as :class:`UpbitApiError`); anything else is a
    ValueError here.
    """
    if interval in _FIXED_PATHS:
        return _FIXED_PATHS[interval]
    if interval.endswith("m") and interval[:-1].isdigit():
        return f"/candles/minutes/{int(interval[:-1])}"
    raise ValueError(f"unknown candle interval {interval!r} (1s, 1m..240m, 1d, 1w, 1mo, 1y)")


def format_to(when: datetime) -> str:
    """``to`` parameter: ISO 8601 UTC with ``Z``, whole seconds rounded up (httpx URL-encodes it).

    Rounding up keeps a candle that starts before a fractional ``to`` inside the page.
    """
    if when.tzinfo is None:
        raise ValueError("datetime must be timezone-aware (use datetime.now(UTC))")
    utc = when.astimezone(UTC)
    if utc.microsecond:
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def ceil_to_boundary(when: datetime, interval: str) -> datetime:
    """Smallest candle boundary >= ``when`` (UTC; weeks start Monday, months on the 1st)."""
    utc = when.astimezone(UTC)
    if interval == "1mo":
        floor = utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        if floor == utc:
            return floor
        return floor.replace(year=floor.year + floor.month // 12, month=floor.month % 12 + 1)
    if interval == "1y":
        floor = utc.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        return floor if floor == utc else floor.replace(year=floor.year + 1)
    step, origin = _fixed_step(interval)
    steps = -((origin - utc) // step)  # ceil division of timedeltas
    return origin + steps * step


def _fixed_step(interval: str) -> tuple[timedelta, datetime]:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    if interval == "1s":
        return timedelta(seconds=1), epoch
    if interval == "1d":
        return timedelta(days=1), epoch
    if interval == "1w":
        return timedelta(weeks=1), datetime(1970, 1, 5, tzinfo=UTC)  # a Monday
    if interval.endswith("m") and interval[:-1].isdigit():
        return timedelta(minutes=int(interval[:-1])), epoch
    raise ValueError(f"unknown candle interval {interval!r}")


async def iter_candles_range(
    fetch: CandlePage, start: datetime, end: datetime, interval: str
) -> AsyncIterator[Candle]:
    """Yield the candles with ``start <= start_utc < end``, newest first, exactly once each.

    ``fetch(to, count)`` returns one page (newest first, ``to`` exclusive).
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if start >= end:
        return
    to = ceil_to_boundary(end, interval)
    while True:
        page = await fetch(to, CANDLE_PAGE_MAX)
        oldest: datetime | None = None
        for candle in page:
            if candle.start_utc >= to:  # defensive: `to` is exclusive, so this is a duplicate
                log.warning("candle page repeated %s %s", candle.code, candle.start_utc)
                continue
            if oldest is None or candle.start_utc < oldest:
                oldest = candle.start_utc
            if start <= candle.start_utc < end:
                yield candle
        if oldest is None or len(page) < CANDLE_PAGE_MAX or oldest <= start:
            return
        to = oldest


async def iter_trades(
    fetch: TradePage, *, count: int = TRADE_PAGE_MAX, since_ms: int | None = None
) -> AsyncIterator[Trade]:
    """Yield trades newest first, paging with ``cursor`` = last ``sequential_id`` received.

    ``fetch(cursor, count)`` returns one page. Stops at an empty page, at a page with no new
    trade, after a short page (the day is exhausted), or once a trade older than ``since_ms``
    appears (it is not yielded).
    """
    cursor: int | None = None
    previous: set[int] = set()
    while True:
        page = await fetch(cursor, count)
        fresh = [t for t in page if t.sequential_id not in previous]
        if not fresh:
            return
        for trade in fresh:
            if since_ms is not None and trade.trade_timestamp < since_ms:
                return
            yield trade
        if len(page) < count:
            return
        previous = {t.sequential_id for t in page}
        cursor = page[-1].sequential_id
