"""Rotation and determinism of units, columns per channel, dead letters (no broker needed)."""

from __future__ import annotations

import itertools

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.lake import frames as f
from upbit_pipeline.lake.layout import HOUR_MS
from upbit_pipeline.lake.schema import SCHEMA_VERSION
from upbit_pipeline.lake.writer import PartitionWriter, Record, Rotation, SealedUnit

TOPIC = "upbit.trade"


def _trades(n: int, *, start: int = 0, ts: int = f.T0, step_ms: int = 10) -> list[Record]:
    return [
        Record(
            TOPIC, 0, start + i, b"KRW-BTC",
            f.trade("KRW-BTC", 10_000 + start + i, ts + i * step_ms),
            ts + i * step_ms, f.headers(1_000 + i),
        )
        for i in range(n)
    ]  # fmt: skip


def _run(records: list[Record], rotation: Rotation, channel: str = "trade") -> list[SealedUnit]:
    writer = PartitionWriter(records[0].topic if records else TOPIC, 0, channel, rotation)
    for record in records:
        writer.add_record(record)
    writer.seal()
    return writer.take()


def _offsets(units: list[SealedUnit]) -> list[int]:
    out: list[int] = []
    for u in units:
        for table in (u.data, u.dead):
            if table is not None:
                out += table["kafka_offset"].to_pylist()
    return sorted(out)


def test_rotation_by_record_count() -> None:
    units = _run(_trades(25), Rotation(max_records=10))
    assert [(u.first_offset, u.last_offset) for u in units] == [(0, 9), (10, 19), (20, 24)]


def test_rotation_by_value_bytes() -> None:
    size = len(_trades(1)[0].value)
    units = _run(_trades(10), Rotation(max_bytes=3 * size))
    assert [u.rows for u in units] == [3, 3, 3, 1]


def test_rotation_by_event_hour_including_late_records() -> None:
    base = (f.T0 // HOUR_MS + 1) * HOUR_MS - 30  # 30 ms before an hour boundary
    records = _trades(6, ts=base)  # 0..2 in hour H, 3..5 in hour H+1
    late = Record(TOPIC, 0, 6, b"KRW-BTC", f.trade("KRW-BTC", 1, base - 5), base - 5, f.headers(1))
    units = _run([*records, late], Rotation())
    assert [(u.first_offset, u.last_offset) for u in units] == [(0, 2), (3, 5), (6, 6)]
    assert units[0].hour == units[2].hour == units[1].hour - 1
    assert units[0].paths()[0].split("/")[3] == "hour=07"


def test_offset_hole_seals_the_unit() -> None:
    records = _trades(3) + _trades(2, start=10)
    units = _run(records, Rotation())
    assert [(u.first_offset, u.last_offset) for u in units] == [(0, 2), (10, 11)]


def test_same_records_same_files_byte_for_byte() -> None:
    records = _trades(20_000)  # units above CHUNK_ROWS: rows pass through Arrow chunks
    first = [file for u in _run(records, Rotation(max_records=9000)) for file in u.files()]
    second = [file for u in _run(records, Rotation(max_records=9000)) for file in u.files()]
    assert [p for p, _ in first] == [p for p, _ in second]
    assert first == second
    table = pq.read_table(pa.BufferReader(first[0][1]))
    assert table["kafka_offset"].to_pylist() == list(range(9000))
    assert table["sequential_id"].to_pylist() == list(range(10_000, 19_000))


def test_trade_columns_types_and_metadata() -> None:
    units = _run(_trades(3), Rotation())
    _path, data = units[0].files()[0]
    table = pq.read_table(pa.BufferReader(data))
    meta = table.schema.metadata
    assert meta[b"upbit_pipeline.schema_version"] == SCHEMA_VERSION.encode()
    assert meta[b"upbit_pipeline.first_offset"] == b"0"
    assert meta[b"upbit_pipeline.last_offset"] == b"2"
    assert (
        pq.ParquetFile(pa.BufferReader(data)).metadata.row_group(0).column(0).compression == "ZSTD"
    )
    assert table.schema.field("trade_timestamp").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("exchange_ts").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("recv_ts").type == pa.timestamp("ns", tz="UTC")
    assert table.schema.field("sequential_id").type == pa.int64()
    row = table.slice(0, 1).to_pylist()[0]
    assert row["market"] == "KRW-BTC"
    assert row["sequential_id"] == 10_000
    assert row["trade_price"] == 106_691_000.0
    assert row["raw"] == f.trade("KRW-BTC", 10_000, f.T0)
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == (TOPIC, 0, 0)
    assert (row["snapshot"], row["backfill"], row["format"]) == (False, False, "SIMPLE")
    assert int(row["exchange_ts"].timestamp() * 1000) == f.T0


def test_rest_backfill_trade_and_flags() -> None:
    record = Record(
        TOPIC, 0, 0, b"KRW-BTC", f.rest_trade("KRW-BTC", 7, f.T0), f.T0,
        f.headers(5, "REST", backfill=True),
    )  # fmt: skip
    (unit,) = _run([record], Rotation())
    row = unit.data.to_pylist()[0]
    assert (row["sequential_id"], row["backfill"], row["format"]) == (7, True, "REST")
    assert row["best_ask_price"] is None


def test_orderbook_levels_are_list_of_struct() -> None:
    record = Record("upbit.orderbook", 0, 0, b"KRW-BTC", f.orderbook(f.T0), f.T0, f.headers(1))
    (unit,) = _run([record], Rotation(), "orderbook")
    field = unit.data.schema.field("orderbook_units")
    assert field.type == pa.list_(
        pa.struct([(n, pa.float64()) for n in ("ask_price", "bid_price", "ask_size", "bid_size")])
    )
    levels = unit.data["orderbook_units"].to_pylist()[0]
    assert levels[1] == {
        "ask_price": 116609000.0,
        "bid_price": 116521000.0,
        "ask_size": 0.0005,
        "bid_size": 0.01624318,
    }


def test_ticker_and_candle_columns() -> None:
    (tick,) = _run(
        [Record("upbit.ticker", 0, 0, b"KRW-BTC", f.ticker(f.T0), f.T0, [])], Rotation(), "ticker"
    )
    (cndl,) = _run(
        [Record("upbit.candle", 0, 0, b"KRW-BTC", f.candle(f.T0), f.T0, [])], Rotation(), "candle"
    )
    assert tick.data.to_pylist()[0]["acc_trade_price_24h"] == 67648718116.20854
    assert cndl.data.to_pylist()[0]["interval"] == "1m"
    assert cndl.data.schema.field("candle_start").type == pa.timestamp("ms", tz="UTC")


def test_undecodable_records_go_to_the_dead_letter_and_keep_the_range() -> None:
    good = _trades(4)
    bad = [
        Record(TOPIC, 0, 4, b"KRW-BTC", b'{"ty":"trade","cd":', f.T0, f.headers(1)),
        Record(TOPIC, 0, 5, b"KRW-BTC", f.ticker(f.T0), f.T0, f.headers(1)),  # wrong channel
        Record(TOPIC, 0, 6, b"KRW-BTC", b"[]", f.T0, f.headers(1)),
    ]
    units = _run([*good, *bad, *_trades(2, start=7)], Rotation())
    (unit,) = units
    assert (unit.first_offset, unit.last_offset, unit.rows, unit.dead_rows) == (0, 8, 6, 3)
    dead = unit.dead.to_pylist()
    assert [d["kafka_offset"] for d in dead] == [4, 5, 6]
    assert "Ticker message in a trade topic" in dead[1]["error"]
    assert [p.split("/")[0] for p in unit.paths()] == ["raw", "deadletter"]
    assert unit.paths()[0].split("/", 1)[1] == unit.paths()[1].split("/", 1)[1]


@settings(max_examples=60, deadline=None)
@given(
    hours=st.lists(st.integers(0, 2), min_size=1, max_size=80),
    max_records=st.integers(1, 20),
    seal_after=st.sets(st.integers(0, 79)),
)
def test_units_tile_the_offsets_exactly_once(
    hours: list[int], max_records: int, seal_after: set[int]
) -> None:
    """Whatever the hours and wherever time-based flushes fall: contiguous, disjoint units."""
    writer = PartitionWriter(TOPIC, 0, "trade", Rotation(max_records=max_records))
    for i, h in enumerate(hours):
        ts = f.T0 + h * HOUR_MS
        writer.add_record(Record(TOPIC, 0, i, None, f.trade("KRW-BTC", i, ts), ts, []))
        if i in seal_after:
            writer.seal()
    writer.seal()
    units = writer.take()
    assert _offsets(units) == list(range(len(hours)))
    assert [u.first_offset for u in units] == sorted({u.first_offset for u in units})
    for a, b in itertools.pairwise(units):
        assert a.next_offset == b.first_offset
    for u in units:
        assert u.rows <= max_records
        assert len({ts // HOUR_MS for ts in u.data["exchange_ts"].cast("int64").to_pylist()}) == 1
