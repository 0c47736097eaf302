"""Servers for the batch tests, each on its own event-loop thread so that the (synchronous)
batch entry points can call them exactly as the CLI and Airflow do."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from aiohttp import web

from upbit_pipeline.upbit.simulator import SimConfig, Simulator

T = TypeVar("T")


class LoopThread:
    """An asyncio loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, factory: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
        async def call() -> T:
            return await factory()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextmanager
def running_simulator(**config: Any) -> Iterator[Simulator]:
    """A real simulator on a free port, served from a background thread."""
    options: dict[str, Any] = {"port": 0, "markets": 3, "seed": 1, "rate_limits": False}
    options.update(config)
    thread = LoopThread()
    sim = Simulator(SimConfig(**options))
    thread.run(sim.start)
    try:
        yield sim
    finally:
        thread.run(sim.stop)
        thread.close()


def _fmt(when: pd.Timestamp) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S")


class CandleServer:
    """Upbit's candle REST semantics over a fixed set of 1-minute candles (a CSV export).

    ``/v1/candles/minutes/1``: newest first, every candle starting before ``to`` (exclusive),
    at most ``count`` (clamped to 200), minutes without a candle absent. ``/v1/candles/days``:
    day candles aggregated from the minutes (00:00 UTC boundaries). ``/v1/market/all``.
    """

    def __init__(self, csv: Path) -> None:
        df = pd.read_csv(csv)
        df["start"] = pd.to_datetime(df["candle_date_time_utc"]).dt.tz_localize(UTC)
        self.df = df.sort_values("start").reset_index(drop=True)
        self.market = str(df["market"].iloc[0])
        self.requests = 0

    async def _minutes(self, request: web.Request) -> web.Response:
        self.requests += 1
        to = _to(request)
        count = min(int(request.query.get("count", "1")), 200)
        page = self.df[self.df["start"] < to].tail(count).iloc[::-1]
        body = [
            {
                "market": self.market,
                "candle_date_time_utc": _fmt(r.start),
                "candle_date_time_kst": _fmt(r.start + pd.Timedelta(hours=9)),
                "opening_price": r.opening_price,
                "high_price": r.high_price,
                "low_price": r.low_price,
                "trade_price": r.trade_price,
                "timestamp": int(r.timestamp),
                "candle_acc_trade_price": r.candle_acc_trade_price,
                "candle_acc_trade_volume": r.candle_acc_trade_volume,
                "unit": 1,
            }
            for r in page.itertuples()
        ]
        return web.json_response(body)

    async def _days(self, request: web.Request) -> web.Response:
        self.requests += 1
        to = _to(request)
        count = min(int(request.query.get("count", "1")), 200)
        df = self.df[self.df["start"] < to]
        body = []
        days = df.groupby(df["start"].dt.floor("D"))
        closes = days["trade_price"].last()
        for day, g in list(days)[::-1][:count]:
            prev = closes[closes.index < day]
            prev_close = float(prev.iloc[-1]) if len(prev) else float(g["opening_price"].iloc[0])
            close = float(g["trade_price"].iloc[-1])
            body.append(
                {
                    "market": self.market,
                    "candle_date_time_utc": _fmt(day),
                    "candle_date_time_kst": _fmt(day + pd.Timedelta(hours=9)),
                    "opening_price": float(g["opening_price"].iloc[0]),
                    "high_price": float(g["high_price"].max()),
                    "low_price": float(g["low_price"].min()),
                    "trade_price": close,
                    "timestamp": int(g["timestamp"].iloc[-1]),
                    "candle_acc_trade_price": float(g["candle_acc_trade_price"].sum()),
                    "candle_acc_trade_volume": float(g["candle_acc_trade_volume"].sum()),
                    "prev_closing_price": prev_close,
                    "change_price": close - prev_close,
                    "change_rate": close / prev_close - 1,
                }
            )
        return web.json_response(body)

    async def _markets(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = [{"market": self.market, "korean_name": "넥스페이스", "english_name": "NEXPACE"}]
        return web.Response(text=json.dumps(body), content_type="application/json")

    @contextmanager
    def serve(self) -> Iterator[str]:
        app = web.Application()
        app.router.add_get("/v1/candles/minutes/1", self._minutes)
        app.router.add_get("/v1/candles/days", self._days)
        app.router.add_get("/v1/market/all", self._markets)
        thread = LoopThread()
        runner = web.AppRunner(app, access_log=None)

        async def start() -> str:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            return f"http://127.0.0.1:{runner.addresses[0][1]}"

        url = thread.run(start)
        try:
            yield url
        finally:
            thread.run(runner.cleanup)
            thread.close()


def _to(request: web.Request) -> pd.Timestamp:
    raw = request.query.get("to")
    if raw is None:
        return pd.Timestamp(datetime.now(UTC))
    return pd.Timestamp(raw.replace("Z", "+00:00"))
