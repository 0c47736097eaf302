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
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from upbit_pipeline.errors import TransientError
from upbit_pipeline.lake.intent import remove_leftovers, write_intent
from upbit_pipeline.lake.storage import LakeStorage, open_lake
from upbit_pipeline.lake.writer import PartitionWriter, Rotation, SealedUnit
from upbit_pipeline.service import ConsumerCollector, Liveness, serve_metrics
from upbit_pipeline.settings import Settings
from upbit_pipeline.streaming.kafka import admin_config, consumer_config
from upbit_pipeline.streaming.topics import CHANNELS, TopicNames, ensure_topics

__all__ = ["ConsumerStats", "LakeSink", "SinkHook", "StopFlag", "run_consumer"]

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
        """The hot path: each record to its partition's writer."""
        parts = cast(dict[Any, _Partition], self.parts)
        for msg in batch:
            error = msg.error()
            if error is not None:
                self._client_error(error)
                continue
            part = parts.get((msg.topic(), msg.partition()))
            if part is None:
                continue  # fetched before a revocation; the next owner reads it
            part.writer.add_message(msg)
            self.stats.records += 1

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
        for part, sealed in zip(parts, units, strict=True):
            w = part.writer
            part.uncommitted += [path for unit in sealed for path in unit.paths()]
            write_intent(self.storage, w.topic, w.partition, part.uncommitted)
        self.hook("before_write")
        offsets = []
        for part, sealed in zip(parts, units, strict=True):
            for unit in sealed:
                self._write_unit(unit)
            w = part.writer
            offsets.append(TopicPartition(w.topic, w.partition, sealed[-1].next_offset))
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

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions already owned by someone else: drop buffers, write nothing."""
        for key in _keys(partitions):
            self.parts.pop(key, None)
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
    with serve_metrics(settings.lake.metrics_port, collector):
        return sink.run(stop, Liveness.from_env())


def _keys(partitions: list[TopicPartition]) -> list[tuple[str, int]]:
    return [(tp.topic, tp.partition) for tp in partitions]


def _no_hook(point: str, path: str = "", data: bytes = b"") -> None:
    return None
