"""Backfill worker against a real Tansu broker and the real simulator.

Each test writes gap events by hand, runs :class:`BackfillWorker` until its stats say the gaps are
done, then reads ``upbit.trade`` to its end (an end marker per partition, written after the worker
flushed, so "everything" is proven, not hoped for) and compares with the simulator's ground truth.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from upbit_pipeline.settings import BrokerSettings, Settings, UpbitSettings
from upbit_pipeline.streaming.backfill import BackfillStats, BackfillWorker
from upbit_pipeline.streaming.backfill_fetch import DAY_MS
from upbit_pipeline.streaming.gaps import GapEvent, encode_gap
from upbit_pipeline.streaming.kafka import consumer_config, producer_config
from upbit_pipeline.streaming.records import RecordHeaders
from upbit_pipeline.streaming.topics import TopicNames
from upbit_pipeline.upbit.decode import decode_trades_rest
from upbit_pipeline.upbit.models import Trade
from upbit_pipeline.upbit.rest import UpbitRestClient

pytestmark = pytest.mark.integration

END_KEY = b"__end__"


# -- helpers (also used by test_end_to_end_gaps.py) --------------------------------------------


def settings_for(broker: BrokerSettings, upbit_url: str, **producer: object) -> Settings:
    return Settings(
        upbit=UpbitSettings(url=upbit_url),
        broker=broker,
        producer=Settings().producer.model_copy(update=producer),
    )


def publish_gaps(broker: BrokerSettings, gaps: list[GapEvent]) -> None:
    producer = Producer(producer_config(broker))
    for gap in gaps:
        producer.produce(TopicNames.of(broker).gaps, key=gap.market.encode(), value=encode_gap(gap))
    assert producer.flush(10) == 0


def read_topic(broker: BrokerSettings, topic: str, timeout_s: float = 30.0) -> list[Message]:
    """Every record of ``topic`` (blocking): writes an end marker to each partition, reads to it.

    Watermarks are not trusted (Tansu reports wrong ones), so the markers mark the end.
    """
    marker = uuid.uuid4().hex.encode()
    producer = Producer(producer_config(broker))
    for partition in range(broker.partitions):
        producer.produce(topic, key=END_KEY, value=marker, partition=partition)
    assert producer.flush(10) == 0
    consumer = Consumer(consumer_config(broker, f"test-reader-{marker.decode()}"))
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(broker.partitions)])
    records: list[Message] = []
    ended: set[int] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while len(ended) < broker.partitions:
            assert time.monotonic() < deadline, f"end markers not all read from {topic}"
            message = consumer.poll(0.2)
            if message is None:
                continue
            assert message.error() is None, message.error()
            if message.key() == END_KEY:
                if message.value() == marker:
                    ended.add(int(message.partition() or 0))
                continue
            records.append(message)
    finally:
        consumer.close()
    return records


def committed_total(broker: BrokerSettings, group_id: str) -> int:
    """Sum of the committed offsets of ``group_id`` on the gaps topic (= gap events committed)."""
    consumer = Consumer(consumer_config(broker, group_id))
    try:
        topic = TopicNames.of(broker).gaps
        parts = [TopicPartition(topic, p) for p in range(broker.partitions)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
    finally:
        consumer.close()


async def truth_ids(base_url: str, market: str, from_ms: int, to_ms: int) -> list[int]:
    """The simulator's trades of ``market`` with ``from_ms <= ts <= to_ms`` (both inclusive)."""
    params: dict[str, str | int] = {"market": market, "from_ms": from_ms, "to_ms": to_ms + 1}
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base_url}/_sim/truth/trades", params=params)
    response.raise_for_status()
    body = response.json()
    assert body["to_ms"] == to_ms + 1, "the truth window reaches past the simulator's now"
    ids: list[int] = body["sequential_ids"]
    assert len(ids) == body["count"]
    return ids


def backfilled(records: list[Message]) -> list[tuple[Message, Trade]]:
    """The backfill records, each with its value decoded as a REST trade."""
    out = []
    for record in records:
        if RecordHeaders.decode(record.headers()).backfill:
            (trade,) = decode_trades_rest(b"[" + (record.value() or b"") + b"]")
            out.append((record, trade))
    return out


async def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def run_worker_until(
    worker: BackfillWorker, done: Callable[[BackfillStats], bool], timeout_s: float = 30.0
) -> BackfillStats:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: done(worker.stats) or task.done(), timeout_s, "the worker")
    finally:
        stop.set()
        stats = await asyncio.wait_for(task, 20)
    assert done(stats), stats
    return stats


def _gap(market: str, from_ms: int, to_ms: int) -> GapEvent:
    return GapEvent(market, "trade", from_ms, to_ms, "reconnect", "test-0-1", time.time_ns())


def _last_midnight_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000) // DAY_MS * DAY_MS


async def _rest_trades(
    base_url: str, market: str, from_ms: int, to_ms: int
) -> tuple[dict[int, Trade], bytes]:
    """What REST serves for the window, by sequential_id, and the raw bodies it came in.

    Plain httpx and cursor paging over each UTC day, independent of the code under test.
    """
    trades: dict[int, Trade] = {}
    bodies: list[bytes] = []
    async with httpx.AsyncClient(base_url=f"{base_url}/v1") as client:
        newest = decode_trades_rest(
            (await client.get("/trades/ticks", params={"market": market})).content
        )
        today = newest[0].trade_timestamp // DAY_MS
        for day in range(to_ms // DAY_MS, from_ms // DAY_MS - 1, -1):
            params: dict[str, str | int] = {"market": market, "count": 500}
            if day != today:
                params["days_ago"] = today - day
            while True:
                response = await client.get("/trades/ticks", params=params)
                response.raise_for_status()
                page = decode_trades_rest(response.content)
                bodies.append(response.content)
                trades.update(
                    (t.sequential_id, t) for t in page if from_ms <= t.trade_timestamp <= to_ms
                )
                if len(page) < 500 or page[-1].trade_timestamp < from_ms:
                    break
                params["cursor"] = page[-1].sequential_id
    return trades, b"".join(bodies)


async def _check_backfill_equals_truth(
    broker: BrokerSettings, base_url: str, market: str, from_ms: int, to_ms: int
) -> list[tuple[Message, Trade]]:
    records = await asyncio.to_thread(read_topic, broker, TopicNames.of(broker).channel("trade"))
    rows = backfilled(records)
    truth = await truth_ids(base_url, market, from_ms, to_ms)
    assert truth, "the window should hold trades"
    assert {t.sequential_id for _, t in rows} == set(truth)
    for record, trade in rows:
        assert record.key() == market.encode() == trade.code.encode()
        assert record.timestamp()[1] == trade.trade_timestamp
        headers = RecordHeaders.decode(record.headers())
        assert (headers.backfill, headers.conn_id, headers.fmt) == (True, "rest", "REST")
        assert headers.recv_ns > 0
        assert from_ms <= trade.trade_timestamp <= to_ms
    return rows


# -- tests ------------------------------------------------------------------------------------


async def test_gap_is_backfilled_exactly_from_rest(sim_factory, broker) -> None:
    sim = await sim_factory(markets=3, seed=1)
    market = sim.markets[1]
    now = sim.now_ms()
    from_ms, to_ms = now - 400_000, now - 100_000
    publish_gaps(broker.settings, [_gap(market, from_ms, to_ms)])

    worker = BackfillWorker(settings_for(broker.settings, sim.base_url))
    stats = await run_worker_until(worker, lambda s: s.gaps_repaired == 1)

    rows = await _check_backfill_equals_truth(broker.settings, sim.base_url, market, from_ms, to_ms)
    assert len(rows) == stats.trades_published  # one run: no duplicates at all
    assert stats.gaps_seen == 1 and stats.rest_requests >= 1
    # Each value decodes to the very trade REST serves, and is REST's own bytes (8-dp spelling).
    rest, bodies = await _rest_trades(sim.base_url, market, from_ms, to_ms)
    assert {t.sequential_id: t for _, t in rows} == rest
    for record, _ in rows:
        value = record.value() or b""
        assert value.startswith(b'{"market":"') and value.endswith(b"}")
        assert value in bodies  # REST's own bytes, number spelling and key order included
    assert committed_total(broker.settings, worker.group_id) == 1


async def test_gap_across_utc_midnight_fetches_both_days(sim_factory, broker) -> None:
    midnight = _last_midnight_ms()
    sim = await sim_factory(markets=2, seed=3, start_ms=midnight + 120_000)
    market = sim.markets[0]
    from_ms, to_ms = midnight - 90_000, midnight + 60_000
    publish_gaps(broker.settings, [_gap(market, from_ms, to_ms)])

    worker = BackfillWorker(settings_for(broker.settings, sim.base_url))
    await run_worker_until(worker, lambda s: s.gaps_repaired == 1)

    rows = await _check_backfill_equals_truth(broker.settings, sim.base_url, market, from_ms, to_ms)
    days = {t.trade_date for _, t in rows}
    assert len(days) == 2, days  # both sides of 00:00 UTC are there


async def test_exchange_days_behind_our_clock_is_detected(sim_factory, broker, caplog) -> None:
    """A simulator two days in the past: the first pages reveal its date; nothing is lost."""
    midnight = _last_midnight_ms() - 2 * DAY_MS
    sim = await sim_factory(markets=2, seed=4, start_ms=midnight + 120_000)
    market = sim.markets[1]
    from_ms, to_ms = midnight - 30_000, midnight + 30_000
    publish_gaps(broker.settings, [_gap(market, from_ms, to_ms)])

    worker = BackfillWorker(settings_for(broker.settings, sim.base_url))
    await run_worker_until(worker, lambda s: s.gaps_repaired == 1)

    rows = await _check_backfill_equals_truth(broker.settings, sim.base_url, market, from_ms, to_ms)
    assert len({t.trade_date for _, t in rows}) == 2
    assert "exchange's UTC day is" in caplog.text  # the wrong first guess was noticed


async def test_stop_mid_gap_then_restart_redoes_the_gap(sim_factory, broker) -> None:
    sim = await sim_factory(markets=3, seed=1)
    market = sim.markets[0]
    now = sim.now_ms()
    from_ms, to_ms = now - 300_000, now - 60_000
    publish_gaps(broker.settings, [_gap(market, from_ms, to_ms)])
    settings = settings_for(broker.settings, sim.base_url)

    # Small pages make the gap take ~5 s at 10 requests/s: stop after a few pages.
    first = BackfillWorker(settings, page_size=20)
    stats = await run_worker_until(first, lambda s: s.rest_requests >= 4)
    assert stats.gaps_repaired == 0 and stats.trades_published >= 20
    assert committed_total(broker.settings, first.group_id) == 0

    second = BackfillWorker(settings, page_size=20)
    stats = await run_worker_until(second, lambda s: s.gaps_repaired == 1)
    assert stats.gaps_seen == 1  # the gap came back: it was never committed
    assert committed_total(broker.settings, second.group_id) == 1

    rows = await _check_backfill_equals_truth(broker.settings, sim.base_url, market, from_ms, to_ms)
    truth = await truth_ids(sim.base_url, market, from_ms, to_ms)
    assert len(rows) > len(truth)  # the first run's part is there twice: at-least-once


async def test_rest_failures_retry_the_gap_in_place(sim_factory, broker) -> None:
    sim = await sim_factory(markets=2, seed=5)
    market = sim.markets[0]
    now = sim.now_ms()
    from_ms, to_ms = now - 120_000, now - 30_000
    publish_gaps(broker.settings, [_gap(market, from_ms, to_ms)])

    async def sim_fault(name: str, **params: float) -> None:
        async with httpx.AsyncClient() as admin:
            response = await admin.post(f"{sim.base_url}/_sim/faults/{name}", params=params)
            response.raise_for_status()

    await sim_fault("rest_5xx", seconds=60)
    # No retries inside the client: every 500 reaches the worker, which backs off and retries
    # the same gap in place; the fault ends once the worker has seen it twice.
    async with UpbitRestClient(sim.base_url, max_retries=0) as client:
        worker = BackfillWorker(settings_for(broker.settings, sim.base_url), client=client)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            await wait_until(lambda: worker.stats.retries >= 2 or task.done(), 30, "retries")
            assert worker.stats.gaps_repaired == 0
            assert committed_total(broker.settings, worker.group_id) == 0
            await sim_fault("clear")
            await wait_until(lambda: worker.stats.gaps_repaired == 1 or task.done(), 30, "repair")
        finally:
            stop.set()
            stats = await asyncio.wait_for(task, 20)
    assert stats.gaps_repaired == 1 and stats.gaps_seen == 1 and stats.retries >= 2
    await _check_backfill_equals_truth(broker.settings, sim.base_url, market, from_ms, to_ms)
    assert committed_total(broker.settings, worker.group_id) == 1


async def test_unrecoverable_gaps_are_counted_and_committed(sim_factory, broker) -> None:
    sim = await sim_factory(markets=2, seed=1)
    now = sim.now_ms()
    old = _gap(sim.markets[0], now - 9 * DAY_MS, now - 9 * DAY_MS + 60_000)
    delisted = _gap("KRW-NOPE", now - 120_000, now - 60_000)
    other = GapEvent(sim.markets[0], "orderbook", now - 120_000, now - 60_000, "silence")
    publish_gaps(broker.settings, [old, delisted, other])

    worker = BackfillWorker(settings_for(broker.settings, sim.base_url))
    stats = await run_worker_until(
        worker, lambda s: s.gaps_unrecoverable == 2 and s.gaps_skipped == 1
    )
    assert stats.gaps_seen == 3 and stats.gaps_repaired == 0 and stats.trades_published == 0
    assert stats.rest_requests == 1  # the 404; the old gap is known lost without asking
    assert committed_total(broker.settings, worker.group_id) == 3
    records = await asyncio.to_thread(
        read_topic, broker.settings, TopicNames.of(broker.settings).channel("trade")
    )
    assert records == []
