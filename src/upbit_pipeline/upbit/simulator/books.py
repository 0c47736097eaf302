"""Order books: full 30-level snapshots on a per-pair 100 ms grid, derived from the tape.

A pair's book can change only at its grid slots (``slot * 100 + phase`` ms, e.g. KRW-BTC at
...06 ms as measured on Upbit). A slot is a change when a trade happened since the previous slot or
on the market's regular background cadence (busy books every slot, quiet books every few seconds),
so "the book at time t" is O(1): the last change slot <= t. The top of book follows the last trade
(an ASK trade leaves the bid at the trade price, a BID trade the ask), the ladder steps by the KRW
tick with stable hashed holes, sizes are hashed per (slot, level).

Simpler than Upbit (knowingly): resting orders are not modelled, so sizes are not conserved
between books and the trade that hit a level does not deplete it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from upbit_pipeline.upbit.simulator.market import SCALE, MarketSpec, key, tick_units
from upbit_pipeline.upbit.simulator.tape import Tape, Trade

__all__ = ["GRID_MS", "Book", "Books", "mix", "supported_levels"]

GRID_MS = 100
DEPTH = 30
_M64 = (1 << 64) - 1


def mix(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash of an int."""
    x &= _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def supported_levels(price: int) -> list[int]:
    """Grouping units offered for a pair: 0 and tick*10**k up to the price (as KRW-BTC on Upbit)."""
    tick = tick_units(price)
    levels = [0]
    unit = tick * 10
    while unit <= price and tick >= SCALE:
        levels.append(unit)
        unit *= 10
    return levels


@dataclass(frozen=True, slots=True)
class Book:
    """Best-first ask and bid ladders of (price, size) in 1e-8 units; (0, 0) pads thin books."""

    ts: int
    asks: tuple[tuple[int, int], ...]
    bids: tuple[tuple[int, int], ...]
    level: int = 0

    def grouped(self, level: int) -> Book:
        """Prices grouped to ``level`` (asks rounded up, bids down, sizes summed)."""
        if level <= 0:
            return self

        def group(side: tuple[tuple[int, int], ...], up: bool) -> tuple[tuple[int, int], ...]:
            out: list[list[int]] = []
            for price, size in side:
                if price == 0:
                    continue
                g = -(-price // level) * level if up else price // level * level
                if out and out[-1][0] == g:
                    out[-1][1] += size
                else:
                    out.append([g, size])
            padded = [(p, s) for p, s in out] + [(0, 0)] * (DEPTH - len(out))
            return tuple(padded[:DEPTH])

        return Book(self.ts, group(self.asks, True), group(self.bids, False), level)


class Books:
    """Book lookups for every market of a tape (LRU-cached per change slot)."""

    def __init__(self, tape: Tape, seed: int) -> None:
        self.tape = tape
        self.seed = seed
        self._salt = [key(seed, s.code, "book") for s in tape.specs]
        self._period = [max(1, round(1 / s.book_change_p)) for s in tape.specs]
        self._cache: OrderedDict[tuple[int, int], Book] = OrderedDict()

    def slot_of(self, mi: int, t: int) -> int:
        """The last grid slot at or before ``t``."""
        return (t - self.tape.specs[mi].book_phase_ms) // GRID_MS

    def slot_time(self, mi: int, slot: int) -> int:
        return slot * GRID_MS + self.tape.specs[mi].book_phase_ms

    def last_change(self, mi: int, t: int) -> tuple[int, Trade | None]:
        """(slot of the last book change at or before ``t``, last trade at or before that slot)."""
        slot = self.slot_of(mi, t)
        period = self._period[mi]
        cadence = slot - (slot - self._salt[mi]) % period
        trade = self.tape.last_trade(mi, self.slot_time(mi, slot))
        if trade is None:
            return cadence, None
        spec = self.tape.specs[mi]
        trade_slot = -(-(trade.ts - spec.book_phase_ms) // GRID_MS)
        return max(cadence, trade_slot), trade

    def top(self, mi: int, trade: Trade | None, fallback: int) -> tuple[int, int]:
        """(best ask, best bid) right after ``trade``: the trade price sits on its taker's side."""
        spec = self.tape.specs[mi]
        price = trade.price if trade else fallback
        h = mix(trade.sid ^ self._salt[mi]) if trade else self._salt[mi]
        spread = 1 + h % (3 if spec.trades_per_s >= 1 else 6)
        if trade is None or trade.is_bid:
            ask = price
            bid = price
            for _ in range(spread):
                bid -= tick_units(bid - 1)
            return ask, max(bid, tick_units(1))
        ask = price
        for _ in range(spread):
            ask += tick_units(ask)
        return ask, price

    def top_sizes(self, mi: int, trade: Trade) -> tuple[int, int]:
        """(best ask size, best bid size) shown in a trade frame."""
        spec = self.tape.specs[mi]
        h = mix(trade.sid * 31 + self._salt[mi])
        return self._size(spec, trade.price, h), self._size(spec, trade.price, h >> 20)

    def _size(self, spec: MarketSpec, price: int, h: int) -> int:
        u = (h & 0xFFFF) / 65536.0
        base = spec.notional_krw * 2.0 / max(price / SCALE, 1e-8)
        step = spec.volume_step(price)
        units = int(base * (0.02 + 4.0 * u**3) * SCALE) // step * step
        return max(step, units)

    def at(self, mi: int, t: int) -> Book:
        """The book as it stood at time ``t`` (its ``ts`` is the last change time)."""
        slot, trade = self.last_change(mi, t)
        cache_key = (mi, slot)
        book = self._cache.get(cache_key)
        if book is None:
            book = self._build(mi, slot, trade)
            self._cache[cache_key] = book
            if len(self._cache) > 4096:
                self._cache.popitem(last=False)
        return book

    def _build(self, mi: int, slot: int, trade: Trade | None) -> Book:
        spec = self.tape.specs[mi]
        salt = self._salt[mi]
        fallback = self.tape.prev_close(mi, self.slot_time(mi, slot) // 86_400_000, 1 << 62)
        ask, bid = self.top(mi, trade, fallback)
        asks: list[tuple[int, int]] = []
        bids: list[tuple[int, int]] = []
        for i in range(spec.book_depth):
            slot_key = slot if i < 5 else slot // 20
            asks.append((ask, self._size(spec, ask, mix(salt ^ (slot_key * 64 + i) ^ ask))))
            step = tick_units(ask)
            ask += step * (2 if mix(salt + ask) % 5 == 0 else 1)
            if bid > 0:
                bids.append(
                    (bid, self._size(spec, bid, mix(salt ^ (slot_key * 64 + i + 32) ^ bid)))
                )
                step = tick_units(bid - 1)
                bid -= step * (2 if mix(salt + bid) % 5 == 0 else 1)
        pad = [(0, 0)] * DEPTH
        return Book(
            self.slot_time(mi, slot),
            tuple((asks + pad)[:DEPTH]),
            tuple((bids + pad)[:DEPTH]),
        )
