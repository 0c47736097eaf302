"""Issue 3 §4 end to end: WebSocket connections killed several times, gaps recorded and backfilled;
after (market, sequential_id) dedup the log holds every trade of the simulator's ground truth
exactly once, and nothing else.

Real parts only: the simulator (speed 20, so every reconnect misses seconds of trading), the real
producer with its in-process backfill worker, and a Tansu broker. Conditions are polled with
deadlines; the log is read to end markers written after the producer stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.streaming.conftest import FAST_TUNING, FAST_WS, fault, make_settings, running, wait_for
from tests.streaming.test_backfill import committed_total, read_topic, truth_ids
from upbit_pipeline.streaming.producer import Producer
from upbit_pipeline.streaming.records import FORMAT_REST, RecordHeaders
from upbit_pipeline.streaming.topics import TopicNames
from upbit_pipeline.upbit.decode import decode_frame, decode_trades_rest
from upbit_pipeline.upbit.models import Trade

pytestmark = pytest.mark.integration

DROPS = 4


def _trade_of(value: bytes, headers: RecordHeaders) -> Trade:
    """A trade record's value as a Trade: a WebSocket frame, or one REST trade (backfill)."""
    if headers.fmt == FORMAT_REST:
        (trade,) = decode_trades_rest(b"[" + value + b"]")
        return trade
    (message,) = decode_frame(value)
    assert isinstance(message, Trade)
    return message


async def test_killed_connections_backfilled_to_ground_truth(
    sim_factory, broker, tmp_path: Path
) -> None:
    sim = await sim_factory(markets=4, seed=2, speed=20.0)
    settings = make_settings(sim, broker.settings, tmp_path, backfill=True, channels=("trade",))
    group = f"{settings.broker.topic_prefix}-backfill"
    producer = Producer(settings, ws_config=FAST_WS, tuning=FAST_TUNING)

    async with running(producer):
        await wait_for(lambda: producer.stats().published >= 200, 20, "live trades")
        for _ in range(DROPS):
            reconnects, published = producer.stats().reconnects, producer.stats().published
            await fault(sim, "drop")
            await wait_for(lambda r=reconnects: producer.stats().reconnects > r, 10, "reconnect")
            await wait_for(
                lambda p=published: producer.stats().published >= p + 100, 20, "trades again"
            )
        assert producer.stats().gaps_emitted >= DROPS
        # The in-process worker commits a gap only after its trades are flushed: once every gap
        # the producer emitted is committed, the repairs are in the log.
        deadline = time.monotonic() + 45
        while True:
            emitted = producer.stats().gaps_emitted
            done = await asyncio.to_thread(committed_total, broker.settings, group)
            if done >= emitted:
                break
            assert time.monotonic() < deadline, f"{done} of {emitted} gaps repaired in time"
            await asyncio.sleep(0.25)

    stats = producer.stats()
    assert stats.reconnects == DROPS
    assert stats.gaps_by_reason == {"reconnect": stats.gaps_emitted}

    records = await asyncio.to_thread(
        read_topic, broker.settings, TopicNames.of(broker.settings).channel("trade")
    )
    seen: dict[tuple[str, int], set[tuple[int, float, float, str]]] = defaultdict(set)
    live_ids: set[tuple[str, int]] = set()
    backfill_ids: set[tuple[str, int]] = set()
    for record in records:
        headers = RecordHeaders.decode(record.headers())
        trade = _trade_of(record.value() or b"", headers)
        assert record.key() == trade.code.encode()
        assert record.timestamp()[1] == trade.trade_timestamp
        key = (trade.code, trade.sequential_id)
        seen[key].add((trade.trade_timestamp, trade.trade_price, trade.trade_volume, trade.ask_bid))
        (backfill_ids if headers.backfill else live_ids).add(key)
    # After dedup each id is one trade: its live and backfilled copies agree field by field.
    assert all(len(versions) == 1 for versions in seen.values())
    # The worker did repair something: trades the sockets never delivered.
    assert backfill_ids - live_ids

    by_market: dict[str, dict[int, int]] = defaultdict(dict)
    for (market, sid), versions in seen.items():
        (version,) = versions
        by_market[market][sid] = version[0]
    assert set(by_market) == set(sim.markets)
    for market, trades in by_market.items():
        lo, hi = min(trades.values()), max(trades.values())
        # Zero trades the exchange did not make, over the whole covered range ...
        assert set(trades) <= set(await truth_ids(sim.base_url, market, lo, hi)), market
        # ... and every trade it made, exactly once after dedup, strictly inside the range (at
        # the edge milliseconds other trades of the same ms may predate the first snapshot).
        inner = {sid for sid, ts in trades.items() if lo < ts < hi}
        truth = await truth_ids(sim.base_url, market, lo + 1, hi - 1)
        assert len(truth) == len(set(truth))
        missing, extra = set(truth) - inner, inner - set(truth)
        assert not missing and not extra, (market, len(missing), len(extra))
