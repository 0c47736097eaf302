"""The producer against a real broker (Tansu) and the real simulator: topics, keys, order,
headers and timestamps; snapshot-trade dedup and gap events across dropped connections; 1 %
malformed frames dead-lettered without loss. Conditions are polled with deadlines."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest

from tests.streaming.conftest import (
    FAST_TUNING,
    FAST_WS,
    Rec,
    fault,
    make_settings,
    read_topics,
    running,
    wait_for,
)
from upbit_pipeline.streaming.gaps import decode_gap
from upbit_pipeline.streaming.producer import Producer
from upbit_pipeline.streaming.records import H_ERROR, RecordHeaders, header_map
from upbit_pipeline.streaming.topics import TopicNames
from upbit_pipeline.upbit.decode import channel_of, decode_frame
from upbit_pipeline.upbit.errors import MalformedFrameError
from upbit_pipeline.upbit.models import Trade
from upbit_pipeline.upbit.ws import RawFrame

pytestmark = pytest.mark.integration

TOPICS = TopicNames()
DATA_TOPICS = [TOPICS.channel(c) for c in ("trade", "ticker", "orderbook")]


class TapProducer(Producer):
    """The real producer, remembering every frame it was handed (the ws side of the check)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen: list[RawFrame] = []

    def handle(self, frame: RawFrame) -> None:
        self.seen.append(frame)
        super().handle(frame)


def expected_records(seen: list[RawFrame]) -> dict[tuple[str, str], list[RawFrame]]:
    """Per (topic, market), the frames that must be in the log, in order (repeats dropped)."""
    out: dict[tuple[str, str], list[RawFrame]] = defaultdict(list)
    trades: set[tuple[str, int]] = set()
    for frame in seen:
        try:
            msg = decode_frame(frame.data)[0]
        except MalformedFrameError:
            continue
        if isinstance(msg, Trade):
            if (msg.code, msg.sequential_id) in trades:
                continue
            trades.add((msg.code, msg.sequential_id))
        out[(TOPICS.channel(channel_of(msg)), msg.code)].append(frame)  # type: ignore[arg-type]
    return out


def by_key(records: list[Rec]) -> dict[tuple[str, str], list[Rec]]:
    out: dict[tuple[str, str], list[Rec]] = defaultdict(list)
    for rec in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        out[(rec.topic, (rec.key or b"").decode())].append(rec)
    return out


async def read_all(broker, topics: list[str], count: int) -> list[Rec]:
    return await asyncio.to_thread(
        read_topics, broker, topics, done=lambda r: len(r) >= count, timeout_s=30
    )


async def test_every_frame_in_its_topic_keyed_in_order_with_headers(
    sim_factory, broker, tmp_path: Path
) -> None:
    sim = await sim_factory(markets=3, speed=20.0)
    producer = TapProducer(
        make_settings(sim, broker.settings, tmp_path), ws_config=FAST_WS, tuning=FAST_TUNING
    )
    async with running(producer):
        await wait_for(lambda: producer.stats().frames_total >= 600, 20, "600 frames")
    stats = producer.stats()
    assert stats.published == stats.delivered == sum(stats.frames_in.values()) - stats.deduped
    assert stats.failed == stats.deadlettered == stats.spooled == 0

    records = await read_all(broker.settings, DATA_TOPICS, stats.published)
    assert len(records) == stats.published
    expected = expected_records(producer.seen)
    got = by_key(records)
    assert got.keys() == expected.keys()
    assert {market for _, market in got} == set(sim.markets)
    for key, frames in expected.items():
        recs = got[key]
        assert [r.value for r in recs] == [f.data for f in frames], key  # per-market order
        assert len({r.partition for r in recs}) == 1  # keyed by market: one partition
        for rec, frame in zip(recs, frames, strict=True):
            msg = decode_frame(frame.data)[0]
            headers = RecordHeaders.decode(rec.headers)
            assert headers.recv_ns == frame.received_ns
            assert headers.conn_id == frame.conn_id
            assert headers.conn_id.startswith(producer.process_id + "-")
            assert headers.fmt == "SIMPLE"
            assert headers.snapshot == (msg.stream_type == "SNAPSHOT")  # type: ignore[union-attr]
            exchange_ms = msg.trade_timestamp if isinstance(msg, Trade) else msg.timestamp  # type: ignore[union-attr]
            assert rec.timestamp_ms == exchange_ms
    snapshots = [r for r in records if RecordHeaders.decode(r.headers).snapshot]
    assert len(snapshots) >= len(sim.markets)  # first connect: flagged snapshots per market


async def test_dropped_connections_reconnect_fast_record_gaps_and_dedup_snapshots(
    sim_factory, broker, tmp_path: Path
) -> None:
    sim = await sim_factory(markets=12, speed=1.0)
    producer = TapProducer(
        make_settings(sim, broker.settings, tmp_path), ws_config=FAST_WS, tuning=FAST_TUNING
    )
    drops = 3
    async with running(producer):
        await wait_for(lambda: len(producer.seen) >= 50, 20, "first frames")
        for n in range(drops):
            old = producer.seen[-1].conn_id
            started = asyncio.get_running_loop().time()
            await fault(sim, "drop")
            await wait_for(lambda o=old: producer.seen[-1].conn_id != o, 10, "a new connection")
            took = asyncio.get_running_loop().time() - started
            # full-jitter backoff is capped at backoff_max_s (0.5 s); plus connect + snapshot
            assert took < FAST_WS.backoff_max_s + 1.5, f"drop {n}: reconnect took {took:.2f} s"
            assert producer.stats().reconnects == n + 1
            await wait_for(lambda: producer.stats().inflight == 0, 10, "acks")
    stats = producer.stats()
    assert stats.reconnects == drops
    assert stats.gaps_by_reason.get("reconnect", 0) == stats.gaps_emitted >= drops

    records = await read_all(
        broker.settings, [*DATA_TOPICS, TOPICS.gaps], stats.published + stats.gaps_emitted
    )
    gaps = [decode_gap(r.value) for r in records if r.topic == TOPICS.gaps]
    assert len(gaps) == stats.gaps_emitted
    assert {g.conn_id for g in gaps} == {f"{producer.process_id}-0-{i}" for i in range(drops)}
    for gap in gaps:
        assert gap.reason == "reconnect" and gap.from_ms <= gap.to_ms
        assert gap.market in sim.markets and gap.channel in ("trade", "ticker", "orderbook")
    gap_records = [r for r in records if r.topic == TOPICS.gaps]
    assert all(r.key == decode_gap(r.value).market.encode() for r in gap_records)  # keyed
    # every (market, channel) that had data before a drop and after it has one gap per drop
    conns_per_key: dict[tuple[str, str], set[str]] = defaultdict(set)
    for frame in producer.seen:
        msg = decode_frame(frame.data)[0]
        conns_per_key[(msg.code, channel_of(msg))].add(frame.conn_id)  # type: ignore[union-attr]
    expected_gaps = sum(len(c) - 1 for c in conns_per_key.values())
    assert len(gaps) == expected_gaps

    # the trade snapshot repeated after each reconnect was not republished
    trades = [decode_frame(r.value)[0] for r in records if r.topic == TOPICS.channel("trade")]
    ids = [(t.code, t.sequential_id) for t in trades if isinstance(t, Trade)]
    assert len(ids) == len(set(ids))
    assert stats.deduped >= 1


async def test_one_percent_malformed_frames_all_dead_lettered_none_lost(
    sim_factory, broker, tmp_path: Path
) -> None:
    sim = await sim_factory(markets=5, speed=50.0)
    producer = TapProducer(
        make_settings(sim, broker.settings, tmp_path), ws_config=FAST_WS, tuning=FAST_TUNING
    )
    async with running(producer):
        await wait_for(lambda: producer.stats().frames_total >= 200, 20, "frames")
        await fault(sim, "malformed", fraction=0.01)
        await wait_for(lambda: producer.stats().deadlettered >= 30, 60, "30 malformed frames")
        await fault(sim, "clear")
        after = producer.stats().frames_total
        await wait_for(lambda: producer.stats().frames_total >= after + 200, 20, "still alive")
    stats = producer.stats()
    ratio = stats.deadlettered / stats.frames_total
    assert 0.001 < ratio < 0.05
    assert stats.published + stats.deadlettered + stats.deduped + stats.empty == stats.frames_total
    assert stats.failed == 0

    records = await read_all(
        broker.settings, [*DATA_TOPICS, TOPICS.deadletter], stats.published + stats.deadlettered
    )
    dead = [r for r in records if r.topic == TOPICS.deadletter]
    assert len(dead) == stats.deadlettered
    malformed = []
    for frame in producer.seen:
        try:
            decode_frame(frame.data)
        except MalformedFrameError:
            malformed.append(frame.data)
    assert sorted(r.value for r in dead) == sorted(malformed)
    for rec in dead:
        assert header_map(rec.headers)[H_ERROR]
        assert RecordHeaders.decode(rec.headers).conn_id.startswith(producer.process_id)
    good = [r for r in records if r.topic != TOPICS.deadletter]
    assert len(good) == stats.published
    expected = expected_records(producer.seen)
    assert {k: [r.value for r in v] for k, v in by_key(good).items()} == {
        k: [f.data for f in v] for k, v in expected.items()
    }
