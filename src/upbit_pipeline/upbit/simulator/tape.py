"""The trade tape: a pure function of (seed, market, simulated time, scenario).

Design, and why it is cheap:

* **Day anchors.** The log price at 00:00 UTC of every day is multi-octave value noise over the
  day number (periods 1, 7, 30, 120 days), so any day's anchor is O(1) -- no walking from an origin.
* **Day tape.** One ``random.Random`` seeded by ``(seed, market, day)`` draws a Brownian bridge of
  1,440 minute mids from this day's anchor to the next, then per minute a trade count (Poisson with
  an intraday season and burstiness), and 1..4 *segments* (price visits) with their trade count,
  total volume and side. A minute's OHLC, volume, turnover (exact ``sum(price*volume)``) and last
  trade time follow from its segments in O(segments), so a whole BTC day costs a few ms and days,
  weeks and months aggregate without ever materialising trades.
* **Trades on demand.** ``minute_trades`` expands one minute's segments into individual trades
  (times, a volume split that sums exactly to the segment volume, sequential ids) with its own
  RNG seeded by ``(seed, market, minute)``. A REST 1-minute candle therefore equals the aggregate
  of that minute's trades by construction, whoever asks and whenever.

Simpler than Upbit (knowingly): all trades of a segment share one price and side; volumes of
sub-100-KRW coins are quantised so that price*volume has at most 8 decimals.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from upbit_pipeline.upbit.simulator.config import Scenario
from upbit_pipeline.upbit.simulator.market import SCALE, MarketSpec, key, tick_units

__all__ = ["DAY_MS", "MIN_MS", "Agg", "DayTape", "Tape", "Trade"]

DAY_MS = 86_400_000
MIN_MS = 60_000
_MPD = 1_440
_OCTAVES = ((1.0, 1.0), (7.0, 1.6), (30.0, 2.6), (120.0, 3.5))
# Intraday activity: busiest in Korean daytime (KST = UTC+9), quietest around 04:00 KST.
_SEASON = [1.0 + 0.45 * math.sin(2 * math.pi * (j / _MPD - 0.1)) for j in range(_MPD)]


class Trade(NamedTuple):
    """One trade: epoch-ms time, price and volume in 1e-8 units, side, sequential id."""

    ts: int
    price: int
    volume: int
    is_bid: bool  # True = BID (buyer lifted an ask), False = ASK
    sid: int


class Row(NamedTuple):
    """One non-empty minute (or an aggregate of several)."""

    minute: int  # epoch minute (epoch_ms // 60_000) of the first minute
    n: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    turnover: int  # sum(price*volume) in 1e-8 units, exact
    last_ts: int
    ask_volume: int


Agg = Row


@dataclass(slots=True)
class DayTape:
    """The non-empty minutes of one UTC day, with their segments."""

    day: int
    minutes: list[int]
    rows: list[Row]
    segs: list[tuple[tuple[int, int, int, bool], ...]]
    last_offs: list[int]
    cum: list[tuple[int, int]] | None = None  # prefix sums of (volume, turnover)

    def prefix(self) -> list[tuple[int, int]]:
        if self.cum is None:
            cum, v, t = [(0, 0)], 0, 0
            for row in self.rows:
                v += row.volume
                t += row.turnover
                cum.append((v, t))
            self.cum = cum
        return self.cum


def merge(rows: list[Row]) -> Row | None:
    """Aggregate rows given in ascending time order."""
    if not rows:
        return None
    first, last = rows[0], rows[-1]
    return Row(
        first.minute,
        sum(r.n for r in rows),
        first.open,
        max(r.high for r in rows),
        min(r.low for r in rows),
        last.close,
        sum(r.volume for r in rows),
        sum(r.turnover for r in rows),
        last.last_ts,
        sum(r.ask_volume for r in rows),
    )


def trades_row(trades: list[Trade]) -> Row | None:
    """Aggregate trades given in ascending time order."""
    if not trades:
        return None
    prices = [t.price for t in trades]
    return Row(
        trades[0].ts // MIN_MS,
        len(trades),
        prices[0],
        max(prices),
        min(prices),
        prices[-1],
        sum(t.volume for t in trades),
        sum(t.price * t.volume for t in trades) // SCALE,
        trades[-1].ts,
        sum(t.volume for t in trades if not t.is_bid),
    )


def _round_tick(price_units: float) -> int:
    p = max(1, int(price_units))
    tick = tick_units(p)
    return max(tick, (p + tick // 2) // tick * tick)


class Tape:
    """Deterministic tape for a set of markets. Thread-unsafe caches; used from one event loop."""

    def __init__(
        self, specs: list[MarketSpec], seed: int, first_day: int, scenario: Scenario, start_ms: int
    ) -> None:
        self.specs = specs
        self.seed = seed
        self.first_day = first_day  # no trades before this UTC day (the "listing")
        self._days: OrderedDict[tuple[int, int], DayTape] = OrderedDict()
        self._day_cap = 64 + 4 * len(specs)  # today, yesterday and prev-close lookups per market
        self._trades: OrderedDict[tuple[int, int], list[Trade]] = OrderedDict()
        self._day_aggs: dict[tuple[int, int], Row | None] = {}
        self._noise_cache: dict[tuple[str, float, int], float] = {}
        self._w52: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        self._anom: dict[str, list[tuple[str, int, int, float]]] = {}
        for a in scenario.anomalies:
            t0, t1 = a.window(start_ms)
            self._anom.setdefault(a.market, []).append((a.kind, t0, t1, a.size))

    # -- price anchors ----------------------------------------------------------------------
    def anchor_log(self, mi: int, day: int) -> float:
        """Log price at 00:00 UTC of ``day``: value noise over the day number."""
        spec = self.specs[mi]
        total = math.log(spec.start_price)
        for period, amp in _OCTAVES:
            x = day / period
            i = math.floor(x)
            f = x - i
            a, b = self._noise(spec.code, period, i), self._noise(spec.code, period, i + 1)
            w = f * f * (3 - 2 * f)
            total += amp * spec.daily_vol * (a + (b - a) * w)
        return total

    def _noise(self, code: str, period: float, i: int) -> float:
        cache_key = (code, period, i)
        value = self._noise_cache.get(cache_key)
        if value is None:
            value = random.Random(key(self.seed, code, period, i)).gauss(0.0, 1.0)
            self._noise_cache[cache_key] = value
        return value

    def _multipliers(self, code: str, t: int) -> tuple[float, float]:
        """(price factor, activity factor) of the scenario's anomalies at time ``t``."""
        price, activity = 1.0, 1.0
        for kind, t0, t1, size in self._anom.get(code, ()):
            if t0 <= t < t1:
                x = (t - t0) / (t1 - t0)
                tri = min(1.0, 2 * x) if x < 0.5 else 2 * (1 - x)
                if kind == "pump":
                    price *= 1 + size * tri
                    activity *= 1 + 4 * tri
                elif kind == "dump":
                    price *= max(0.01, 1 - size * tri)
                    activity *= 1 + 4 * tri
                else:
                    activity *= 1 + size
        return price, activity

    # -- day generation ---------------------------------------------------------------------
    def day(self, mi: int, day: int) -> DayTape:
        """The day tape (LRU-cached: a day is regenerated in a few ms if evicted)."""
        cache_key = (mi, day)
        tape = self._days.get(cache_key)
        if tape is None:
            tape = self._generate(mi, day)
            self._days[cache_key] = tape
            if len(self._days) > self._day_cap:
                self._days.popitem(last=False)
        else:
            self._days.move_to_end(cache_key)
        return tape

    def _generate(self, mi: int, day: int) -> DayTape:
        spec = self.specs[mi]
        out = DayTape(day, [], [], [], [])
        if day < self.first_day:
            return out
        rng = random.Random(key(self.seed, spec.code, day))
        gauss, rand, lognorm = rng.gauss, rng.random, rng.lognormvariate
        la, lb = self.anchor_log(mi, day), self.anchor_log(mi, day + 1)
        sig = spec.daily_vol / math.sqrt(_MPD)
        mids = [la]
        level = la
        for _ in range(_MPD):
            level += gauss(0.0, sig)
            mids.append(level)
        corr = (lb - mids[-1]) / _MPD
        per_min = spec.trades_per_s * 60.0
        anomalous = spec.code in self._anom
        prev_price = _round_tick(math.exp(la) * SCALE)
        for j in range(_MPD):
            minute = day * _MPD + j
            pmult, amult = (
                self._multipliers(spec.code, minute * MIN_MS + 30_000) if anomalous else (1.0, 1.0)
            )
            lam = per_min * _SEASON[j] * lognorm(0.0, 0.5) * amult
            n = _poisson(rand(), lam, gauss)
            if n == 0:
                continue
            m = 1 if n == 1 else min(n, 1 + int(rand() * 4))
            base, rem = divmod(n, m)
            mid0 = mids[j] + corr * j
            dmid = mids[j + 1] + corr * (j + 1) - mid0
            segs = []
            high, low, vol, turn, ask_vol = 0, 1 << 62, 0, 0, 0
            for s in range(m):
                ns = base + (1 if s < rem else 0)
                pf = math.exp(mid0 + dmid * (s + 0.5) / m + gauss(0.0, sig * 0.6)) * pmult
                price = _round_tick(pf * SCALE)
                is_bid = price > prev_price or (price == prev_price and rand() < 0.5)
                step = spec.volume_step(price)
                notional = spec.notional_krw * lognorm(0.0, 1.0) * ns * math.sqrt(amult)
                units = max(ns, int(notional / pf * SCALE) // step) * step
                segs.append((price, ns, units, is_bid))
                high, low = max(high, price), min(low, price)
                vol += units
                turn += price * units // SCALE
                if not is_bid:
                    ask_vol += units
                prev_price = price
            last_off = MIN_MS - 1 - int(rng.expovariate(1.0) * MIN_MS / (n + 1))
            last_off = min(MIN_MS - 1, max(0, last_off))
            out.minutes.append(minute)
            out.rows.append(
                Row(
                    minute,
                    n,
                    segs[0][0],
                    high,
                    low,
                    segs[-1][0],
                    vol,
                    turn,
                    minute * MIN_MS + last_off,
                    ask_vol,
                )
            )
            out.segs.append(tuple(segs))
            out.last_offs.append(last_off)
        return out

    # -- trades -------------------------------------------------------------------------------
    def minute_trades(self, mi: int, minute: int) -> list[Trade]:
        """All trades of one minute, ascending (cached). Aggregates exactly to the minute row."""
        cache_key = (mi, minute)
        cached = self._trades.get(cache_key)
        if cached is not None:
            return cached
        tape = self.day(mi, minute // _MPD)
        idx = bisect_left(tape.minutes, minute)
        trades: list[Trade] = []
        if idx < len(tape.minutes) and tape.minutes[idx] == minute:
            trades = self._expand(mi, minute, tape.rows[idx].n, tape.segs[idx], tape.last_offs[idx])
        self._trades[cache_key] = trades
        if len(self._trades) > 4096:
            self._trades.popitem(last=False)
        return trades

    def _expand(
        self,
        mi: int,
        minute: int,
        n: int,
        segs: tuple[tuple[int, int, int, bool], ...],
        last_off: int,
    ) -> list[Trade]:
        spec = self.specs[mi]
        rng = random.Random(key(self.seed, spec.code, minute, "t"))
        rand, expo = rng.random, rng.expovariate
        base_ms = minute * MIN_MS
        out: list[Trade] = []
        done = 0
        last_ts, dup = -1, 0
        for price, ns, units, is_bid in segs:
            lo = last_off * done // n
            done += ns
            hi = last_off * done // n
            offs = sorted(lo + int(rand() * (hi - lo + 1)) for _ in range(ns))
            if done == n:
                offs[-1] = last_off
            step = spec.volume_step(price)
            steps = units // step
            weights = [expo(1.0) for _ in range(ns)]
            wsum = sum(weights)
            spare = steps - ns
            parts = [1 + int(spare * w / wsum) for w in weights]
            parts[-1] += steps - sum(parts)
            for off, part in zip(offs, parts, strict=True):
                ts = base_ms + min(off, hi)
                dup = dup + 1 if ts == last_ts else 0
                last_ts = ts
                out.append(Trade(ts, price, part * step, is_bid, ts * 10_000 + dup))
        return out

    def trades_between(self, mi: int, t0: int, t1: int) -> list[Trade]:
        """Trades with ``t0 < ts <= t1`` ascending (for the live stream)."""
        out: list[Trade] = []
        for minute in range(t0 // MIN_MS, t1 // MIN_MS + 1):
            trades = self.minute_trades(mi, minute)
            if not trades:
                continue
            lo = bisect_right(trades, t0, key=lambda t: t.ts)
            hi = bisect_right(trades, t1, key=lambda t: t.ts)
            out.extend(trades[lo:hi])
        return out

    def trades_desc(self, mi: int, before_ms: int) -> Iterator[Trade]:
        """Trades with ``ts < before_ms``, newest first, back to the listing day."""
        for row in self.rows_desc(mi, before_ms // MIN_MS + 1, before_ms - 1):
            trades = self.minute_trades(mi, row.minute)
            for trade in reversed(trades):
                if trade.ts < before_ms:
                    yield trade

    # -- rows and aggregates ------------------------------------------------------------------
    def partial_row(self, mi: int, minute: int, now: int) -> Row | None:
        """The minute's row restricted to trades with ``ts <= now``."""
        if (minute + 1) * MIN_MS - 1 <= now:
            tape = self.day(mi, minute // _MPD)
            idx = bisect_left(tape.minutes, minute)
            if idx < len(tape.minutes) and tape.minutes[idx] == minute:
                return tape.rows[idx]
            return None
        trades = self.minute_trades(mi, minute)
        return trades_row([t for t in trades if t.ts <= now])

    def rows_desc(self, mi: int, before_minute: int, now: int) -> Iterator[Row]:
        """Non-empty minute rows with minute < ``before_minute``, newest first, capped at now."""
        now_minute = now // MIN_MS
        minute = min(before_minute, now_minute + 1)
        if minute > now_minute:
            part = self.partial_row(mi, now_minute, now)
            if part is not None:
                yield part
            minute = now_minute
        day = (minute - 1) // _MPD
        while day >= self.first_day:
            tape = self.day(mi, day)
            idx = bisect_left(tape.minutes, minute)
            for i in range(idx - 1, -1, -1):
                yield tape.rows[i]
            day -= 1
            minute = (day + 1) * _MPD

    def range_sum(self, mi: int, m0: int, m1: int) -> tuple[int, int]:
        """(volume, turnover) of the full minutes in ``[m0, m1)`` via per-day prefix sums."""
        vol = turn = 0
        for day in range(m0 // _MPD, (m1 - 1) // _MPD + 1):
            if day < self.first_day:
                continue
            tape = self.day(mi, day)
            cum = tape.prefix()
            lo, hi = bisect_left(tape.minutes, m0), bisect_left(tape.minutes, m1)
            vol += cum[hi][0] - cum[lo][0]
            turn += cum[hi][1] - cum[lo][1]
        return vol, turn

    def day_agg(self, mi: int, day: int, now: int) -> Row | None:
        """Aggregate of one UTC day up to ``now`` (complete past days are cached)."""
        if (day + 1) * DAY_MS <= now:
            cache_key = (mi, day)
            if cache_key not in self._day_aggs:
                self._day_aggs[cache_key] = merge(self.day(mi, day).rows)
            return self._day_aggs[cache_key]
        if day * DAY_MS > now:
            return None
        now_minute = now // MIN_MS
        rows = [r for r in self.day(mi, day).rows if r.minute < now_minute]
        part = self.partial_row(mi, now_minute, now)
        if part is not None:
            rows.append(part)
        return merge(rows)

    def prev_close(self, mi: int, day: int, now: int) -> int:
        """Close of the last trade before ``day`` 00:00 UTC (anchor price before listing)."""
        d = day - 1
        while d >= self.first_day:
            agg = self.day_agg(mi, d, now)
            if agg is not None:
                return agg.close
            d -= 1
        return _round_tick(math.exp(self.anchor_log(mi, day)) * SCALE)

    def last_trade(self, mi: int, now: int) -> Trade | None:
        """The latest trade with ``ts <= now``."""
        return next(self.trades_desc(mi, now + 1), None)

    def week52(self, mi: int, day: int) -> tuple[int, int, int, int]:
        """(high, high_day, low, low_day) over 365 days from the anchor envelope.

        Simpler than Upbit: computed from day anchors (+-1 daily sigma), not from trades.
        """
        cached = self._w52.get((mi, day))
        if cached is not None:
            return cached
        spec = self.specs[mi]
        best_hi, best_lo = (0.0, day), (float("inf"), day)
        for d in range(max(self.first_day, day - 364), day + 1):
            a = self.anchor_log(mi, d)
            hi, lo = math.exp(a + spec.daily_vol), math.exp(a - spec.daily_vol)
            best_hi = max(best_hi, (hi, d))
            best_lo = min(best_lo, (lo, d))
        result = (
            _round_tick(best_hi[0] * SCALE),
            best_hi[1],
            _round_tick(best_lo[0] * SCALE),
            best_lo[1],
        )
        self._w52[(mi, day)] = result
        return result


def _poisson(u: float, lam: float, gauss: Callable[[float, float], float]) -> int:
    """Poisson(lam) from one uniform (inverse CDF); normal approximation above 60."""
    if lam > 60:
        return max(0, round(gauss(lam, math.sqrt(lam))))
    p = math.exp(-lam)
    cdf, k = p, 0
    while u > cdf and k < 1000:
        k += 1
        p *= lam / k
        cdf += p
    return k
