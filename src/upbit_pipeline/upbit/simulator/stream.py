"""The live stream: advances simulated time and fans events out to WebSocket connections.

Every ``tick_s`` of wall time the pump takes the tape's trades in ``(t_prev, now]`` for every
subscribed market (trade + ticker frames, one ticker per trade), the latest book of every
subscribed pair when it changed, and each changed candle at most once per simulated second. Each
frame is encoded once per (format, options) and queued on the connections that want it.

Simpler than Upbit (knowingly): when one pump tick spans several 100 ms book slots (speed > ~5),
only the latest book per pair is sent (conflation); LIST formats carry one object per frame.
Delivery: at most once per connection; a connection whose send queue exceeds ``MAX_QUEUE``
frames is aborted (a slow consumer loses its socket rather than stalling everyone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Protocol

from upbit_pipeline.upbit.simulator.books import Book, mix, supported_levels
from upbit_pipeline.upbit.simulator.quotes import TickerView, candle_at, ticker_apply, ticker_at
from upbit_pipeline.upbit.simulator.tape import Trade
from upbit_pipeline.upbit.simulator.wsframes import (
    candle_frame,
    orderbook_frame,
    ticker_frame,
    trade_frame,
    wrap,
)

if TYPE_CHECKING:
    from upbit_pipeline.upbit.simulator.server import Simulator

__all__ = ["CANDLE_UNITS", "Hub", "Subscriber"]

log = logging.getLogger(__name__)

MAX_QUEUE = 200_000
CANDLE_UNITS = {
    "candle.1s": 1,
    "candle.1m": 60,
    "candle.3m": 180,
    "candle.5m": 300,
    "candle.10m": 600,
    "candle.15m": 900,
    "candle.30m": 1800,
    "candle.60m": 3600,
    "candle.240m": 14400,
}


class Subscriber(Protocol):
    """What the hub needs from a connection."""

    fmt: str
    subs: dict[str, dict[int, tuple[int, int, bool]]]  # type -> market -> (units, level, realtime)

    def push(self, data: bytes) -> None: ...

    def abort(self) -> None: ...

    def idle_for(self, now_mono: float) -> float: ...


class Hub:
    """Shared stream state of one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.conns: set[Subscriber] = set()
        self.t_prev = sim.now_ms()
        self.views: dict[int, TickerView] = {}
        self.last_book: dict[int, int] = {}
        self.candle_pushed: dict[tuple[int, int], int] = {}
        self.silent_until_mono = 0.0
        self.malformed_fraction = 0.0
        self.frames_sent = 0
        self._frame_no = 0
        self._next_drop_ms: int | None = None
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for conn in list(self.conns):
            conn.abort()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.sim.config.tick_s)
            try:
                self.step()
            except Exception:  # a bug must not silently stop the stream for everyone
                log.exception("simulator stream step failed")
                raise

    # -- faults ---------------------------------------------------------------------------------
    def drop_all(self) -> int:
        conns = list(self.conns)
        for conn in conns:
            conn.abort()
        return len(conns)

    def silent(self, now_ms: int) -> bool:
        if time.monotonic() < self.silent_until_mono:
            return True
        faults = self.sim.scenario.faults
        return any(
            a <= now_ms < b for a, b in (w.bounds(self.sim.start_ms) for w in faults.silence)
        )

    def send(self, conn: Subscriber, data: bytes) -> None:
        """Queue one frame, replacing it with broken JSON when the malformed fault says so."""
        fraction = max(self.malformed_fraction, self.sim.scenario.faults.malformed_fraction)
        if fraction > 0:
            self._frame_no += 1
            if mix(self._frame_no ^ self.sim.config.seed) % 1_000_000 < fraction * 1_000_000:
                data = data[: max(1, len(data) // 2)]
        self.frames_sent += 1
        conn.push(data)

    # -- market state ---------------------------------------------------------------------------
    def view(self, mi: int) -> TickerView:
        view = self.views.get(mi)
        if view is None:
            view = ticker_at(self.sim.tape, mi, self.t_prev)
            self.views[mi] = view
        return view

    def trade_text(self, simple: bool, mi: int, t: Trade, prev_close: int, st: str) -> str:
        books = self.sim.books
        ask, bid = books.top(mi, t, t.price)
        ask_size, bid_size = books.top_sizes(mi, t)
        frame_ts = t.ts + 10 + mix(t.sid) % 40
        code = self.sim.specs[mi].code
        return trade_frame(
            simple,
            code,
            t,
            frame_ts=frame_ts,
            prev_close=prev_close,
            best=(ask, ask_size, bid, bid_size),
            stream_type=st,
        )

    # -- snapshots ------------------------------------------------------------------------------
    def snapshot(self, conn: Subscriber, kind: str, mi: int, units: int, level: int) -> None:
        """Queue the one SNAPSHOT frame of (kind, market) for a new subscription."""
        sim, simple = self.sim, conn.fmt.startswith("SIMPLE")
        code = sim.specs[mi].code
        now = self.t_prev
        text: str | None = None
        if kind == "ticker":
            v = self.view(mi)
            text = ticker_frame(simple, code, v, now, "SNAPSHOT")
        elif kind == "trade":
            t = sim.tape.last_trade(mi, now)
            if t is not None:
                prev = sim.tape.prev_close(mi, t.ts // 86_400_000, now)
                text = self.trade_text(simple, mi, t, prev, "SNAPSHOT")
        elif kind == "orderbook":
            book = sim.books.at(mi, now)
            if level in supported_levels(book.asks[0][0] or book.bids[0][0]):
                text = orderbook_frame(simple, code, book.grouped(level), units, "SNAPSHOT")
        else:
            found = candle_at(sim.tape, mi, CANDLE_UNITS[kind], now)
            if found is not None:
                start, row = found
                text = candle_frame(
                    simple, code, kind, start, row, frame_ts=now, stream_type="SNAPSHOT"
                )
        if text is not None:
            self.send(conn, wrap(conn.fmt, text))

    # -- the pump -------------------------------------------------------------------------------
    def step(self) -> None:
        sim = self.sim
        now = sim.now_ms()
        mono = time.monotonic()
        for conn in list(self.conns):
            if conn.idle_for(mono) > sim.config.idle_timeout_s:
                conn.abort()  # no close frame: the client sees 1006, as on Upbit
        self._scheduled_drops(now)
        if now <= self.t_prev:
            return
        t0, self.t_prev = self.t_prev, now
        want: dict[str, set[int]] = {}
        for conn in self.conns:
            for kind, markets in conn.subs.items():
                bucket = want.setdefault(kind, set())
                bucket.update(mi for mi, opt in markets.items() if opt[2])
        for mi in list(self.views):
            if mi not in want.get("ticker", ()) and mi not in want.get("trade", ()):
                del self.views[mi]
        quiet = self.silent(now)
        events: list[tuple[str, int, object]] = []
        traded: set[int] = set()
        trade_markets = want.get("ticker", set()) | want.get("trade", set())
        candle_markets = set().union(*(want.get(k, set()) for k in CANDLE_UNITS))
        for mi in trade_markets | candle_markets:
            trades = sim.tape.trades_between(mi, t0, now)
            if not trades:
                continue
            traded.add(mi)
            if mi not in trade_markets:
                continue
            view = self.view(mi)
            for t in trades:
                view = ticker_apply(sim.tape, view, t)
                events.append(("trade", mi, (t, view.prev_close)))
                events.append(("ticker", mi, view))
            self.views[mi] = view
        for mi in want.get("orderbook", ()):
            book = sim.books.at(mi, now)
            if self.last_book.get(mi) != book.ts:
                self.last_book[mi] = book.ts
                events.append(("orderbook", mi, book))
        for kind, unit in CANDLE_UNITS.items():
            for mi in want.get(kind, ()):
                if mi in traded and self.candle_pushed.get((mi, unit), -1) < now // 1000:
                    self.candle_pushed[(mi, unit)] = now // 1000
                    found = candle_at(sim.tape, mi, unit, now)
                    if found is not None:
                        events.append((kind, mi, found))
        if quiet or not events:
            return
        self._deliver(events, now)

    def _deliver(self, events: list[tuple[str, int, object]], now: int) -> None:
        cache: dict[tuple[int, str, int, int], bytes] = {}
        code_of = self.sim.specs
        for conn in list(self.conns):
            subs, fmt = conn.subs, conn.fmt
            simple = fmt.startswith("SIMPLE")
            for i, (kind, mi, payload) in enumerate(events):
                opt = subs.get(kind, {}).get(mi)
                if opt is None or not opt[2]:
                    continue
                ck = (i, fmt, opt[0], opt[1])
                data = cache.get(ck)
                if data is None:
                    text = self._encode(
                        simple, kind, mi, payload, opt=opt, code=code_of[mi].code, now=now
                    )
                    if text is None:
                        continue
                    data = wrap(fmt, text)
                    cache[ck] = data
                self.send(conn, data)

    def _encode(
        self,
        simple: bool,
        kind: str,
        mi: int,
        payload: object,
        *,
        opt: tuple[int, int, bool],
        code: str,
        now: int,
    ) -> str | None:
        if kind == "trade":
            assert isinstance(payload, tuple)
            t, prev = payload
            return self.trade_text(simple, mi, t, prev, "REALTIME")
        if kind == "ticker":
            assert isinstance(payload, TickerView)
            frame_ts = payload.trade_ts + 15 + mix(payload.trade_ts) % 40
            return ticker_frame(simple, code, payload, frame_ts, "REALTIME")
        if kind == "orderbook":
            assert isinstance(payload, Book)
            level = opt[1]
            if level not in supported_levels(payload.asks[0][0] or payload.bids[0][0]):
                return None
            return orderbook_frame(simple, code, payload.grouped(level), opt[0], "REALTIME")
        assert isinstance(payload, tuple)
        start, row = payload
        return candle_frame(simple, code, kind, start, row, frame_ts=now, stream_type="REALTIME")

    def _scheduled_drops(self, now: int) -> None:
        every = self.sim.scenario.faults.drop_ws_every_s
        if every <= 0:
            return
        period = int(every * 1000)
        if self._next_drop_ms is None:
            self._next_drop_ms = self.sim.start_ms + period
        if now >= self._next_drop_ms:
            self.drop_all()
            while self._next_drop_ms <= now:
                self._next_drop_ms += period
