"""Inputs for backtest, replay and warm-up, all turned into the engine's event stream.

* Candles (REST ``/v1/candles/minutes/1``, a CSV export of them, or the lake) become four
  pseudo-trades per minute: open at :00, the first extreme at :20, the other at :40, close at :59,
  each carrying a quarter of the minute's KRW value. The extreme nearer the open comes first (a
  rising minute dips first, a falling one peaks first), the order that gives the smaller move
  between consecutive points, so a candle never fakes a larger intra-minute swing than it had.
  At :59 the engine's 60-s window holds exactly that minute, so volume ratios from candles equal
  the candle's own ratio.
* Captures: the cryptofeed recorder text (``<recv_s>: b'<frame>'``) or one raw frame per line.
* Lake raw trades: ``{lake}/raw/trade/date=YYYY-MM-DD/hour=HH/*.parquet``.

An :class:`Event` is ``(ts_ms, kind, market, a, b, sid)``: for trades a = price (KRW) and
b = volume (coin); for tickers a = market_warning. Sorting events by (ts_ms, sid) is the replay
order (stable for equal times).
"""

from __future__ import annotations

import ast
import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from upbit_pipeline.upbit.decode import decode_frame
from upbit_pipeline.upbit.errors import MalformedFrameError
from upbit_pipeline.upbit.models import Candle, Ticker, Trade

__all__ = [
    "Event",
    "candle_events",
    "capture_frames",
    "csv_candles",
    "frame_events",
    "lake_trade_events",
]

_OFFSETS_MS = (0, 20_000, 40_000, 59_000)


class Event(NamedTuple):
    """One engine input in event time (UTC epoch ms)."""

    ts_ms: int
    kind: str  # "trade" | "ticker"
    market: str
    price: float
    volume: float
    warning: str | None = None
    sid: int = 0


def candle_events(candles: Iterable[Candle]) -> Iterator[Event]:
    """Four pseudo-trades per 1-minute candle (see the module docstring), oldest candle first."""
    for c in sorted(candles, key=lambda c: (c.code, c.start_utc)):
        start = int(c.start_utc.timestamp() * 1000)
        o, h, low, close = c.opening_price, c.high_price, c.low_price, c.trade_price
        first, second = (low, h) if close >= o else (h, low)
        quarter = c.candle_acc_trade_price / 4.0
        for off, price in zip(_OFFSETS_MS, (o, first, second, close), strict=True):
            if price > 0:
                yield Event(start + off, "trade", c.code, price, quarter / price, None, start + off)


def csv_candles(path: Path) -> list[Candle]:
    """Read a CSV export of REST 1-minute candles (Upbit's column names, any row order)."""
    out = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            start = datetime.fromisoformat(row["candle_date_time_utc"]).replace(tzinfo=UTC)
            out.append(
                Candle(
                    code=row["market"],
                    interval="1m",
                    start_utc=start,
                    opening_price=float(row["opening_price"]),
                    high_price=float(row["high_price"]),
                    low_price=float(row["low_price"]),
                    trade_price=float(row["trade_price"]),
                    candle_acc_trade_price=float(row["candle_acc_trade_price"]),
                    candle_acc_trade_volume=float(row["candle_acc_trade_volume"]),
                    timestamp=int(row["timestamp"]),
                )
            )
    return out


def capture_frames(path: Path) -> Iterator[bytes]:
    """Raw WebSocket frames of a capture file, in arrival order.

    Understands the cryptofeed recorder (``<recv_s>: b'...'``, other lines skipped) and plain
    JSON lines (one frame per line).
    """
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            text = line.rstrip("\n")
            head, sep, literal = text.partition(": ")
            if sep and literal.startswith("b") and head.replace(".", "", 1).isdigit():
                value = ast.literal_eval(literal)
                if isinstance(value, bytes):
                    yield value
            elif text.startswith(("{", "[")):
                yield text.encode()


def frame_events(frame: bytes) -> list[Event]:
    """The trade and ticker events of one frame; other channels and bad frames give none.

    Raises MalformedFrameError for bytes that are not an Upbit message (callers count it).
    """
    out = []
    for msg in decode_frame(frame):
        if isinstance(msg, Trade):
            out.append(trade_event(msg))
        elif isinstance(msg, Ticker):
            out.append(Event(msg.timestamp, "ticker", msg.code, 0.0, 0.0, msg.market_warning))
    return out


def trade_event(trade: Trade) -> Event:
    return Event(
        trade.trade_timestamp,
        "trade",
        trade.code,
        trade.trade_price,
        trade.trade_volume,
        None,
        trade.sequential_id,
    )


def lake_trade_events(
    lake: str, start_ms: int, end_ms: int, markets: set[str] | None = None
) -> list[Event]:
    """Raw trades of the lake with ``start_ms <= trade_timestamp < end_ms``, time-ordered.

    Deduplicated on (market, sequential_id), as the lake may hold a trade twice (live + backfill).
    """
    import fsspec  # type: ignore[import-untyped]
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    fs, root = fsspec.core.url_to_fs(lake)
    columns = ["market", "sequential_id", "trade_timestamp", "trade_price", "trade_volume"]
    day_ms = 86_400_000
    seen: set[tuple[str, int]] = set()
    out: list[Event] = []
    for day in range(start_ms // day_ms, (end_ms - 1) // day_ms + 1):
        date = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")
        folder = f"{root.rstrip('/')}/raw/trade/date={date}"
        if not fs.exists(folder):
            continue
        for name in sorted(fs.find(folder)):
            if not name.endswith(".parquet"):
                continue
            with fs.open(name, "rb") as handle:
                table = pq.read_table(handle, columns=columns)
            stamps = table.column("trade_timestamp")
            if pa.types.is_timestamp(stamps.type):  # the lake stores timestamp[ms, UTC]
                table = table.set_column(
                    table.schema.get_field_index("trade_timestamp"),
                    "trade_timestamp",
                    stamps.cast(pa.int64()),
                )
            rows: dict[str, list[Any]] = table.to_pydict()
            for market, sid, ts, price, volume in zip(
                rows["market"],
                rows["sequential_id"],
                rows["trade_timestamp"],
                rows["trade_price"],
                rows["trade_volume"],
                strict=True,
            ):
                if not start_ms <= ts < end_ms or (markets and market not in markets):
                    continue
                if (market, sid) in seen:
                    continue
                seen.add((market, sid))
                out.append(Event(int(ts), "trade", market, float(price), float(volume), None, sid))
    out.sort(key=lambda e: (e.ts_ms, e.sid))
    return out


def rest_trades_body(value: bytes) -> bytes:
    """A backfilled record value (one REST trade object) as a ``/v1/trades/ticks`` body."""
    return b"[" + value + b"]"


__all__ += ["MalformedFrameError", "rest_trades_body", "trade_event"]
