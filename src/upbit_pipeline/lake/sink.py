"""The consumer: channel topics -> Parquet lake (``upbit-pipeline consume``).

**Delivery: exactly-once files.** Every record of ``{prefix}.trade|ticker|orderbook|candle`` ends
up in exactly one lake file (decoded under ``raw/``, or under ``deadletter/`` with its error),
whatever crashes happen, because of three rules you can point at in this module:

1. *Commit after durable write* (:meth:`LakeSink._persist`): a partition's offset is committed,
   synchronously, only after every file covering the records before it is durable (atomic rename
   + fsync locally, a completed PUT on GCS/S3). A crash before the commit loses nothing: the
   records are read again.
2. *Intent before write* (``intent.py``): before writing files of a partition, the names of all
   its files since the last commit are durably recorded. So every file at or beyond the committed
   offset is named there, and on assignment (:meth:`LakeSink._on_assign`, which also runs at start)
   those leftovers are deleted before reading resumes at the committed offset. A crash after the
   write but before the commit therefore cannot leave a duplicate.
3. *Deterministic names* (``layout.py``): a file is named by topic, partition and first offset,
   so a replay that cuts the same range writes the same name and replaces, never adds.

**Memory budget** (:meth:`LakeSink._relieve`): the buffers of all partitions together are kept
under ``lake.max_buffered_bytes``. After every record the sink adds that record's growth of its
partition's :attr:`PartitionWriter.buffered_bytes` to a running total; past the budget it seals
the largest buffers first until the total is at most 3/4 of the budget (so one budget hit frees a
quarter of it and does not fire again on the next record), and persists them through the same
intent -> files -> commit path. So the total never exceeds the budget by more than one record's
growth, which is at most one Arrow record batch (``schema.CHUNK_BYTES`` of frames) for records
smaller than that. Where a budget flush cuts depends on what the other partitions buffer, so a
replay may cut differently. That is safe by rule 2, not rule 3: a replay starts at the committed
offset, and every file at or beyond it was named in the intent and is deleted on assignment
*before* reading resumes; committed files lie wholly below the committed offset (a commit is the
last written unit's ``last_offset + 1``) and are never re-cut. Determinism only spares work (an
identical rewrite); it is not what exactly-once rests on.

Crash points, with the rule that makes each safe: before the write (1: nothing written, nothing
committed); during the write (local temp file or unfinished upload is invisible, and named in the
intent, so removed); after the write, before the commit (2); after the commit (1: reading resumes
exactly after the last committed file). ``tests/lake/test_crash_points.py`` kills a real process
at each point and ``tests/lake/test_stream_crash.py`` SIGKILLs consumers at random moments.

**Revocation** (:meth:`LakeSink._on_revoke`): the open units of the revoked partitions are sealed,
written and committed before the partitions are given up (the group generation is still valid in
the callback); the writer state is then dropped, so a later reassignment starts from the committed
offset with nothing buffered. If that commit fails, the files are leftovers named in the intent and
the next owner removes them. Lost partitions (``on_lost``) are dropped without writing.

Not covered: a *zombie* (a member paused past ``session.timeout.ms`` that wakes up and writes
while the new owner works) can race the new owner's intent; Kafka-protocol groups offer no fencing
for external sinks. ``lake verify`` detects the result.

Records that do not decode go to the dead letter and count as processed; they never block.
Synchronous: confluent-kafka's consumer is synchronous, and :func:`run_consumer` polls with short
timeouts and returns when ``stop.is_set()``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from upbit_pipeline.errors import TransientError
from upbit_pipeline.lake.intent import remove_leftovers, write_intent
from upbit_pipeline.lake.memory import release_memory
from upbit_pipeline.lake.storage import LakeStorage, open_lake
from upbit_pipeline.lake.writer import PartitionWriter, Rotation, SealedUnit
from upbit_pipeline.service import ConsumerCollector, Liveness, serve_metrics
from upbit_pipeline.settings import Settings
from upbit_pipeline.streaming.kafka import admin_config, consumer_config
from upbit_pipeline.streaming.topics import CHANNELS, TopicNames, ensure_topics

__all__ = [
    "BufferCollector",
    "ConsumerStats",
    "LakeSink",
    "SinkHook",
    "StopFlag",
    "run_consumer",
]

log = logging.getLogger(__name__)

_BATCH = 5000
_POLL_S = 0.2
_TOPICS_RETRY_S = 5.0


class StopFlag(Protocol):
    """``threading.Event`` or anything else with ``is_set()``."""

    def is_set(self) -> bool: ...


class SinkHook(Protocol):
    """Called at the crash points ``before_write``, ``during_write`` (per file, with its path
    and bytes), ``after_write`` and ``after_commit``. Tests pass one that kills the process."""

    def __call__(self, point: str, path: str = "", data: bytes = b"") -> None: ...


@dataclass
class ConsumerStats:
    """Counters of one consumer run."""

    records: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # per channel
    deadlettered: int = 0
    files: int = 0
    bytes_written: int = 0
    commits: int = 0
    leftovers_removed: int = 0
    assignments: int = 0
    revocations: int = 0
    errors: int = 0  # broker/transport errors reported by the client (it retries by itself)
    budget_flushes: int = 0  # partition buffers sealed early by lake.max_buffered_bytes
    buffered_bytes_peak: int = 0  # highest total of buffered bytes seen


@dataclass
class _Partition:
    writer: PartitionWriter  # open unit and sealed units not yet written
    uncommitted: list[str] = field(default_factory=list)  # written since the last commit


class LakeSink:
    """One consumer-group member writing its partitions to the lake (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        *,
        storage: LakeStorage | None = None,
        hook: SinkHook | None = None,
        kafka_overrides: dict[str, Any] | None = None,
    ) -> None:
        lake = settings.lake
        self.settings = settings
        self.storage = storage or open_lake(lake.path)
        self.hook: SinkHook = hook or _no_hook
        self.rotation = Rotation(lake.max_records_per_file, lake.max_bytes_per_file)
        names = TopicNames.of(settings.broker)
        self.channel_of = {names.channel(c): c for c in CHANNELS}
        self.stats = ConsumerStats()
        self.parts: dict[tuple[str, int], _Partition] = {}
        self.budget = lake.max_buffered_bytes
        self.buffered_bytes = 0  # all partitions' buffers (the upbit_lake_buffered_bytes gauge)
        config = consumer_config(settings.broker, lake.consumer_group, **(kafka_overrides or {}))
        self.consumer = Consumer(config)
        self._topics_ready = False
        self._topics_tried = 0.0

    # -- main loop --------------------------------------------------------------------------

    def run(self, stop: StopFlag, liveness: Liveness | None = None) -> ConsumerStats:
        """Consume until ``stop`` is set; then write and commit what is buffered, and leave.

        ``liveness`` (systemd): READY once subscribed, a WATCHDOG ping from every loop turn, so
        a loop stuck in a write or a commit stops the pings and systemd restarts the service.
        """
        live = liveness or Liveness.disabled()
        self._ensure_topics()
        self.consumer.subscribe(
            list(self.channel_of),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        live.ready("consuming")
        flush_s = self.settings.lake.flush_interval_s
        try:
            while not stop.is_set():
                live.ping(
                    lambda: (
                        f"{self.stats.records} records, {self.stats.files} files, "
                        f"{self.stats.commits} commits"
                    )
                )
                if not self._topics_ready:
                    self._ensure_topics()
                self._consume(self.consumer.consume(_BATCH, timeout=_POLL_S))
                now = time.monotonic()
                for part in self.parts.values():
                    writer = part.writer
                    if writer.pending and now - writer.opened_at >= flush_s:
                        writer.seal()
                self._persist([p for p in self.parts.values() if p.writer.sealed])
            live.stopping("writing buffered records")
            self._seal_and_persist(list(self.parts.values()))
        except BaseException:
            self.parts.clear()  # a failed run writes nothing more, not even on close's revoke
            raise
        finally:
            self.consumer.close()
        log.info("consumer stopped: %s", self.stats)
        return self.stats

    def _consume(self, batch: list[Message]) -> None:
        """The hot path: each record to its partition's writer, within the memory budget."""
        parts = cast(dict[Any, _Partition], self.parts)
        budget, total = self.budget, self.buffered_bytes
        for msg in batch:
            error = msg.error()
            if error is not None:
                self._client_error(error)
                continue
            part = parts.get((msg.topic(), msg.partition()))
            if part is None:
                continue  # fetched before a revocation; the next owner reads it
            writer = part.writer
            before = writer.buffered_bytes
            writer.add_message(msg)
            self.stats.records += 1
            total += writer.buffered_bytes - before
            if total > budget:
                self._note_buffered(total)
                total = self._relieve()
        self._note_buffered(total)

    def _note_buffered(self, total: int) -> None:
        # The total only grows between these calls, so they see every peak.
        self.buffered_bytes = total
        self.stats.buffered_bytes_peak = max(self.stats.buffered_bytes_peak, total)

    def _recount(self) -> int:
        self.buffered_bytes = sum(part.writer.buffered_bytes for part in self.parts.values())
        return self.buffered_bytes

    def _relieve(self) -> int:
        """Over budget: seal and persist the largest buffers until the total is at most 3/4 of
        the budget (see the module doc); returns the new total."""
        total = self._recount()
        target = self.budget * 3 // 4
        chosen: list[_Partition] = []
        for part in sorted(self.parts.values(), key=_buffered, reverse=True):
            held = part.writer.buffered_bytes
            if total <= target or not held:
                break
            part.writer.seal()
            chosen.append(part)
            total -= held
            self.stats.budget_flushes += 1
            log.info(
                "buffers over lake.max_buffered_bytes (%d): flushing %s[%d] early (%d bytes)",
                self.budget, part.writer.topic, part.writer.partition, held,
                extra={"topic": part.writer.topic, "partition": part.writer.partition},
            )  # fmt: skip
        self._persist(chosen)
        return self._recount()

    def _seal_and_persist(self, parts: list[_Partition]) -> None:
        for part in parts:
            part.writer.seal()
        self._persist([p for p in parts if p.writer.sealed])

    # -- the exactly-once core --------------------------------------------------------------

    def _persist(self, parts: list[_Partition]) -> None:
        """Intent, then files, then one synchronous commit (the order is the guarantee)."""
        if not parts:
            return
        units = [part.writer.take() for part in parts]
        self._recount()  # the taken units leave the buffers now; their writes are transient
        for part, sealed in zip(parts, units, strict=True):
            w = part.writer
            part.uncommitted += [path for unit in sealed for path in unit.paths()]
            write_intent(self.storage, w.topic, w.partition, part.uncommitted)
        offsets = [
            TopicPartition(part.writer.topic, part.writer.partition, sealed[-1].next_offset)
            for part, sealed in zip(parts, units, strict=True)
        ]
        self.hook("before_write")
        for sealed in units:
            sealed.reverse()
            while sealed:  # each unit's tables are freed once written, not at the commit
                self._write_unit(sealed.pop())
        del units
        self.hook("after_write")
        try:
            result = self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            self.stats.errors += 1
            log.warning("commit failed (files stay leftovers until re-assigned): %s", exc)
            return
        for tp in result or []:
            done = self.parts.get((tp.topic, tp.partition))
            if tp.error is not None:
                log.warning(
                    "commit of %s[%d]@%d failed: %s", tp.topic, tp.partition, tp.offset, tp.error,
                    extra={"topic": tp.topic, "partition": tp.partition, "offset": tp.offset},
                )  # fmt: skip
            elif done is not None:
                done.uncommitted = []
        self.stats.commits += 1
        self.hook("after_commit")
        release_memory()

    def _write_unit(self, unit: SealedUnit) -> None:
        for path, data in unit.files():
            self.hook("during_write", path, data)
            self.storage.write(path, data)
            self.stats.files += 1
            self.stats.bytes_written += len(data)
        self.stats.rows[unit.channel] = self.stats.rows.get(unit.channel, 0) + unit.rows
        self.stats.deadlettered += unit.dead_rows
        if unit.dead_rows:
            log.warning(
                "%d records of %s[%d] did not decode: dead-lettered", unit.dead_rows, unit.topic,
                unit.partition,
                extra={"topic": unit.topic, "partition": unit.partition,
                       "offset": unit.first_offset},
            )  # fmt: skip
        log.info(
            "wrote %s[%d] offsets %d..%d (%d rows, %d dead) to %s",
            unit.topic, unit.partition, unit.first_offset, unit.last_offset, unit.rows,
            unit.dead_rows, unit.paths()[0],
            extra={"topic": unit.topic, "partition": unit.partition, "offset": unit.first_offset},
        )  # fmt: skip

    # -- group membership -------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Remove leftovers of every assigned partition, then read on from its committed offset."""
        self.stats.assignments += 1
        committed = consumer.committed(partitions, timeout=30.0) if partitions else []
        for tp in committed:
            start = max(tp.offset, 0)  # no commit yet: every file of the partition is a leftover
            removed = remove_leftovers(self.storage, tp.topic, tp.partition, start)
            self.stats.leftovers_removed += removed
            channel = self.channel_of[tp.topic]
            writer = PartitionWriter(tp.topic, tp.partition, channel, self.rotation)
            self.parts[(tp.topic, tp.partition)] = _Partition(writer)
            log.info(
                "assigned %s[%d] at committed offset %d (%d leftovers removed)",
                tp.topic, tp.partition, tp.offset, removed,
                extra={"topic": tp.topic, "partition": tp.partition, "offset": tp.offset},
            )  # fmt: skip
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Write and commit what the revoked partitions hold, then forget them."""
        self.stats.revocations += 1
        parts = [self.parts[k] for k in _keys(partitions) if k in self.parts]
        self._seal_and_persist(parts)
        for key in _keys(partitions):
            self.parts.pop(key, None)
        self._recount()

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions already owned by someone else: drop buffers, write nothing."""
        for key in _keys(partitions):
            self.parts.pop(key, None)
        self._recount()
        log.warning("lost %d partitions without revocation; buffers dropped", len(partitions))

    # -- broker trouble ---------------------------------------------------------------------

    def _client_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise TransientError(f"fatal consumer error: {error}")
        self.stats.errors += 1
        if self.stats.errors == 1 or self.stats.errors % 100 == 0:
            log.warning(
                "consumer error (%d so far; the client retries): %s", self.stats.errors, error
            )

    def _ensure_topics(self) -> None:
        """Create missing topics so a consumer started before any producer still subscribes."""
        if time.monotonic() - self._topics_tried < _TOPICS_RETRY_S and self._topics_tried:
            return
        self._topics_tried = time.monotonic()
        try:
            admin = AdminClient(admin_config(self.settings.broker))
            ensure_topics(admin, self.settings.broker, timeout_s=5.0)
            self._topics_ready = True
        except (TransientError, KafkaException) as exc:
            log.warning("cannot check topics yet (broker down?); retrying: %s", exc)


def run_consumer(
    settings: Settings,
    *,
    stop: StopFlag,
    hook: SinkHook | None = None,
    kafka_overrides: dict[str, Any] | None = None,
) -> ConsumerStats:
    """Run the lake consumer until ``stop`` is set (synchronous; see :class:`LakeSink`).

    Serves Prometheus metrics on ``lake.metrics_port`` when set, and speaks systemd's notify
    protocol when started by systemd (``NOTIFY_SOCKET``).
    """
    sink = LakeSink(settings, hook=hook, kafka_overrides=kafka_overrides)

    def positions() -> dict[tuple[str, int], int]:
        return {
            key: part.writer.next_offset
            for key, part in list(sink.parts.items())
            if part.writer.next_offset is not None
        }

    collector = ConsumerCollector(lambda: sink.stats, positions)
    with serve_metrics(settings.lake.metrics_port, collector, BufferCollector(sink)):
        return sink.run(stop, Liveness.from_env())


class BufferCollector(Collector):
    """``upbit_lake_buffered_bytes`` and friends: the sink's memory budget at work.

    Here rather than in ``service.metrics`` because only the lake knows these numbers; it is
    registered beside :class:`ConsumerCollector` by :func:`run_consumer`.
    """

    def __init__(self, sink: LakeSink) -> None:
        self._sink = sink

    def collect(self) -> Iterable[Metric]:
        sink, p = self._sink, "upbit_lake"
        yield GaugeMetricFamily(
            f"{p}_buffered_bytes",
            "Bytes of records buffered across all partitions (lake.max_buffered_bytes bounds it).",
            value=sink.buffered_bytes,
        )
        yield GaugeMetricFamily(
            f"{p}_buffered_bytes_budget", "lake.max_buffered_bytes.", value=sink.budget
        )
        yield CounterMetricFamily(
            f"{p}_budget_flushes",
            "Partition buffers flushed early because the buffers exceeded the budget.",
            value=sink.stats.budget_flushes,
        )


def _keys(partitions: list[TopicPartition]) -> list[tuple[str, int]]:
    return [(tp.topic, tp.partition) for tp in partitions]


def _no_hook(point: str, path: str = "", data: bytes = b"") -> None:
    return None


def _buffered(part: _Partition) -> int:
    return part.writer.buffered_bytes
