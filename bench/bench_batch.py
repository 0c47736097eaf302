"""Batch benchmarks: REST raw ingestion rate against Upbit's ceiling, and the dbt build time.

* Raw ingestion: ``ingest_raw`` for one UTC day against the simulator with Upbit's exact limiter
  (``rate_limits=True``, 10 requests/s per group), the simulator in its own process. Goal:
  >= 9.5 requests/s sustained and zero 429s. ``BENCH_BATCH_MARKETS`` sets the market count
  (default 60, about 540 requests and one minute; 290 is Upbit's full KRW list, about 4.5 min).
* Build: synthetic REST 1-minute candles (a random walk per market, every minute traded) for
  ``BENCH_BATCH_BUILD_MARKETS`` markets (default 290) x 1,440 minutes, for 1 day and for 30
  days, then ``dbt build`` of silver and gold. Reported: the models' own execution time (dbt's
  start-up and the data tests excluded; goal <= 10 s for one day) and the wall time of both
  invocations including everything.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]

from bench.common import Result
from upbit_pipeline.batch.dbt import run_dbt
from upbit_pipeline.batch.raw import CANDLE_SCHEMA, RawResult, ingest_raw_async, parquet_bytes
from upbit_pipeline.lake.layout import rest_raw_path

RAW_MARKETS = int(os.environ.get("BENCH_BATCH_MARKETS", "60"))
RAW_REPEATS = int(os.environ.get("BENCH_BATCH_REPEATS", "3"))
BUILD_MARKETS = int(os.environ.get("BENCH_BATCH_BUILD_MARKETS", "290"))
START_MS = 1_773_240_000_000  # 2026-03-11 14:40 UTC: a fixed simulated "now"

_SERVER = (
    "from upbit_pipeline.upbit.simulator import SimConfig, run_simulator\n"
    f"run_simulator(SimConfig(port=0, markets={RAW_MARKETS}, seed=1, rate_limits=True, "
    f"start_ms={START_MS}))\n"
)


@dataclass(frozen=True)
class RateResult(Result):
    """A rate row with two decimals (9.52 and 9.86 must not both print as 10)."""

    def row(self) -> str:
        return f"| {self.name} | {self.median:,.2f} {self.unit} | {self.goal} | {self.note} |"


def _raw_once() -> RawResult:
    """One day's ingestion for RAW_MARKETS markets against a fresh simulator process."""
    proc = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        day = datetime.fromtimestamp(START_MS / 1000, UTC).date() - timedelta(days=1)
        with tempfile.TemporaryDirectory() as tmp:
            return asyncio.run(ingest_raw_async(day, base_url=base_url, lake=tmp, progress=False))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def raw_rate() -> Result:
    """Requests/s of one day's ingestion, median of RAW_REPEATS runs; the note says 429s."""
    runs = [_raw_once() for _ in range(RAW_REPEATS)]
    rates = sorted(r.requests_per_s for r in runs)
    mid = runs[[r.requests_per_s for r in runs].index(statistics.median_low(rates))]
    return RateResult(
        name=f"raw ingestion, 1 day x {RAW_MARKETS} markets (simulator, exact limiter)",
        median=statistics.median(rates),
        unit="requests/s",
        goal=">= 9.5/s, 0 x 429",
        note=f"{RAW_REPEATS} runs: {', '.join(f'{x:.2f}' for x in rates)}/s; "
        f"{mid.requests} requests in {mid.fetch_s:.1f} s of fetching, "
        f"{sum(r.responses_429 for r in runs)} x 429 in all runs (a 418 aborts a run), "
        f"{mid.candles_1m:,} candles",
    )


def write_synthetic_day(lake: Path, day: date, markets: int, seed: int) -> None:
    """One day of 1-minute candles for ``markets`` markets, every minute traded."""
    rng = np.random.default_rng(seed)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    minutes = np.arange(1440, dtype=np.int64) * 60_000 + int(start.timestamp() * 1000)
    n = markets * 1440
    base = np.repeat(np.exp(rng.uniform(0, 12, markets)), 1440)
    walk = np.exp(np.cumsum(rng.normal(0, 0.001, (markets, 1440)), axis=1)).ravel()
    close = np.round(base * walk, 2)
    open_ = np.round(close * np.exp(rng.normal(0, 0.0005, n)), 2)
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.001, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.001, n))
    volume = rng.uniform(0.1, 100, n)
    codes = [f"KRW-B{i:03d}" for i in range(markets)]
    table = pa.table(
        {
            "market": np.repeat(codes, 1440),
            "candle_date_time_utc": pa.array(np.tile(minutes, markets)).cast(CANDLE_SCHEMA[1].type),
            "opening_price": open_,
            "high_price": high,
            "low_price": low,
            "trade_price": close,
            "candle_acc_trade_price": volume * close,
            "candle_acc_trade_volume": volume,
            "timestamp": pa.array(np.tile(minutes + 59_000, markets)).cast(CANDLE_SCHEMA[8].type),
        },
        schema=CANDLE_SCHEMA,
    )
    path = lake / rest_raw_path("candles_1m", day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(parquet_bytes(table))


def build_time(days: int) -> list[Result]:
    """dbt build of silver then gold over ``days`` synthetic days: model time and wall time."""
    first = date(2026, 3, 1)
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        for i in range(days):
            write_synthetic_day(lake, first + timedelta(days=i), BUILD_MARKETS, seed=i)
        last = first + timedelta(days=days - 1)
        models = 0.0
        began = time.perf_counter()
        for layer in ("silver", "gold"):
            result = run_dbt(
                "build",
                warehouse=Path(tmp) / "warehouse.duckdb",
                lake_url=str(lake),
                date_from=first,
                date_to=last,
                select=["staging", layer],
            )
            models += result.models_seconds()
        wall = time.perf_counter() - began
    size = f"{days} day{'s' if days > 1 else ''} x {BUILD_MARKETS} markets x 1,440 min"
    return [
        Result(
            name=f"silver+gold models, {size}",
            median=models,
            unit="s",
            goal="<= 10 s" if days == 1 else "",
            note="models only: dbt start-up and data tests excluded",
        ),
        Result(
            name=f"silver+gold dbt build wall time, {size}",
            median=wall,
            unit="s",
            note="2 dbt invocations incl. start-up, parse and all data/unit tests",
        ),
    ]


def run() -> list[Result]:
    return [raw_rate(), *build_time(1), *build_time(30)]


if __name__ == "__main__":
    for row in run():
        print(row.row())
