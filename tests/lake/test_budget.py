"""The buffer memory budget (``lake.max_buffered_bytes``): accounting per partition, and the
sink flushing the largest buffers first while every record still lands exactly once."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.lake import frames as f
from tests.lake.conftest import (
    assert_exactly_once,
    consumer_thread,
    lake_settings,
    open_local,
    produce,
    read_log,
    wait_until,
)
from upbit_pipeline.lake import layout, verify_lake
from upbit_pipeline.lake.schema import CHUNK_BYTES, ROW_BYTES
from upbit_pipeline.lake.sink import BufferCollector
from upbit_pipeline.lake.writer import PartitionWriter, Rotation


def _ticker_writer() -> PartitionWriter:
    return PartitionWriter("upbit.ticker", 0, "ticker", Rotation())


def test_buffered_bytes_follow_the_open_unit_its_chunks_and_take() -> None:
    writer = _ticker_writer()
    value = f.ticker(f.T0)
    writer.add(0, b"KRW-BTC", value, f.T0, f.headers(1))
    assert writer.buffered_bytes == len(value) + ROW_BYTES  # estimate until the chunk is built
    n = CHUNK_BYTES // (len(value) + ROW_BYTES) + 10  # crosses one chunk boundary by bytes
    for i in range(1, n):
        writer.add(i, b"KRW-BTC", f.ticker(f.T0 + i), f.T0 + i, f.headers(1))
    chunked = writer._rows._chunks  # white-box: the built Arrow batches
    assert len(chunked) == 1
    pending = writer._rows.msgs
    assert writer.buffered_bytes == chunked[0].nbytes + len(pending) * (len(value) + ROW_BYTES)
    writer.seal()
    (unit,) = writer.sealed
    assert writer.buffered_bytes == unit.nbytes > 0  # sealed but not taken: still in memory
    assert unit.data is not None and unit.data.num_rows == n
    assert [b.num_rows for b in unit.data.to_batches()] == [n - len(pending), len(pending)]
    writer.take()
    assert writer.buffered_bytes == 0


def test_dead_letters_count_towards_the_buffer() -> None:
    writer = _ticker_writer()
    writer.add(0, b"k", b"{not json", f.T0, f.headers(1))
    assert writer.buffered_bytes > len(b"{not json") + ROW_BYTES  # plus the error text


def _ticker_heavy(n_tickers: int, n_trades: int) -> list[tuple[str, bytes, bytes, int, Any]]:
    """Many ~1.2 kB tickers and a few ~0.3 kB trades, over 12 keys (so all partitions)."""
    out = []
    for i in range(n_tickers):
        ts = f.T0 + i
        out.append(("upbit.ticker", f"K{i % 12}".encode(), f.ticker(ts), ts, f.headers(ts)))
    for i in range(n_trades):
        ts = f.T0 + i
        market = f"KRW-M{i % 12:02d}"
        value = f.trade(market, 5_000_000 + i, ts)
        out.append(("upbit.trade", market.encode(), value, ts, f.headers(ts)))
    return out


@pytest.mark.integration
def test_tiny_budget_flushes_largest_partitions_first_exactly_once(broker, tmp_path) -> None:
    budget = 128 * 1024
    records = _ticker_heavy(3000, 30)  # ~3.6 MB of tickers against ~10 kB of trades
    produce(broker.settings, records)
    log = read_log(broker.settings, len(records))
    lake = tmp_path / "lake"
    storage = open_local(lake)
    # No time-based flush during the test: only the budget may write before the stop.
    settings = lake_settings(
        broker.settings, str(lake), flush_interval_s=3600, max_buffered_bytes=budget
    )
    samples: list[float] = []
    with consumer_thread(settings, storage) as sink:
        collector = BufferCollector(sink)
        done = threading.Event()

        def scrape() -> None:  # the gauge as Prometheus would read it, as often as it can
            while not done.is_set():
                for metric in collector.collect():
                    if metric.name == "upbit_lake_buffered_bytes":
                        samples.extend(s.value for s in metric.samples)
                time.sleep(0.001)  # a sampling interval, not a wait for anything

        scraper = threading.Thread(target=scrape, daemon=True)
        scraper.start()
        try:
            wait_until(lambda: sink.stats.records == len(records), 60, "every record consumed")
        finally:
            done.set()
            scraper.join(10)
        # Before the stop only the budget wrote, and only the ticker buffers ever were largest.
        early = storage.find(layout.RAW)
        assert sink.stats.budget_flushes >= 10
        assert early and all(p.startswith("raw/ticker/") for p in early), early
        peak = sink.stats.buffered_bytes_peak
        assert budget < peak <= budget + CHUNK_BYTES  # the budget plus at most one batch
        assert peak <= budget + max(len(r[2]) for r in records) + ROW_BYTES  # here: one record
        assert samples and max(samples) <= budget + CHUNK_BYTES
    assert sink.buffered_bytes == 0  # everything written at the stop
    assert {p.split("/")[1] for p in storage.find(layout.RAW)} == {"ticker", "trade"}
    assert_exactly_once(storage, log)
    report = verify_lake(str(lake))
    assert report.ok, report.render()
