"""Hand records to the broker, or to the disk spool while the broker is away; replay in order.

Delivery guarantee: **at-least-once, in order per key, nothing dropped silently.**

* *Direct*: records go to an idempotent, ``acks=all`` librdkafka producer
  (``kafka.producer_config``) with ``message.timeout.ms=0``: librdkafka retries forever and its
  idempotence keeps per-partition order without duplicates from retries.
* *Spooling*: when the broker looks gone (its local queue is full, ``_ALL_BROKERS_DOWN``, no
  delivery report for ``stall_s`` while records are in flight, or more than ``max_inflight``
  records unacknowledged) every new record is appended to the :class:`Spool` instead, so RAM
  holds at most a few seconds of frames and the sockets keep being read. Once spooling, *all*
  records go to the spool until it is empty again, which keeps each key's order.
* *Drain*: when every direct record is acknowledged, the spool is replayed in batches; a batch is
  committed (its segments freed) only after the broker acknowledged all of it. A crash in the
  middle replays the batch again (the at-least-once part).
* *Full spool*: :meth:`publish` returns ``False`` and counts the record; the caller turns that
  into a ``spool_overflow`` gap event. Nothing else is ever dropped.
* *Shutdown*: :meth:`close` waits up to ``flush_timeout_s`` for acknowledgements; records still
  in librdkafka after that are purged and written *in front of* the spool, so the next start
  replays them first (a purged in-flight record may have reached the broker: a duplicate).
* *Permanent failures* (a delivery report with a non-retriable error) are counted in
  ``stats.failed`` and logged; a fatal producer error (idempotence broken) raises
  :class:`TerminalError` from :meth:`run` so a supervisor restarts the process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import cast

from confluent_kafka import KafkaError, Message
from confluent_kafka import Producer as KafkaProducer

from upbit_pipeline.errors import TerminalError
from upbit_pipeline.settings import BrokerSettings, ProducerSettings
from upbit_pipeline.streaming.kafka import producer_config
from upbit_pipeline.streaming.spool import Spool, SpoolRecord

__all__ = ["PublishStats", "Publisher", "PublisherTuning"]

log = logging.getLogger(__name__)

_PURGED = {KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT}
DurableKey = tuple[str, bytes | None]  # (topic, key)
_Headers = list[tuple[str, str | bytes | None]]  # what produce() is typed to take


@dataclass(frozen=True)
class PublisherTuning:
    """When to spool and how to drain; the defaults keep librdkafka's RAM use to seconds."""

    stall_s: float = 1.0  # records in flight and no delivery report this long: spool
    first_stall_s: float = 10.0  # the same before the first report (connect + producer id)
    max_inflight: int = 50_000  # unacknowledged records handed to librdkafka
    drain_batch: int = 5_000
    poll_every: int = 256  # poll(0) after this many produce() calls
    pump_interval_s: float = 0.002  # also how late a delivery report can be served
    flush_timeout_s: float = 5.0
    latency_samples: int = 200_000


@dataclass
class PublishStats:
    """Counters of the publish path."""

    delivered: int = 0
    failed: int = 0
    spooled: int = 0
    spool_dropped: int = 0
    replayed: int = 0
    spool_bytes: int = 0
    spool_episodes: int = 0
    inflight: int = 0


class Publisher:
    """Direct to librdkafka, or through the spool; see the module docstring for the guarantee."""

    def __init__(
        self,
        broker: BrokerSettings,
        producer: ProducerSettings,
        spool: Spool,
        *,
        tuning: PublisherTuning | None = None,
    ) -> None:
        self.tuning = tuning or PublisherTuning()
        self.spool = spool
        self.stats = PublishStats()
        config = producer_config(
            broker, compression=producer.compression, linger_ms=producer.linger_ms
        )
        config["error_cb"] = self._on_error
        self._kafka = KafkaProducer(config)
        self._inflight = 0  # direct + replayed records not yet reported
        self._progress = time.monotonic()  # last delivery report, or first record in flight
        self._spooling = not spool.empty  # a journal left by the previous run is replayed first
        self._brokers_down = False
        self._reported = False  # any delivery report yet (the broker answered once)
        self._batch_out = False  # a replay batch awaits its acknowledgements
        self._since_poll = 0
        self._fatal: KafkaError | None = None
        self._closing = False
        self._purged: list[SpoolRecord] = []
        self.durable: dict[DurableKey, int] = {}  # last acked-or-spooled timestamp per key
        self.latency_ms: deque[float] = deque(maxlen=self.tuning.latency_samples)
        self.recv_latency_ms: deque[float] = deque(maxlen=self.tuning.latency_samples)
        if self._spooling:
            self.stats.spool_episodes += 1

    # -- state ----------------------------------------------------------------------------------

    @property
    def spooling(self) -> bool:
        return self._spooling

    @property
    def inflight(self) -> int:
        return self._inflight

    @property
    def idle(self) -> bool:
        """Nothing in flight and nothing spooled: every record so far is acknowledged."""
        return self._inflight == 0 and self.spool.empty

    def has_room(self, nbytes: int) -> bool:
        """Would a record of about ``nbytes`` be accepted now?"""
        return not self._spooling or self.spool.has_room(nbytes + 256)

    # -- the hot path ---------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        timestamp_ms: int,
        *,
        headers: list[tuple[str, bytes]],
        recv_ns: int = 0,
    ) -> bool:
        """Accept one record (direct or spooled); ``False`` only when the spool is full."""
        record = SpoolRecord(topic, key, value, timestamp_ms, headers)
        if self._spooling:
            return self._to_spool(record)
        try:
            self._kafka.produce(
                topic,
                value,
                key,
                on_delivery=functools.partial(self._on_direct, record, recv_ns),
                timestamp=timestamp_ms,
                headers=cast(_Headers, headers),
            )
        except BufferError:
            self._start_spooling("librdkafka queue full")
            return self._to_spool(record)
        if self._inflight == 0:
            self._progress = time.monotonic()
        self._inflight += 1
        if self._inflight > self.tuning.max_inflight:
            self._start_spooling(f"{self._inflight} records unacknowledged")
        self._since_poll += 1
        if self._since_poll >= self.tuning.poll_every:
            self._since_poll = 0
            self._kafka.poll(0)
        return True

    def _to_spool(self, record: SpoolRecord) -> bool:
        if not self.spool.append(record):
            self.stats.spool_dropped += 1
            return False
        self.stats.spooled += 1
        key = (record.topic, record.key)
        if record.timestamp_ms > self.durable.get(key, -1):
            self.durable[key] = record.timestamp_ms
        return True

    def _start_spooling(self, why: str) -> None:
        if not self._spooling:
            self._spooling = True
            self.stats.spool_episodes += 1
            log.warning("broker unavailable (%s): spooling to %s", why, self.spool.directory)

    # -- delivery reports (run inside poll(), on the event-loop thread) -------------------------

    def _on_direct(
        self, record: SpoolRecord, recv_ns: int, err: KafkaError | None, _msg: Message
    ) -> None:
        self._inflight -= 1
        now = time.time_ns()
        self._progress = time.monotonic()
        self._reported = True
        if err is not None:
            self._on_failure(err, record)
            return
        self.stats.delivered += 1
        self._brokers_down = False
        key = (record.topic, record.key)
        if record.timestamp_ms > self.durable.get(key, -1):
            self.durable[key] = record.timestamp_ms
        self.latency_ms.append(now / 1e6 - record.timestamp_ms)
        if recv_ns:
            self.recv_latency_ms.append((now - recv_ns) / 1e6)

    def _on_replayed(self, record: SpoolRecord, err: KafkaError | None, _msg: Message) -> None:
        self._inflight -= 1
        self._progress = time.monotonic()
        self._reported = True
        if err is not None:
            if err.code() not in _PURGED:  # purged replays stay in the journal (not committed)
                self._on_failure(err, record)
            return
        self.stats.delivered += 1
        self.stats.replayed += 1
        self._brokers_down = False

    def _on_failure(self, err: KafkaError, record: SpoolRecord) -> None:
        if err.code() in _PURGED:
            self._purged.append(record)
            return
        self.stats.failed += 1
        if err.fatal():
            self._fatal = err
        if self.stats.failed == 1 or self.stats.failed % 1000 == 0:
            log.error(
                "delivery failed (%d so far): %s",
                self.stats.failed,
                err,
                extra={"topic": record.topic},
            )

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._brokers_down = True
            self._start_spooling("all brokers down")
        elif err.fatal():
            self._fatal = err
        else:
            log.info("broker client: %s", err)

    # -- the pump: polls librdkafka, notices stalls, drains the spool ---------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll, watch for stalls and drain the spool until ``stop`` is set."""
        while not stop.is_set():
            self.step()
            await asyncio.sleep(self.tuning.pump_interval_s)

    def step(self) -> None:
        """One pump round (also called by tests and benchmarks)."""
        self._kafka.poll(0)
        if self._fatal is not None:
            raise TerminalError(f"fatal Kafka producer error: {self._fatal}")
        now = time.monotonic()
        stall_s = self.tuning.stall_s if self._reported else self.tuning.first_stall_s
        if self._inflight and now - self._progress > stall_s:
            self._start_spooling(f"no delivery report for {now - self._progress:.1f} s")
        if self._spooling and not self._closing:
            self._drain()
        self.spool.maybe_sync()
        self.stats.spool_bytes = self.spool.bytes
        self.stats.inflight = self._inflight

    def _drain(self) -> None:
        if self._inflight:
            return  # direct records or the last batch are still unacknowledged
        if self._batch_out:
            self._batch_out = False
            self.spool.commit()
        if self.spool.empty:
            self._spooling = False
            log.info("spool drained: publishing directly again")
            return
        size = 1 if self._brokers_down else self.tuning.drain_batch  # a probe while down
        batch = self.spool.read_batch(max_records=size)
        for record in batch:
            while True:
                try:
                    self._kafka.produce(
                        record.topic,
                        record.value,
                        record.key,
                        on_delivery=functools.partial(self._on_replayed, record),
                        timestamp=record.timestamp_ms,
                        headers=cast(_Headers, record.headers),
                    )
                    break
                except BufferError:
                    self._kafka.poll(0.005)
            self._inflight += 1
        self._progress = time.monotonic()
        self._batch_out = bool(batch)

    # -- shutdown -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Wait for acknowledgements (bounded), save what is left to the spool, close it."""
        self._closing = True
        deadline = time.monotonic() + self.tuning.flush_timeout_s
        while self._inflight and time.monotonic() < deadline:
            self._kafka.poll(0)
            await asyncio.sleep(0.01)
        if self._batch_out and not self._inflight:
            self.spool.commit()
            self._batch_out = False
        if self._inflight:
            log.warning("%d records unacknowledged at shutdown: kept in the spool", self._inflight)
            self._kafka.purge()
            deadline = time.monotonic() + 2.0
            while self._inflight and time.monotonic() < deadline:
                self._kafka.poll(0.05)  # serves the purge reports: records land in _purged
        self.spool.prepend(self._purged)
        self.stats.spooled += len(self._purged)
        self._purged.clear()
        self.spool.close()
        if not self._inflight:  # close() flushes: only safe with nothing left to flush
            self._kafka.close()
        self.stats.spool_bytes = self.spool.bytes
        self.stats.inflight = self._inflight
