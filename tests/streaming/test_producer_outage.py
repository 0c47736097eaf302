"""Broker outages: a 30 s freeze (SIGSTOP/SIGCONT) while the simulator streams loses no frame;
a spool at its bound records explicit spool_overflow gaps instead of dropping silently."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.streaming.conftest import (
    FAST_WS,
    make_settings,
    read_topics,
    running,
    truth_trades,
    wait_for,
)
from tests.streaming.test_producer import DATA_TOPICS, TOPICS, TapProducer, by_key, expected_records
from upbit_pipeline.streaming.gaps import decode_gap
from upbit_pipeline.streaming.publisher import PublisherTuning
from upbit_pipeline.upbit.decode import decode_frame
from upbit_pipeline.upbit.models import Trade

pytestmark = pytest.mark.integration

FREEZE_S = 30.0
TUNING = PublisherTuning(stall_s=0.5, first_stall_s=5.0, flush_timeout_s=5.0)


async def test_broker_frozen_30s_no_frame_lost(sim_factory, broker, tmp_path: Path) -> None:
    sim = await sim_factory(markets=5, speed=5.0)
    producer = TapProducer(
        make_settings(sim, broker.settings, tmp_path), ws_config=FAST_WS, tuning=TUNING
    )
    async with running(producer):
        await wait_for(lambda: producer.stats().delivered >= 100, 20, "100 acknowledged frames")
        broker.pause()
        frozen_at = time.monotonic()
        try:
            await wait_for(lambda: producer.stats().spooled > 0, 5, "spooling to disk")
            # the freeze itself is the condition under test: hold it for FREEZE_S
            await asyncio.sleep(FREEZE_S - (time.monotonic() - frozen_at))
            during = producer.stats()
            assert during.spool_bytes > 0
            assert during.frames_total > 300  # the socket kept being read
        finally:
            broker.resume()
        publisher = producer.publisher
        assert publisher is not None
        await wait_for(lambda: publisher.idle and not publisher.spooling, 60, "spool drained")
        after = producer.stats().frames_total
        await wait_for(lambda: producer.stats().frames_total > after + 50, 20, "more frames")
    stats = producer.stats()
    assert stats.reconnects == 0 and stats.gaps_emitted == 0  # the socket never noticed
    assert stats.replayed > 0 and stats.spool_dropped == 0 and stats.failed == 0
    assert stats.spool_bytes == 0

    records = await asyncio.to_thread(
        read_topics, broker.settings, DATA_TOPICS, done=lambda r: len(r) >= stats.published,
        timeout_s=60,
    )  # fmt: skip
    assert len(records) == stats.published
    # every frame the socket delivered is in the log, in per-market order
    expected = expected_records(producer.seen)
    assert {k: [r.value for r in v] for k, v in by_key(records).items()} == {
        k: [f.data for f in v] for k, v in expected.items()
    }
    # and against the exchange's truth: every trade of the period, none missing, none twice
    per_market: dict[str, list[Trade]] = defaultdict(list)
    for rec in by_key(records).items():
        (topic, market), recs = rec
        if topic == TOPICS.channel("trade"):
            per_market[market] = [decode_frame(r.value)[0] for r in recs]  # type: ignore[misc]
    for market, trades in per_market.items():
        realtime = [t for t in trades if t.stream_type == "REALTIME"]
        first, last = realtime[0].trade_timestamp, realtime[-1].trade_timestamp
        truth = await truth_trades(sim, market, first, last + 1)
        got = [t.sequential_id for t in trades if first <= t.trade_timestamp <= last]
        assert sorted(got) == sorted(truth), market
        assert len(got) == len(set(got))


async def test_spool_at_its_bound_records_overflow_gaps(
    sim_factory, broker, tmp_path: Path
) -> None:
    sim = await sim_factory(markets=5, speed=50.0)
    settings = make_settings(
        sim, broker.settings, tmp_path, spool_max_bytes=1024 * 1024, channels="trade,orderbook"
    )
    producer = TapProducer(settings, ws_config=FAST_WS, tuning=TUNING)
    async with running(producer):
        await wait_for(lambda: producer.stats().delivered >= 50, 20, "acknowledged frames")
        broker.pause()
        try:
            await wait_for(lambda: producer.stats().spool_dropped >= 50, 30, "a full spool")
            assert producer.stats().spool_bytes <= 1024 * 1024
        finally:
            broker.resume()
        publisher = producer.publisher
        assert publisher is not None
        await wait_for(lambda: publisher.idle and not publisher.spooling, 60, "spool drained")
        after = producer.stats().frames_total
        await wait_for(lambda: producer.stats().frames_total > after + 200, 20, "more frames")
    stats = producer.stats()
    overflow = stats.gaps_by_reason.get("spool_overflow", 0)
    assert overflow >= 1 and stats.gaps_emitted == overflow

    records = await asyncio.to_thread(
        read_topics, broker.settings, [*DATA_TOPICS, TOPICS.gaps],
        done=lambda r: len(r) >= stats.published + stats.gaps_emitted, timeout_s=60,
    )  # fmt: skip
    gaps = [decode_gap(r.value) for r in records if r.topic == TOPICS.gaps]
    assert len(gaps) == overflow
    assert all(g.reason == "spool_overflow" and g.from_ms <= g.to_ms for g in gaps)
    assert len({(g.market, g.channel) for g in gaps}) == len(gaps)  # one per affected stream
    data = [r for r in records if r.topic != TOPICS.gaps]
    assert len(data) == stats.published  # everything accepted arrived; drops are the gaps
    # each gap spans exactly the frames that are missing from its stream
    for gap in gaps:
        topic = TOPICS.channel(gap.channel)
        times = [r.timestamp_ms for r in data if r.topic == topic and r.key == gap.market.encode()]
        assert gap.from_ms in times and gap.to_ms in times
        assert not [t for t in times if gap.from_ms < t < gap.to_ms]
