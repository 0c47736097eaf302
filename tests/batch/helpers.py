"""Helpers for the batch tests: settings on temp folders, stream trades from the simulator's
tape written the way the lake consumer writes them, warehouse reads, and the independent
(numpy/pandas) computation of the gold figures."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from upbit_pipeline.lake.schema import SCHEMAS
from upbit_pipeline.settings import Settings
from upbit_pipeline.upbit.simulator.market import SCALE
from upbit_pipeline.upbit.simulator.server import Simulator

MIN_MS = 60_000
DAY_MS = 86_400_000


def batch_settings(tmp: Path, base_url: str = "http://127.0.0.1:9") -> Settings:
    return Settings(
        upbit={"url": base_url},
        lake={"path": str(tmp / "lake")},
        warehouse={"path": tmp / "warehouse.duckdb"},
    )


TradeRow = tuple[str, int, float, float, bool, int, bool]
"""market, ts_ms, price, volume, is_bid, sequential_id, backfill"""


def write_trades(lake: Path, rows: Sequence[TradeRow], *, offset: int = 0) -> list[Path]:
    """Write trades as lake stream files (raw/trade/date=/hour=/...), one file per UTC hour."""
    by_hour: dict[int, list[TradeRow]] = {}
    for row in rows:
        by_hour.setdefault(row[1] // 3_600_000, []).append(row)
    written = []
    schema = SCHEMAS["trade"]
    for hour, batch in sorted(by_hour.items()):
        start = datetime.fromtimestamp(hour * 3600, UTC)
        n = len(batch)
        columns = {
            "market": [r[0] for r in batch],
            "trade_timestamp": pa.array([r[1] for r in batch], pa.int64()),
            "trade_price": [r[2] for r in batch],
            "trade_volume": [r[3] for r in batch],
            "ask_bid": ["BID" if r[4] else "ASK" for r in batch],
            "sequential_id": pa.array([r[5] for r in batch], pa.int64()),
            "prev_closing_price": [r[2] for r in batch],
            "change": ["EVEN"] * n,
            "change_price": [0.0] * n,
            "best_ask_price": [None] * n,
            "best_ask_size": [None] * n,
            "best_bid_price": [None] * n,
            "best_bid_size": [None] * n,
            "frame_ts": pa.array([r[1] for r in batch], pa.int64()),
            "stream_type": ["REALTIME"] * n,
            "exchange_ts": pa.array([r[1] for r in batch], pa.int64()),
            "recv_ts": pa.array([(r[1] + 5) * 1_000_000 for r in batch], pa.int64()),
            "snapshot": [False] * n,
            "backfill": [r[6] for r in batch],
            "format": ["SIMPLE"] * n,
            "conn_id": ["test"] * n,
            "kafka_topic": ["upbit.trade"] * n,
            "kafka_partition": pa.array([0] * n, pa.int32()),
            "kafka_offset": pa.array(range(offset, offset + n), pa.int64()),
            "frame_item": pa.array([0] * n, pa.int16()),
            "raw": [b"{}"] * n,
        }
        arrays = [
            pa.array(columns[f.name]).cast(f.type)
            if not isinstance(columns[f.name], pa.Array)
            else columns[f.name].cast(f.type)
            for f in schema
        ]
        table = pa.Table.from_arrays(arrays, schema=schema)
        folder = lake / "raw" / "trade" / f"date={start:%Y-%m-%d}" / f"hour={start:%H}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"upbit.trade+0+{offset:020d}.parquet"
        pq.write_table(table, path)
        written.append(path)
        offset += n
    return written


def sim_trades(sim: Simulator, day: date, hours: Iterable[int]) -> list[TradeRow]:
    """The simulator's own trades of the given UTC hours of ``day`` (what the stream carries)."""
    first_minute = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) // 60
    rows: list[TradeRow] = []
    for spec in sim.specs:
        for hour in hours:
            for minute in range(first_minute + hour * 60, first_minute + hour * 60 + 60):
                for t in sim.tape.minute_trades(spec.index, minute):
                    rows.append(
                        (spec.code, t.ts, t.price / SCALE, t.volume / SCALE, t.is_bid, t.sid, False)
                    )
    return rows


def query(warehouse: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).df()


def table_bytes(warehouse: Path, names: Sequence[str]) -> dict[str, str]:
    """A canonical dump of whole tables (sorted CSV text) to compare two builds."""
    out = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for name in names:
            df = con.sql(f"select * from {name}").df()
            df = df.sort_values(list(df.columns)).reset_index(drop=True)
            out[name] = df.to_csv(index=False)
    return out


def read_parquet_bytes(data: bytes) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(data)).to_pandas()


def expected_daily(candles: pd.DataFrame, day: date) -> pd.DataFrame:
    """Gold daily figures computed independently with pandas/numpy from REST 1-minute candles.

    ``candles``: Upbit columns (market, candle_date_time_utc aware UTC, opening_price, high_price,
    low_price, trade_price, candle_acc_trade_price, candle_acc_trade_volume).
    """
    start = pd.Timestamp(datetime(day.year, day.month, day.day, tzinfo=UTC))
    grid = pd.date_range(start, start + timedelta(days=1), freq="1min", inclusive="left")
    rows = []
    for market, group in candles.groupby("market"):
        indexed = group.set_index(pd.to_datetime(group["candle_date_time_utc"], utc=True))
        indexed = indexed.sort_index()
        g = indexed[(indexed.index >= start) & (indexed.index < start + timedelta(days=1))]
        if g.empty:
            continue
        close = g["trade_price"].reindex(grid).ffill()
        r = np.log(close / close.shift(1)).dropna()
        o, h, lo, c = (
            g["opening_price"].iloc[0],
            g["high_price"].max(),
            g["low_price"].min(),
            g["trade_price"].iloc[-1],
        )
        big = r.abs().idxmax()
        rows.append(
            {
                "market": market,
                "open_price": o,
                "high_price": h,
                "low_price": lo,
                "close_price": c,
                "volume_krw": g["candle_acc_trade_price"].sum(),
                "volume_base": g["candle_acc_trade_volume"].sum(),
                "minutes_traded": len(g),
                "n_returns": len(r),
                "realized_vol": math.sqrt(float((r**2).sum())),
                "parkinson_vol": math.sqrt(math.log(h / lo) ** 2 / (4 * math.log(2))),
                "garman_klass_vol": math.sqrt(
                    0.5 * math.log(h / lo) ** 2 - (2 * math.log(2) - 1) * math.log(c / o) ** 2
                ),
                "largest_1m_move": float(r[big]),
                "largest_1m_move_at_utc": big.tz_convert(None).to_pydatetime(),
                "range_pct": 100 * (h - lo) / o,
                "return_open_close": c / o - 1,
            }
        )
    return pd.DataFrame(rows).set_index("market").sort_index()


def assert_gold_matches(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    actual = actual.set_index("market").sort_index()
    assert list(actual.index) == list(expected.index)
    for column in expected.columns:
        a, e = actual[column], expected[column]
        if column == "largest_1m_move_at_utc":
            assert [pd.Timestamp(x) for x in a] == [pd.Timestamp(x) for x in e], column
        else:
            np.testing.assert_allclose(
                a.astype(float), e.astype(float), rtol=1e-9, atol=1e-12, err_msg=column
            )
    annual = math.sqrt(365)
    np.testing.assert_allclose(actual["realized_vol_annualized"], actual["realized_vol"] * annual)
