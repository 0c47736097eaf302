"""Parquet schemas per channel, the schema version, and the column builders.

Every data file has the channel's typed, flattened columns (Upbit's DEFAULT field names, so
docs.upbit.com reads straight onto the lake) followed by the same provenance columns:

    exchange_ts  timestamp[ms, UTC]  event time (trade_timestamp for trades, timestamp otherwise);
                                     it decides the file's date=/hour= folder
    recv_ts      timestamp[ns, UTC]  local receive time (record header recv_ns)
    snapshot, backfill (bool), format, conn_id (string)
    kafka_topic, kafka_partition, kafka_offset, frame_item   where the row came from in the log
    raw          binary              the record value, untouched (exactness lives here)

``frame_item`` is the message's index inside its record (0 except for LIST-format frames), so
(kafka_partition, kafka_offset, frame_item) is the primary key of a row. Orderbook levels are
``list<struct<ask_price, bid_price, ask_size, bid_size>>``. The file metadata carries
``upbit_pipeline.schema_version`` (bump it on any column change) and the unit's offset range.

Builders keep the decoded messages and per-record fields in plain lists and turn them into an
Arrow record batch every :data:`CHUNK_ROWS` rows or :data:`CHUNK_BYTES` bytes (one list
comprehension per column, which is what keeps the sink above 50k rows/s), then drop the Python
objects. A buffered record therefore costs its Arrow bytes, and at most one chunk's worth of
Python objects per partition is alive at any time; :attr:`ChannelColumns.nbytes` is what the
sink's memory budget (``lake.max_buffered_bytes``) counts.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, Final

import pyarrow as pa  # type: ignore[import-untyped]

from upbit_pipeline.upbit.models import Candle, Orderbook, Ticker, Trade

__all__ = [
    "CHANNEL_TYPES",
    "CHUNK_BYTES",
    "CHUNK_ROWS",
    "DEADLETTER_SCHEMA",
    "ROW_BYTES",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "ChannelColumns",
    "DeadColumns",
    "DeadRow",
    "RecordMeta",
    "file_metadata",
]

SCHEMA_VERSION: Final = "1"
CHUNK_ROWS: Final = 8192
CHUNK_BYTES: Final = 1 << 20
"""A chunk is also cut at this many (estimated) bytes: a 30-level book decodes to ~5 kB of
Python objects, so 8192 of them would be ~40 MB per partition before Arrow takes over; 1 MiB of
frames keeps that below ~3 MB. It is also the sink's "one batch" of budget overshoot."""
ROW_BYTES: Final = 128
"""Estimate of a row's typed and provenance columns (beyond ``raw``) until its chunk is built;
the chunk's real Arrow size replaces the estimate. Both are functions of the rows alone, so the
cut points, and hence the files, stay identical for identical records."""

RecordMeta = tuple[int, bool, bool, str, str]
"""Header fields of one record: recv ns, snapshot, backfill, format, conn_id."""
DeadRow = tuple[int, int, int, str, str, bytes | None, str, bytes]
"""One dead-letter row: offset, kafka ms, recv ns, format, conn_id, key, error, raw."""
_TS_MS = pa.timestamp("ms", tz="UTC")
_TS_NS = pa.timestamp("ns", tz="UTC")
_F64 = pa.float64()
_STR = pa.string()

LEVEL = pa.struct(
    [("ask_price", _F64), ("bid_price", _F64), ("ask_size", _F64), ("bid_size", _F64)]
)

# (column, type, attribute of the model) per channel, after ``market``.
_Spec = list[tuple[str, pa.DataType, str]]
_TRADE: _Spec = [
    ("trade_timestamp", _TS_MS, "trade_timestamp"),
    ("trade_price", _F64, "trade_price"),
    ("trade_volume", _F64, "trade_volume"),
    ("ask_bid", _STR, "ask_bid"),
    ("sequential_id", pa.int64(), "sequential_id"),
    ("prev_closing_price", _F64, "prev_closing_price"),
    ("change", _STR, "change"),
    ("change_price", _F64, "change_price"),
    ("best_ask_price", _F64, "best_ask_price"),
    ("best_ask_size", _F64, "best_ask_size"),
    ("best_bid_price", _F64, "best_bid_price"),
    ("best_bid_size", _F64, "best_bid_size"),
    ("frame_ts", _TS_MS, "timestamp"),
    ("stream_type", _STR, "stream_type"),
]
_TICKER: _Spec = [
    ("opening_price", _F64, "opening_price"),
    ("high_price", _F64, "high_price"),
    ("low_price", _F64, "low_price"),
    ("trade_price", _F64, "trade_price"),
    ("prev_closing_price", _F64, "prev_closing_price"),
    ("change", _STR, "change"),
    ("change_price", _F64, "change_price"),
    ("signed_change_price", _F64, "signed_change_price"),
    ("change_rate", _F64, "change_rate"),
    ("signed_change_rate", _F64, "signed_change_rate"),
    ("trade_volume", _F64, "trade_volume"),
    ("acc_trade_volume", _F64, "acc_trade_volume"),
    ("acc_trade_volume_24h", _F64, "acc_trade_volume_24h"),
    ("acc_trade_price", _F64, "acc_trade_price"),
    ("acc_trade_price_24h", _F64, "acc_trade_price_24h"),
    ("trade_timestamp", _TS_MS, "trade_timestamp"),
    ("highest_52_week_price", _F64, "highest_52_week_price"),
    ("highest_52_week_date", _STR, "highest_52_week_date"),
    ("lowest_52_week_price", _F64, "lowest_52_week_price"),
    ("lowest_52_week_date", _STR, "lowest_52_week_date"),
    ("ask_bid", _STR, "ask_bid"),
    ("acc_ask_volume", _F64, "acc_ask_volume"),
    ("acc_bid_volume", _F64, "acc_bid_volume"),
    ("market_state", _STR, "market_state"),
    ("is_trading_suspended", pa.bool_(), "is_trading_suspended"),
    ("delisting_date", _STR, "delisting_date"),
    ("market_warning", _STR, "market_warning"),
    ("stream_type", _STR, "stream_type"),
]
_ORDERBOOK: _Spec = [
    ("total_ask_size", _F64, "total_ask_size"),
    ("total_bid_size", _F64, "total_bid_size"),
    ("level", _F64, "level"),
    ("stream_type", _STR, "stream_type"),
]
_CANDLE: _Spec = [
    ("interval", _STR, "interval"),
    ("candle_start", _TS_MS, "start_utc"),
    ("opening_price", _F64, "opening_price"),
    ("high_price", _F64, "high_price"),
    ("low_price", _F64, "low_price"),
    ("trade_price", _F64, "trade_price"),
    ("candle_acc_trade_price", _F64, "candle_acc_trade_price"),
    ("candle_acc_trade_volume", _F64, "candle_acc_trade_volume"),
    ("prev_closing_price", _F64, "prev_closing_price"),
    ("change_price", _F64, "change_price"),
    ("change_rate", _F64, "change_rate"),
    ("first_day_of_period", _STR, "first_day_of_period"),
    ("stream_type", _STR, "stream_type"),
]
_SPECS: Final[dict[str, _Spec]] = {
    "trade": _TRADE,
    "ticker": _TICKER,
    "orderbook": _ORDERBOOK,
    "candle": _CANDLE,
}
CHANNEL_TYPES: Final[dict[str, type]] = {
    "trade": Trade,
    "ticker": Ticker,
    "orderbook": Orderbook,
    "candle": Candle,
}

_PROVENANCE: list[tuple[str, pa.DataType]] = [
    ("exchange_ts", _TS_MS),
    ("recv_ts", _TS_NS),
    ("snapshot", pa.bool_()),
    ("backfill", pa.bool_()),
    ("format", _STR),
    ("conn_id", _STR),
    ("kafka_topic", _STR),
    ("kafka_partition", pa.int32()),
    ("kafka_offset", pa.int64()),
    ("frame_item", pa.int16()),
    ("raw", pa.binary()),
]


def _schema(channel: str) -> pa.Schema:
    fields = [("market", _STR), *((name, typ) for name, typ, _ in _SPECS[channel])]
    if channel == "orderbook":
        fields.insert(len(fields) - 1, ("orderbook_units", pa.list_(LEVEL)))
    return pa.schema([*fields, *_PROVENANCE])


SCHEMAS: Final[dict[str, pa.Schema]] = {channel: _schema(channel) for channel in _SPECS}

DEADLETTER_SCHEMA: Final = pa.schema(
    [
        ("kafka_topic", _STR),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("kafka_ts", _TS_MS),
        ("recv_ts", _TS_NS),
        ("format", _STR),
        ("conn_id", _STR),
        ("key", pa.binary()),
        ("error", _STR),
        ("raw", pa.binary()),
    ]
)


def file_metadata(
    channel: str, topic: str, partition: int, first_offset: int, last_offset: int
) -> dict[bytes, bytes]:
    """Key-value metadata of every lake file. No write time: same records -> same bytes."""
    return {
        b"upbit_pipeline.schema_version": SCHEMA_VERSION.encode(),
        b"upbit_pipeline.channel": channel.encode(),
        b"upbit_pipeline.kafka_topic": topic.encode(),
        b"upbit_pipeline.kafka_partition": str(partition).encode(),
        b"upbit_pipeline.first_offset": str(first_offset).encode(),
        b"upbit_pipeline.last_offset": str(last_offset).encode(),
    }


class ChannelColumns:
    """Rows of one channel and partition, appended per decoded message.

    Every :data:`CHUNK_ROWS` rows or :data:`CHUNK_BYTES` bytes become an Arrow record batch and
    the Python objects are dropped: a decoded 30-level book costs ~5 kB as objects and a fraction
    of that as Arrow, so the memory of a 60 s buffer stays bounded by Arrow's size, not by
    Python's. The cut points depend on the rows alone, so identical records still make identical
    files. :attr:`nbytes` is the Arrow size of the built chunks plus an estimate of the rows not
    yet in one (their ``raw`` length + :data:`ROW_BYTES`).
    """

    def __init__(self, channel: str, topic: str, partition: int) -> None:
        self.channel = channel
        self.topic = topic
        self.partition = partition
        self._chunks: list[pa.RecordBatch] = []
        self._chunked_rows = 0
        self._chunked_bytes = 0
        self.nbytes = 0  # buffered bytes: exact for built chunks, estimated for the rest
        self.schema = SCHEMAS[channel]
        self._getters: list[tuple[str, pa.DataType, Callable[[Any], Any]]] = [
            (name, typ, operator.attrgetter(attr)) for name, typ, attr in _SPECS[channel]
        ]
        self._event = operator.attrgetter("trade_timestamp" if channel == "trade" else "timestamp")
        self._new_lists()

    def _new_lists(self) -> None:
        # One list per column, appended per row: no per-row tuple that the GC must track.
        self.msgs: list[Any] = []
        self.offset: list[int] = []
        self.item: list[int] = []
        self.raw: list[bytes] = []
        self.recv_ns: list[int] = []
        self.snapshot: list[bool] = []
        self.backfill: list[bool] = []
        self.fmt: list[str] = []
        self.conn_id: list[str] = []

    def __len__(self) -> int:
        return self._chunked_rows + len(self.msgs)

    def append(self, msg: Any, offset: int, item: int, raw: bytes, meta: RecordMeta) -> None:
        """One decoded message, where it came from, and its record's header fields."""
        self.msgs.append(msg)
        self.offset.append(offset)
        self.item.append(item)
        self.raw.append(raw)
        recv_ns, snapshot, backfill, fmt, conn_id = meta
        self.recv_ns.append(recv_ns)
        self.snapshot.append(snapshot)
        self.backfill.append(backfill)
        self.fmt.append(fmt)
        self.conn_id.append(conn_id)
        self.nbytes += len(raw) + ROW_BYTES
        if len(self.msgs) >= CHUNK_ROWS or self.nbytes - self._chunked_bytes >= CHUNK_BYTES:
            self._chunk()

    def to_table(self) -> pa.Table:
        """All rows so far as one table (in append order)."""
        if self.msgs:
            self._chunk()
        return pa.Table.from_batches(self._chunks, schema=self.schema)

    def _chunk(self) -> None:
        batch = self._batch()
        self._chunks.append(batch)
        self._chunked_rows += len(self.msgs)
        self._chunked_bytes += batch.nbytes
        self.nbytes = self._chunked_bytes
        self._new_lists()

    def _batch(self) -> pa.RecordBatch:
        topic, partition = self.topic, self.partition
        msgs = self.msgs
        n = len(msgs)
        arrays: list[pa.Array] = [pa.array([m.code for m in msgs], _STR)]
        for _name, typ, get in self._getters:
            arrays.append(pa.array([get(m) for m in msgs], typ))
        if self.channel == "orderbook":
            arrays.insert(len(arrays) - 1, _levels(msgs))
        event = self._event
        arrays += [
            pa.array([event(m) for m in msgs], _TS_MS),
            pa.array(self.recv_ns, _TS_NS),
            pa.array(self.snapshot, pa.bool_()),
            pa.array(self.backfill, pa.bool_()),
            pa.array(self.fmt, _STR),
            pa.array(self.conn_id, _STR),
            pa.repeat(pa.scalar(topic, _STR), n),
            pa.repeat(pa.scalar(partition, pa.int32()), n),
            pa.array(self.offset, pa.int64()),
            pa.array(self.item, pa.int16()),
            pa.array(self.raw, pa.binary()),
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _levels(books: Sequence[Orderbook]) -> pa.Array:
    """``list<struct<...>>`` from the books' units, built column-wise (no per-level dicts)."""
    offsets = [0]
    for book in books:
        offsets.append(offsets[-1] + len(book.units))
    units = [unit for book in books for unit in book.units]
    fields = [
        pa.array([u.ask_price for u in units], _F64),
        pa.array([u.bid_price for u in units], _F64),
        pa.array([u.ask_size for u in units], _F64),
        pa.array([u.bid_size for u in units], _F64),
    ]
    structs = pa.StructArray.from_arrays(fields, fields=list(LEVEL))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), structs, type=pa.list_(LEVEL))


class DeadColumns:
    """Records that did not decode, with the reason; one row per record."""

    def __init__(self) -> None:
        self.rows: list[DeadRow] = []
        self.nbytes = 0  # estimate: raw, key and error lengths + ROW_BYTES per row

    def __len__(self) -> int:
        return len(self.rows)

    def append(self, row: DeadRow) -> None:
        """(offset, kafka ms, recv ns, format, conn_id, key, error, raw) of one record."""
        self.rows.append(row)
        key, error, raw = row[5], row[6], row[7]
        self.nbytes += len(raw) + len(key or b"") + len(error) + ROW_BYTES

    def to_table(self, topic: str, partition: int) -> pa.Table:
        n = len(self.rows)
        offset, kafka_ms, recv, fmt, conn, key, error, raw = _columns(self.rows, 8)
        arrays = [
            pa.repeat(pa.scalar(topic, _STR), n),
            pa.repeat(pa.scalar(partition, pa.int32()), n),
            pa.array(offset, pa.int64()),
            pa.array(kafka_ms, _TS_MS),
            pa.array(recv, _TS_NS),
            pa.array(fmt, _STR),
            pa.array(conn, _STR),
            pa.array(key, pa.binary()),
            pa.array(error, _STR),
            pa.array(raw, pa.binary()),
        ]
        return pa.Table.from_arrays(arrays, schema=DEADLETTER_SCHEMA)


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[Sequence[Any]]:
    """Rows -> columns (``width`` empty columns for no rows)."""
    if not rows:
        return [() for _ in range(width)]
    return list(zip(*rows, strict=True))
