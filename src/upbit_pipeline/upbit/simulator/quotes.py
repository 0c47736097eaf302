"""Tickers and candles derived from the tape (the same functions serve REST and WebSocket).

Ticker day fields reset at 00:00 UTC; ``prev_closing_price`` is the previous UTC day's close.
Rolling 24 h sums are at minute granularity for the part before the current minute (simpler than
Upbit, whose window is presumably exact to the trade).
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from upbit_pipeline.upbit.simulator.tape import DAY_MS, MIN_MS, Row, Tape, Trade, merge, trades_row

__all__ = ["TickerView", "candle_at", "candles", "ticker_apply", "ticker_at"]

_MPD = 1_440


@dataclass(frozen=True, slots=True)
class TickerView:
    """Everything a ticker frame or REST ticker row says (prices/sizes in 1e-8 units)."""

    mi: int
    day: int
    open: int
    high: int
    low: int
    price: int
    prev_close: int
    trade_volume: int
    is_bid: bool
    trade_ts: int
    acc_volume: int
    acc_price: int
    acc_ask: int
    acc_bid: int
    vol_24h_base: int  # full minutes of the rolling window before the current minute
    price_24h_base: int
    base_minute: int
    minute_volume: int  # this minute's trades so far
    minute_price: int
    w52: tuple[int, int, int, int]

    @property
    def vol_24h(self) -> int:
        return self.vol_24h_base + self.minute_volume

    @property
    def price_24h(self) -> int:
        return self.price_24h_base + self.minute_price


def ticker_at(tape: Tape, mi: int, now: int) -> TickerView:
    """The ticker as of ``now`` (computed from the tape, O(minutes of today))."""
    day = now // DAY_MS
    minute = now // MIN_MS
    prev_close = tape.prev_close(mi, day, now)
    agg = tape.day_agg(mi, day, now)
    last = tape.last_trade(mi, now)
    part = tape.partial_row(mi, minute, now)
    vol24, price24 = tape.range_sum(mi, minute - _MPD + 1, minute)
    w52 = tape.week52(mi, day)
    if agg is not None:
        w52 = (max(w52[0], agg.high), w52[1], min(w52[2], agg.low), w52[3])
    return TickerView(
        mi=mi,
        day=day,
        open=agg.open if agg else prev_close,
        high=agg.high if agg else prev_close,
        low=agg.low if agg else prev_close,
        price=last.price if last else prev_close,
        prev_close=prev_close,
        trade_volume=last.volume if last else 0,
        is_bid=last.is_bid if last else True,
        trade_ts=last.ts if last else day * DAY_MS,
        acc_volume=agg.volume if agg else 0,
        acc_price=agg.turnover if agg else 0,
        acc_ask=agg.ask_volume if agg else 0,
        acc_bid=(agg.volume - agg.ask_volume) if agg else 0,
        vol_24h_base=vol24,
        price_24h_base=price24,
        base_minute=minute,
        minute_volume=part.volume if part else 0,
        minute_price=part.turnover if part else 0,
        w52=w52,
    )


def ticker_apply(tape: Tape, view: TickerView, trade: Trade) -> TickerView:
    """The ticker after one more trade (incremental; used by the live stream)."""
    day = trade.ts // DAY_MS
    minute = trade.ts // MIN_MS
    if day != view.day:
        view = replace(
            view,
            day=day,
            open=trade.price,
            high=trade.price,
            low=trade.price,
            prev_close=view.price,
            acc_volume=0,
            acc_price=0,
            acc_ask=0,
            acc_bid=0,
            w52=tape.week52(view.mi, day),
        )
    if minute != view.base_minute:
        vol24, price24 = tape.range_sum(view.mi, minute - _MPD + 1, minute)
        view = replace(
            view,
            vol_24h_base=vol24,
            price_24h_base=price24,
            base_minute=minute,
            minute_volume=0,
            minute_price=0,
        )
    turnover = trade.price * trade.volume // 100_000_000
    w52 = view.w52
    if trade.price > w52[0] or trade.price < w52[2]:
        w52 = (max(w52[0], trade.price), w52[1], min(w52[2], trade.price), w52[3])
    return replace(
        view,
        high=max(view.high, trade.price),
        low=min(view.low, trade.price),
        price=trade.price,
        trade_volume=trade.volume,
        is_bid=trade.is_bid,
        trade_ts=trade.ts,
        acc_volume=view.acc_volume + trade.volume,
        acc_price=view.acc_price + turnover,
        acc_ask=view.acc_ask + (0 if trade.is_bid else trade.volume),
        acc_bid=view.acc_bid + (trade.volume if trade.is_bid else 0),
        minute_volume=view.minute_volume + trade.volume,
        minute_price=view.minute_price + turnover,
        w52=w52,
    )


# -- candles ----------------------------------------------------------------------------------
def _period_start(day: int, period: str) -> int:
    """First day (days since epoch) of the week (Monday), month or year containing ``day``."""
    if period == "weeks":
        return day - (day + 3) % 7  # 1970-01-01 was a Thursday
    tm = time.gmtime(day * 86_400)
    month = 1 if period == "years" else tm.tm_mon
    return calendar.timegm((tm.tm_year, month, 1, 0, 0, 0)) // 86_400


def _group(items: Iterator[tuple[int, Row]], count: int) -> list[tuple[int, Row]]:
    """Merge consecutive (bucket, row) items given newest first; at most ``count`` buckets."""
    out: list[tuple[int, Row]] = []
    bucket = -1
    rows: list[Row] = []
    for b, row in items:
        if b != bucket:
            if rows:
                agg = merge(rows[::-1])
                assert agg is not None
                out.append((bucket, agg))
                if len(out) == count:
                    return out
            bucket, rows = b, []
        rows.append(row)
    if rows:
        agg = merge(rows[::-1])
        assert agg is not None
        out.append((bucket, agg))
    return out[:count]


def candles(
    tape: Tape, mi: int, kind: str, unit: int, *, to_ms: int, count: int, now: int
) -> list[tuple[int, Row]]:
    """Candles newest first: (bucket start ms, aggregate), buckets starting before ``to_ms``.

    ``kind`` is ``seconds``, ``minutes`` (with ``unit``), ``days``, ``weeks``, ``months`` or
    ``years``. Buckets without trades do not exist (gaps), as on Upbit.
    """
    last = min(to_ms - 1, now)
    if last < 0:
        return []
    # A bucket cut by a non-aligned ``to`` holds only trades before ``to`` (our choice where Upbit
    # is UNCONFIRMED); it makes every answer a function of ``to`` alone once ``to`` is past.
    now = last
    if kind == "seconds":
        end_s = last // 1000 + 1
        trade_rows = (
            (t.ts // 1000 * 1000, trades_row([t]) or _never())
            for t in tape.trades_desc(mi, end_s * 1000)
        )
        return _group(trade_rows, count)
    if kind == "minutes":
        unit_ms = unit * MIN_MS
        before = (last // unit_ms + 1) * unit
        rows = ((r.minute // unit * unit * MIN_MS, r) for r in tape.rows_desc(mi, before, now))
        return _group(rows, count)
    day = last // DAY_MS
    days = _days_desc(tape, mi, day, now)
    if kind == "days":
        return [(d * DAY_MS, agg) for d, agg in _take(days, count)]
    return _group(((_period_start(d, kind) * DAY_MS, agg) for d, agg in days), count)


def _never() -> Row:
    raise AssertionError("a single trade always aggregates")


def _take(items: Iterator[tuple[int, Row]], count: int) -> list[tuple[int, Row]]:
    out = []
    for item in items:
        out.append(item)
        if len(out) == count:
            break
    return out


def _days_desc(tape: Tape, mi: int, day: int, now: int) -> Iterator[tuple[int, Row]]:
    while day >= tape.first_day:
        agg = tape.day_agg(mi, day, now)
        if agg is not None:
            yield day, agg
        day -= 1


def candle_at(tape: Tape, mi: int, unit_s: int, now: int) -> tuple[int, Row] | None:
    """The current WS candle of ``unit_s`` seconds at ``now`` (else the latest earlier one)."""
    if unit_s == 1:
        found = candles(tape, mi, "seconds", 1, to_ms=now + 1, count=1, now=now)
    else:
        found = candles(tape, mi, "minutes", unit_s // 60, to_ms=now + 1, count=1, now=now)
    return found[0] if found else None
