"""Per-market event-time bars: a ring of 1-second bars and a ring of 1-minute bars.

Everything is keyed by the trade's own timestamp (UTC epoch ms), never by arrival time, so a replay
builds the same bars. Trades may arrive out of order by up to ``lateness_ms`` behind the newest
trade of the market (the watermark); those still count in their second and minute. Older trades
are counted in ``late`` and ignored: a bar that has fed a decision is never rewritten.

* 1-second bars (close price, KRW value) cover the longest price window plus a margin. Seconds
  without trades carry the previous close forward, so "the price W minutes ago" is one index.
* ``roll_krw`` is the KRW value of the 60 one-second bars ending at the newest second: "the last
  minute" as a sliding window, so a spike is seen when it happens, not at the minute's end.
* 1-minute bars (KRW value) feed the volume baseline; 1-minute close-to-close log returns feed
  the EWMA variance. At the start of minute m the baseline is built from minutes ending at m-2, so
  neither the current minute nor the one the 60-s window may still overlap is part of it.
"""

from __future__ import annotations

import math

from upbit_pipeline.alerts.stats import median_mad

__all__ = ["MarketBars"]

_WINDOW_S = 60


def _pow2_at_least(n: int) -> int:
    size = 1
    while size < n:
        size <<= 1
    return size


class MarketBars:
    """Bars of one market. Not thread-safe; one engine thread owns it."""

    __slots__ = (
        "alpha",
        "base_mad",
        "base_med",
        "base_n",
        "baseline_min",
        "close",
        "cur_min",
        "first_min",
        "first_price",
        "first_s",
        "krw",
        "last_price",
        "last_s",
        "last_trade_s",
        "late",
        "lateness_ms",
        "mask",
        "min_close",
        "min_krw",
        "min_mask",
        "min_stamp",
        "roll_krw",
        "src",
        "stamp",
        "var",
        "var_n",
        "watermark_ms",
    )

    def __init__(
        self, *, ring_s: int, baseline_min: int, lateness_ms: int, vol_halflife_min: float
    ) -> None:
        size = _pow2_at_least(ring_s + 64)
        self.mask = size - 1
        self.close = [0.0] * size
        self.krw = [0.0] * size
        self.stamp = [-1] * size
        self.src = [-1] * size  # second of the trade that set close[i] (its true age)
        min_size = _pow2_at_least(baseline_min + 4)
        self.min_mask = min_size - 1
        self.min_krw = [0.0] * min_size
        self.min_close = [0.0] * min_size
        self.min_stamp = [-1] * min_size
        self.baseline_min = baseline_min
        self.lateness_ms = lateness_ms
        self.alpha = 1.0 - math.pow(0.5, 1.0 / vol_halflife_min)
        self.last_s = -1
        self.last_trade_s = -1
        self.first_s = -1
        self.first_min = -1
        self.cur_min = -1
        self.first_price = 0.0
        self.last_price = 0.0
        self.watermark_ms = -1
        self.roll_krw = 0.0
        self.var = 0.0
        self.var_n = 0
        self.base_med = -1.0  # < 0: not enough history
        self.base_mad = 0.0
        self.base_n = 0
        self.late = 0

    # -- time ------------------------------------------------------------------------------

    def advance(self, s: int) -> bool:
        """Move the newest second to ``s`` (> last_s). Returns True when a new minute began."""
        last = self.last_s
        if last < 0:
            self.first_s = s
            self.first_min = s // 60
            self.last_s = s
            self.cur_min = s // 60
            self._open_second(s, 0.0)
            self._open_minute(s // 60)
            return True
        mask, close, krw, stamp, src = self.mask, self.close, self.krw, self.stamp, self.src
        price, price_s = self.last_price, self.last_trade_s
        gap = s - last
        # Seconds leaving the 60-s window: (last-59 .. s-60).
        if gap >= _WINDOW_S:
            self.roll_krw = 0.0
        else:
            roll = self.roll_krw
            for t in range(last - _WINDOW_S + 1, s - _WINDOW_S + 1):
                i = t & mask
                if stamp[i] == t:
                    roll -= krw[i]
            self.roll_krw = roll if roll > 1e-6 else 0.0
        # Carry the close forward through the silent seconds (at most one ring).
        for t in range(max(last + 1, s - mask), s + 1):
            i = t & mask
            stamp[i] = t
            close[i] = price
            src[i] = price_s
            krw[i] = 0.0
        self.last_s = s
        minute = s // 60
        if minute != self.cur_min:
            self._close_minutes(minute)
            return True
        return False

    def _open_second(self, s: int, price: float) -> None:
        i = s & self.mask
        self.stamp[i] = s
        self.close[i] = price
        self.src[i] = s
        self.krw[i] = 0.0

    def _open_minute(self, minute: int) -> None:
        j = minute & self.min_mask
        self.min_stamp[j] = minute
        self.min_krw[j] = 0.0
        self.min_close[j] = self.last_price

    def _close_minutes(self, minute: int) -> None:
        """Fold the finished minutes into the variance, open ``minute``, rebuild the baseline."""
        prev = self.cur_min
        price = self.last_price
        # Return of the minute that just ended: its close vs the close of the minute before.
        before = self._minute_close(prev - 1)
        if before > 0.0 and price > 0.0 and prev - 1 >= self.first_min:
            r = math.log(price / before)
            self.var += self.alpha * (r * r - self.var)
            self.var_n += 1
        self.min_close[prev & self.min_mask] = price
        quiet = minute - prev - 1  # whole minutes without a trade: zero returns
        if quiet > 0:
            self.var *= math.pow(1.0 - self.alpha, quiet)
            self.var_n += quiet
        for m in range(max(prev + 1, minute - self.min_mask), minute + 1):
            j = m & self.min_mask
            self.min_stamp[j] = m
            self.min_krw[j] = 0.0
            self.min_close[j] = price
        self.cur_min = minute
        self._baseline(minute)

    def _minute_close(self, minute: int) -> float:
        j = minute & self.min_mask
        return self.min_close[j] if self.min_stamp[j] == minute else self.last_price

    def _baseline(self, minute: int) -> None:
        lo = max(self.first_min, minute - 1 - self.baseline_min)
        hi = minute - 2  # inclusive
        if hi < lo:
            self.base_med, self.base_mad, self.base_n = -1.0, 0.0, 0
            return
        stamp, vals, mask = self.min_stamp, self.min_krw, self.min_mask
        values = [vals[m & mask] if stamp[m & mask] == m else 0.0 for m in range(lo, hi + 1)]
        self.base_med, self.base_mad = median_mad(values)
        self.base_n = len(values)

    # -- data ------------------------------------------------------------------------------

    def add(self, ts_ms: int, price: float, krw: float) -> bool:
        """Account one trade. Returns False (and counts it) when it is later than the lateness."""
        s = ts_ms // 1000
        if ts_ms > self.watermark_ms:
            self.watermark_ms = ts_ms
        elif ts_ms < self.watermark_ms - self.lateness_ms:
            self.late += 1
            return False
        if s > self.last_s:
            self.advance(s)
        if self.first_price == 0.0:
            self.first_price = price
        i = s & self.mask
        if self.stamp[i] != s:
            if s >= self.first_s or self.last_s - s > self.mask:
                self.late += 1  # older than the ring: cannot happen within the lateness
                return False
            # Late, but before the market's first second: the data now starts here.
            self.first_s, self.first_price = s, price
            self.stamp[i], self.close[i], self.src[i], self.krw[i] = s, price, s, 0.0
        self.krw[i] += krw
        if s > self.last_s - _WINDOW_S:
            self.roll_krw += krw
        minute = s // 60
        j = minute & self.min_mask
        if self.min_stamp[j] == minute:
            self.min_krw[j] += krw
        if s == self.last_s and ts_ms == self.watermark_ms:
            self.close[i] = price
            self.src[i] = s
            self.last_price = price
            self.last_trade_s = s
        return True

    def price_at(self, s: int) -> tuple[float, int]:
        """(close as of the end of second ``s``, the second of the trade that set it).

        Before the data starts: the first price and its second. In a quiet market the close can
        be minutes older than ``s``; rules scale their volatility term by that true age.
        """
        i = s & self.mask
        if s >= self.first_s and self.stamp[i] == s:
            return self.close[i], self.src[i]
        return self.first_price, self.first_s

    @property
    def sigma_1m(self) -> float:
        """EWMA standard deviation of 1-minute log returns (a fraction, 0.01 = 1 %)."""
        return math.sqrt(self.var)
