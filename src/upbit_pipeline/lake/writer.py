"""Per-partition buffers and deterministic rotation: records in, sealed file units out.

A **unit** is a contiguous offset range ``[first_offset, last_offset]`` of one partition whose
records share one UTC event-time hour. It becomes at most two files with the same name
(``layout.file_name``): the decoded rows under ``raw/`` and the records that did not decode
under ``deadletter/``. Rotation is a pure function of the record sequence:

* a record whose event hour differs from the open unit's hour seals the unit first (late and
  backfilled records make more, smaller files, but the same ones on every replay);
* after a record, the unit is sealed when it holds ``max_records`` records or ``max_bytes`` bytes
  of record values (value bytes, not Parquet bytes, so the cut never depends on the encoder);
* an offset that is not the expected next one seals the unit (a file never spans a hole).

The time-based flush (:meth:`PartitionWriter.seal`, called by the sink after
``flush_interval_s``) depends on the wall clock, and the memory-budget flush (also
:meth:`PartitionWriter.seal`, called by the sink when ``lake.max_buffered_bytes`` is exceeded)
on what the other partitions happen to buffer. Neither can break exactly-once: names come from
offsets, and a different cut after a crash only concerns files that were never committed, which
the sink deletes through the intent record before it reads them again (see ``sink.py``).

:attr:`PartitionWriter.buffered_bytes` is what this partition holds in memory (open unit and
sealed units not yet taken), kept as a plain attribute so the sink can watch it per record.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from upbit_pipeline.lake import layout
from upbit_pipeline.lake.schema import (
    CHANNEL_TYPES,
    ChannelColumns,
    DeadColumns,
    RecordMeta,
    file_metadata,
)
from upbit_pipeline.streaming.records import (
    FORMAT_REST,
    H_BACKFILL,
    H_CONN_ID,
    H_FORMAT,
    H_RECV_NS,
    H_SNAPSHOT,
)
from upbit_pipeline.upbit.decode import decode_frame, decode_trades_rest
from upbit_pipeline.upbit.errors import MalformedFrameError, UpbitApiError

__all__ = ["PartitionWriter", "Record", "Rotation", "SealedUnit", "encode_parquet"]


@dataclass(frozen=True)
class Record:
    """The parts of a Kafka record the lake needs (a confluent Message maps onto it 1:1)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: list[tuple[str, bytes | None]] | None


@dataclass(frozen=True)
class Rotation:
    """Deterministic size limits of one unit."""

    max_records: int = 500_000
    max_bytes: int = 128 * 1024 * 1024


def encode_parquet(table: pa.Table) -> bytes:
    """zstd Parquet bytes of a table; byte-identical for identical tables (no clock inside).

    The ``raw`` column gets neither a dictionary nor statistics: its values are all distinct
    frames, so the dictionary attempt only cost time and memory before falling back to plain
    (measured on a 24 MiB unit of 30-level books: 2.7x the encode time, +21 MiB of Arrow memory,
    a 9 % larger file), and min/max of JSON text bloat the footer and prune nothing.
    """
    other = [name for name in table.column_names if name != "raw"]
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", use_dictionary=other, write_statistics=other)
    data: bytes = sink.getvalue().to_pybytes()
    return data


@dataclass(frozen=True)
class SealedUnit:
    """A closed unit: its tables and where they go. Writing it is the sink's job."""

    channel: str
    topic: str
    partition: int
    hour: int
    first_offset: int
    last_offset: int
    data: pa.Table | None
    dead: pa.Table | None

    @property
    def nbytes(self) -> int:
        """Arrow bytes of the unit's tables (what it holds in memory until written)."""
        return sum(t.nbytes for t in (self.data, self.dead) if t is not None)

    @property
    def next_offset(self) -> int:
        """The offset to commit once this unit is durable."""
        return self.last_offset + 1

    def paths(self) -> list[str]:
        """Relative paths of the unit's files: data first, then dead letter (if any)."""
        t, p, first = self.topic, self.partition, self.first_offset
        return [
            layout.unit_path(
                area, self.channel, self.hour, topic=t, partition=p, first_offset=first
            )
            for area, table in ((layout.RAW, self.data), (layout.DEADLETTER, self.dead))
            if table is not None
        ]

    def files(self) -> list[tuple[str, bytes]]:
        """(relative path, Parquet bytes) of each file of the unit."""
        meta = file_metadata(
            self.channel, self.topic, self.partition, self.first_offset, self.last_offset
        )
        tables = [t for t in (self.data, self.dead) if t is not None]
        return [
            (path, encode_parquet(table.replace_schema_metadata(meta)))
            for path, table in zip(self.paths(), tables, strict=True)
        ]

    @property
    def rows(self) -> int:
        return self.data.num_rows if self.data is not None else 0

    @property
    def dead_rows(self) -> int:
        return self.dead.num_rows if self.dead is not None else 0


class PartitionWriter:
    """The open unit of one partition, and the rotation rules applied to each record."""

    def __init__(self, topic: str, partition: int, channel: str, rotation: Rotation) -> None:
        if channel not in CHANNEL_TYPES:
            raise ValueError(f"unknown channel {channel!r}")
        self.topic = topic
        self.partition = partition
        self.channel = channel
        self.rotation = rotation
        self._type = CHANNEL_TYPES[channel]
        self._event = operator.attrgetter("trade_timestamp" if channel == "trade" else "timestamp")
        self._max_records = rotation.max_records
        self._max_bytes = rotation.max_bytes
        self.next_offset: int | None = None  # expected next record (None: nothing seen yet)
        self.opened_at = 0.0  # monotonic time the open unit got its first record
        self.sealed: list[SealedUnit] = []  # closed units not yet taken by the sink
        self._sealed_bytes = 0
        self.buffered_bytes = 0  # open unit + sealed units (see the module doc)
        self._reset()

    def _reset(self) -> None:
        self._rows = ChannelColumns(self.channel, self.topic, self.partition)
        self._dead = DeadColumns()
        self._first: int | None = None
        self._hour = 0
        self._count = 0
        self._bytes = 0

    @property
    def pending(self) -> int:
        """Records in the open unit."""
        return self._count

    def add_record(self, record: Record) -> None:
        """:meth:`add` for a :class:`Record`."""
        self.add(record.offset, record.key, record.value, record.timestamp_ms, record.headers)

    def add_message(self, msg: Any) -> None:
        """:meth:`add` for a ``confluent_kafka.Message`` (the sink's hot path: no copies)."""
        self.add(msg.offset(), msg.key(), msg.value() or b"", msg.timestamp()[1], msg.headers())

    def take(self) -> list[SealedUnit]:
        """The units sealed so far, oldest first; the writer forgets them."""
        sealed, self.sealed = self.sealed, []
        self._sealed_bytes = 0
        self.buffered_bytes = self._rows.nbytes + self._dead.nbytes
        return sealed

    def add(
        self,
        offset: int,
        key: bytes | None,
        value: bytes,
        timestamp_ms: int,
        raw_headers: Sequence[tuple[str, bytes | None]] | None,
    ) -> None:
        """Add one record; units it seals (zero, one or two) go to :attr:`sealed`."""
        sealed = self.sealed
        expected = self.next_offset
        if expected is not None and offset != expected:
            if offset < expected:
                return  # a redelivery of what this writer already holds
            if self._first is not None:
                sealed.append(self._seal())  # a hole in the log: never span it
        meta = _record_meta(raw_headers)
        msgs, error = self._decode(value, meta[3])
        if error is None:
            hour = self._event(msgs[0]) // layout.HOUR_MS
            if self._first is not None and hour != self._hour:
                if len(self._rows):
                    sealed.append(self._seal())  # event-time hour rotation
                else:
                    self._hour = hour  # a unit of dead records only takes the first row's hour
            if self._first is None:
                self._open(offset, hour)
            rows = self._rows
            for item, msg in enumerate(msgs):
                rows.append(msg, offset, item, value, meta)
        else:
            if self._first is None:
                self._open(offset, layout.hour_of_ms(timestamp_ms))
            recv_ns, _, _, fmt, conn_id = meta
            self._dead.append((offset, timestamp_ms, recv_ns, fmt, conn_id, key, error, value))
        self.next_offset = offset + 1
        self._count += 1
        self._bytes += len(value)
        if self._count >= self._max_records or self._bytes >= self._max_bytes:
            sealed.append(self._seal())
        self.buffered_bytes = self._sealed_bytes + self._rows.nbytes + self._dead.nbytes

    def _open(self, offset: int, hour: int) -> None:
        self._first, self._hour = offset, hour
        self.opened_at = time.monotonic()

    def seal(self) -> None:
        """Close the open unit now (max-latency flush, memory budget, revoke, shutdown), if it
        holds records."""
        if self._first is not None:
            self.sealed.append(self._seal())
            self.buffered_bytes = self._sealed_bytes

    def _seal(self) -> SealedUnit:
        assert self._first is not None and self.next_offset is not None
        unit = SealedUnit(
            channel=self.channel,
            topic=self.topic,
            partition=self.partition,
            hour=self._hour,
            first_offset=self._first,
            last_offset=self.next_offset - 1,
            data=self._rows.to_table() if len(self._rows) else None,
            dead=self._dead.to_table(self.topic, self.partition) if len(self._dead) else None,
        )
        self._sealed_bytes += unit.nbytes
        self._reset()
        return unit

    def _decode(self, value: bytes, fmt: str) -> tuple[list[Any], str | None]:
        """(messages, None) for a record of this channel, else ([], why it is dead)."""
        msgs: list[Any]
        try:
            if fmt == FORMAT_REST:
                msgs = list(decode_trades_rest(b"[" + value + b"]"))
            else:
                msgs = list(decode_frame(value))
        except (MalformedFrameError, UpbitApiError) as exc:
            return [], str(getattr(exc, "reason", exc))
        if len(msgs) == 1 and type(msgs[0]) is self._type:
            return msgs, None  # the usual case, checked first
        if not msgs:
            return [], "record holds no market-data message"
        if any(type(m) is not self._type for m in msgs):
            kinds = ",".join(sorted({type(m).__name__ for m in msgs}))
            return [], f"{kinds} message in a {self.channel} topic"
        return msgs, None


def _record_meta(headers: Sequence[tuple[str, bytes | None]] | None) -> RecordMeta:
    """(recv ns, snapshot, backfill, format, conn_id) from the record headers (records.py)."""
    recv_ns, snapshot, backfill, fmt, conn_id = 0, False, False, "", ""
    for name, value in headers or ():
        if name == H_RECV_NS:
            recv_ns = int(value or 0)
        elif name == H_FORMAT:
            fmt = (value or b"").decode("ascii", "replace")
        elif name == H_CONN_ID:
            conn_id = (value or b"").decode("ascii", "replace")
        elif name == H_SNAPSHOT:
            snapshot = value == b"1"
        elif name == H_BACKFILL:
            backfill = value == b"1"
    return recv_ns, snapshot, backfill, fmt, conn_id
