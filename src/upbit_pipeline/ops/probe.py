"""Read-only probes of the broker for ``status`` and ``ops watch``, without trusting watermarks.

Why not watermarks: the embedded broker (Tansu) reports wrong high watermarks and wrong
``offsets_for_times`` answers (docs/platform notes; measured: every timestamp lookup answers
offset 0), so "lag = high watermark - committed offset" would be fiction there. The same code must
stay right on Redpanda/Kafka, where those answers are correct. So every conclusion here comes from
**records actually read**:

* *Age of the last message per channel* (:func:`channel_ages`): ask ``offsets_for_times`` for the
  smallest recent window (5 s, 1 min, 10 min, 1 h, ``lookback_s``) that has a record, and use the
  answer only as a *starting hint*; then read forward until the broker has nothing more to give
  (no record for ``idle_s``) and take the largest record timestamp (exchange event time). On
  Redpanda the hint is exact and only a few records are read; on a broker with wrong answers the
  scan starts earlier and reads more, bounded by ``budget_s`` (``complete`` says whether it
  reached the end).
* *Consumer progress* (:func:`consumer_progress`): the group's committed offsets (OffsetFetch,
  which does not join the group), then one read at each committed offset. A record there means
  records are waiting for the consumer; its timestamp says since when. No record within
  ``wait_s`` means the consumer is caught up. The probe never commits and never joins the group.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from upbit_pipeline.settings import BrokerSettings
from upbit_pipeline.streaming.kafka import admin_config, consumer_config

__all__ = [
    "BrokerInfo",
    "ChannelAge",
    "ConsumerProgress",
    "PartitionProgress",
    "broker_info",
    "channel_ages",
    "consumer_progress",
]

_WINDOWS_S = (5, 60, 600, 3600)
_NO_COMMIT = -1001  # librdkafka's OFFSET_INVALID: the group never committed this partition


@dataclass(frozen=True)
class BrokerInfo:
    reachable: bool
    brokers: int = 0
    topics: dict[str, int] = field(default_factory=dict)  # topic -> partitions
    error: str = ""


@dataclass(frozen=True)
class ChannelAge:
    """Newest record of one topic: event time (ms) and age in seconds, None when none found."""

    topic: str
    last_ms: int | None
    age_s: float | None
    records_read: int
    complete: bool  # the scan reached the end of every partition


@dataclass(frozen=True)
class PartitionProgress:
    topic: str
    partition: int
    committed: int | None  # None: the group never committed here
    waiting: bool  # a record exists at the committed offset
    waiting_since_ms: int | None  # event time of that record


@dataclass(frozen=True)
class ConsumerProgress:
    group: str
    partitions: list[PartitionProgress]

    @property
    def waiting(self) -> list[PartitionProgress]:
        return [p for p in self.partitions if p.waiting]

    def committed(self) -> dict[tuple[str, int], int | None]:
        return {(p.topic, p.partition): p.committed for p in self.partitions}


def _probe_consumer(broker: BrokerSettings, group: str | None = None) -> Consumer:
    """A consumer that never commits; with ``group`` only to read that group's commits."""
    return Consumer(
        consumer_config(
            broker,
            group or f"upbit-pipeline-probe-{uuid.uuid4().hex[:12]}",
            **{"enable.partition.eof": False, "isolation.level": "read_uncommitted"},
        )
    )


def broker_info(broker: BrokerSettings, timeout_s: float = 5.0) -> BrokerInfo:
    """Is the broker answering metadata requests; which topics and partitions it has."""
    admin = AdminClient(
        {**admin_config(broker), "socket.connection.setup.timeout.ms": int(timeout_s * 1000)}
    )
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        return BrokerInfo(reachable=False, error=str(exc.args[0]) if exc.args else "unreachable")
    topics = {name: len(t.partitions) for name, t in metadata.topics.items() if not t.error}
    return BrokerInfo(reachable=True, brokers=len(metadata.brokers), topics=topics)


def _partitions(info: BrokerInfo, topics: Iterable[str]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in topics for p in range(info.topics.get(t, 0))]


def _start_hints(
    consumer: Consumer, parts: list[TopicPartition], now_ms: int, lookback_s: float
) -> list[TopicPartition]:
    """Per topic, start offsets from the smallest window that has a record of that topic."""
    windows = [w for w in _WINDOWS_S if w < lookback_s] + [lookback_s]
    pending = list(parts)
    hints: list[TopicPartition] = []
    for window in windows:
        if not pending:
            break
        since = now_ms - int(window * 1000)
        query = [TopicPartition(tp.topic, tp.partition, since) for tp in pending]
        answer = consumer.offsets_for_times(query, timeout=5.0)
        found = [tp for tp in answer if tp.error is None and tp.offset >= 0]
        hints += found
        resolved = {tp.topic for tp in found}
        pending = [tp for tp in pending if tp.topic not in resolved]
    return hints


def channel_ages(
    broker: BrokerSettings,
    topics: list[str],
    *,
    info: BrokerInfo | None = None,
    lookback_s: float = 86_400.0,
    idle_s: float = 0.5,
    budget_s: float = 5.0,
) -> dict[str, ChannelAge]:
    """The newest record of each topic, by reading records (see the module docstring)."""
    info = info or broker_info(broker)
    parts = _partitions(info, topics)
    newest: dict[str, int] = {}
    counts: dict[str, int] = dict.fromkeys(topics, 0)
    complete = True
    if parts:
        consumer = _probe_consumer(broker)
        try:
            now_ms = int(time.time() * 1000)
            start = _start_hints(consumer, parts, now_ms, lookback_s)
            if start:
                consumer.assign(start)
                complete = _read_forward(consumer, newest, counts, idle_s, budget_s)
        finally:
            consumer.close()
    now_ms = int(time.time() * 1000)
    out = {}
    for topic in topics:
        last = newest.get(topic)
        out[topic] = ChannelAge(
            topic=topic,
            last_ms=last,
            age_s=(now_ms - last) / 1000.0 if last is not None else None,
            records_read=counts.get(topic, 0),
            complete=complete,
        )
    return out


def _read_forward(
    consumer: Consumer,
    newest: dict[str, int],
    counts: dict[str, int],
    idle_s: float,
    budget_s: float,
) -> bool:
    """Read until nothing arrives for ``idle_s`` (True) or ``budget_s`` runs out (False)."""
    deadline = time.monotonic() + budget_s
    last_record = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= deadline:
            return False
        if now - last_record >= idle_s:
            return True
        batch = consumer.consume(10_000, timeout=min(0.1, idle_s))
        for msg in batch:
            if msg.error() is not None:
                continue
            topic = str(msg.topic())
            _kind, ts = msg.timestamp()
            counts[topic] = counts.get(topic, 0) + 1
            if ts > newest.get(topic, -1):
                newest[topic] = ts
        if batch:
            last_record = time.monotonic()


def consumer_progress(
    broker: BrokerSettings,
    group: str,
    topics: list[str],
    *,
    info: BrokerInfo | None = None,
    wait_s: float = 1.5,
) -> ConsumerProgress:
    """Committed offsets of ``group`` and whether a record waits at each one."""
    info = info or broker_info(broker)
    parts = _partitions(info, topics)
    if not parts:
        return ConsumerProgress(group, [])
    reader = _probe_consumer(broker, group)
    try:
        committed = reader.committed(parts, timeout=10.0)
    finally:
        reader.close()
    positions: dict[tuple[str, int], int | None] = {}
    assign: list[TopicPartition] = []
    for tp in committed:
        offset = tp.offset if tp.error is None and tp.offset != _NO_COMMIT else None
        positions[(tp.topic, tp.partition)] = offset
        start = offset if offset is not None and offset >= 0 else OFFSET_BEGINNING
        assign.append(TopicPartition(tp.topic, tp.partition, start))
    first: dict[tuple[str, int], int] = {}
    consumer = _probe_consumer(broker)
    try:
        consumer.assign(assign)
        deadline = time.monotonic() + wait_s
        while len(first) < len(assign) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.1):
                if msg.error() is not None:
                    continue
                key = (str(msg.topic()), int(msg.partition() or 0))
                if key not in first:
                    first[key] = msg.timestamp()[1]
                    # Only the first record of each partition matters: stop fetching it.
                    consumer.pause([TopicPartition(key[0], key[1])])
    finally:
        consumer.close()
    progress = [
        PartitionProgress(
            topic=topic,
            partition=partition,
            committed=positions[(topic, partition)],
            waiting=(topic, partition) in first,
            waiting_since_ms=first.get((topic, partition)),
        )
        for topic, partition in sorted(positions)
    ]
    return ConsumerProgress(group, progress)
