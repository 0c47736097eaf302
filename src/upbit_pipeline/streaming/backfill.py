"""The gap backfill worker: trade gaps from ``upbit.gaps`` repaired over REST into ``upbit.trade``.

The producer writes a :class:`~upbit_pipeline.streaming.gaps.GapEvent` whenever it cannot prove
it saw every trade (a reconnect, a silence, a restart). This worker reads those events in a
consumer group, fetches the trades of each gap from ``/v1/trades/ticks`` (see
``backfill_fetch``), and publishes every one with the ``backfill=1`` header. The live stream and
the backfill overlap on purpose (a gap's ends are trades the producer did see): the log is
at-least-once, and readers dedupe by ``(market, sequential_id)``.

Only trade gaps are repaired here: candles are rebuilt by the batch layer, tickers and orderbooks
are state that the next snapshot replaces. Other gap events are committed untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import msgspec
from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from upbit_pipeline.errors import TerminalError, TransientError
from upbit_pipeline.service import BackfillCollector, Liveness, serve_metrics
from upbit_pipeline.settings import Settings
from upbit_pipeline.streaming.backfill_fetch import (
    TRADE_PAGE_MAX,
    GapOutcome,
    GapProgress,
    backfill_gap,
    utc_day,
    wall_utc_day,
)
from upbit_pipeline.streaming.gaps import GapEvent, decode_gap
from upbit_pipeline.streaming.kafka import consumer_config, producer_config
from upbit_pipeline.streaming.topics import TopicNames
from upbit_pipeline.upbit.errors import BannedError
from upbit_pipeline.upbit.rest import UpbitRestClient

__all__ = [
    "BackfillStats",
    "BackfillWorker",
    "GapOutcome",
    "backfill_gap",
    "coalesce_gaps",
    "run_backfill",
]

log = logging.getLogger(__name__)

# One gap may take minutes (a week of KRW-BTC is ~3,000 pages at 10/s) or wait out a ban; the
# consumer must not be thrown out of its group meanwhile, or the same gap is handed out again.
_MAX_POLL_INTERVAL_MS: Final = 3_600_000
_BACKOFF_MAX_S: Final = 30.0

T = TypeVar("T")


@dataclass
class BackfillStats:
    """Counters of one worker; ``gaps_*`` count gap events (a coalesced job counts each event).

    ``truncated``: repaired except for the part older than Upbit's 7-day window.
    ``skipped``: not a trade gap, or an event that does not decode (committed untouched).
    """

    gaps_seen: int = 0
    gaps_repaired: int = 0
    gaps_truncated: int = 0
    gaps_unrecoverable: int = 0
    gaps_skipped: int = 0
    trades_published: int = 0
    rest_requests: int = 0
    retries: int = 0


def coalesce_gaps(gaps: Sequence[tuple[T, GapEvent]]) -> list[tuple[GapEvent, list[T]]]:
    """Merge overlapping gaps of one market into one gap, with the tags of the events it covers.

    Several connections dropping together report the same hole once each; fetching it once saves
    REST budget. Disjoint gaps stay apart (the time between them was seen live). Jobs come out in
    the order of their first event, so offsets tend to be committed in order.
    """
    indexed = sorted(enumerate(gaps), key=lambda item: (item[1][1].market, item[1][1].from_ms))
    jobs: list[tuple[int, GapEvent, list[T]]] = []
    for index, (tag, gap) in indexed:
        if jobs and jobs[-1][1].market == gap.market and gap.from_ms <= jobs[-1][1].to_ms:
            first, merged, tags = jobs[-1]
            merged = msgspec.structs.replace(merged, to_ms=max(merged.to_ms, gap.to_ms))
            jobs[-1] = (min(first, index), merged, [*tags, tag])
        else:
            jobs.append((index, gap, [tag]))
    jobs.sort(key=lambda job: job[0])
    return [(gap, tags) for _, gap, tags in jobs]


class _Offsets:
    """Which offsets of a batch are done, and what may be committed: a done prefix only."""

    def __init__(self, messages: Sequence[Message]) -> None:
        self._pending: dict[tuple[str, int], list[int]] = {}
        for message in messages:
            key = (str(message.topic()), int(message.partition() or 0))
            self._pending.setdefault(key, []).append(int(message.offset() or 0))
        for offsets in self._pending.values():
            offsets.sort()
        self._done: set[tuple[str, int, int]] = set()
        self._committed: dict[tuple[str, int], int] = {}

    def mark(self, message: Message) -> None:
        self._done.add(
            (str(message.topic()), int(message.partition() or 0), int(message.offset() or 0))
        )

    def ready(self) -> list[TopicPartition]:
        """Next offsets to commit: after the longest run of done messages of each partition."""
        out: list[TopicPartition] = []
        for (topic, partition), offsets in self._pending.items():
            next_offset: int | None = None
            for offset in offsets:
                if (topic, partition, offset) not in self._done:
                    break
                next_offset = offset + 1
            if next_offset is not None and next_offset > self._committed.get(
                (topic, partition), -1
            ):
                self._committed[(topic, partition)] = next_offset
                out.append(TopicPartition(topic, partition, next_offset))
        return out


def _where(message: Message) -> str:
    return f"{message.topic()}[{message.partition()}]@{message.offset()}"


class BackfillWorker:
    """Consumes ``upbit.gaps`` in group ``{prefix}-backfill`` and repairs every trade gap.

    Delivery: at-least-once into upbit.trade; exactly once after (market, sequential_id) dedup;
    gap offsets committed after the flush. A gap's offset is committed only after
    :func:`backfill_gap` flushed its records (``acks=all``, idempotent producer), so a crash or a
    stop at any point re-reads the gap and publishes it again rather than losing it. Transient REST
    and broker failures retry the same gap in place (capped backoff), never skipping past it; a
    418 ban is waited out. Unrecoverable gaps (beyond the 7-day window, a delisted market) are
    logged, counted and committed, so they cannot block the partition.

    Run it with ``await worker.run(stop)`` (the ``backfill`` command, or a task inside
    ``produce``); ``worker.stats`` is live.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client: UpbitRestClient | None = None,
        batch_size: int = 100,
        page_size: int = TRADE_PAGE_MAX,
    ) -> None:
        self.settings = settings
        self.topics = TopicNames.of(settings.broker)
        self.group_id = f"{settings.broker.topic_prefix}-backfill"
        self._stats = BackfillStats()
        self._inflight: GapProgress | None = None  # the gap being worked on, for live stats
        self._client = client
        self._batch_size = batch_size
        self._page_size = page_size
        self._skew_days = 0  # exchange's UTC day minus ours, learned from the data
        self._kafka: ThreadPoolExecutor | None = None
        self._live = Liveness.disabled()  # ops: set by run() when it is the service

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking consumer call on the worker's one Kafka thread."""
        return await asyncio.get_running_loop().run_in_executor(self._kafka, fn, *args)

    async def run(self, stop: asyncio.Event, liveness: Liveness | None = None) -> BackfillStats:
        """Repair gaps until ``stop`` is set; returns the stats. Nothing half-done is committed.

        ``liveness`` (ops): READY once subscribed; WATCHDOG from the poll loop and while a gap
        is being repaired or a ban waited out (both await on this event loop).
        """
        self._live = live = liveness or Liveness.disabled()
        broker = self.settings.broker
        # Every consumer call runs on this one thread: a librdkafka consumer is not meant to be
        # used from two threads at once, and close() must wait for a poll still in flight.
        self._kafka = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backfill-kafka")
        consumer = Consumer(
            consumer_config(
                broker, self.group_id, **{"max.poll.interval.ms": _MAX_POLL_INTERVAL_MS}
            )
        )
        producer = Producer(
            producer_config(
                broker,
                compression=self.settings.producer.compression,
                linger_ms=self.settings.producer.linger_ms,
            )
        )
        client = self._client or UpbitRestClient(self.settings.upbit.url)
        log.info(
            "backfill worker started: %s -> %s", self.topics.gaps, self.topics.channel("trade")
        )
        try:
            await self._call(consumer.subscribe, [self.topics.gaps])
            live.ready("repairing gaps")
            while not stop.is_set():
                live.ping(self._status_line)
                messages = await self._call(consumer.consume, self._batch_size, 0.2)
                if messages:
                    await self._handle_batch(consumer, producer, client, messages, stop)
        finally:
            live.stopping()
            remaining = await asyncio.to_thread(producer.flush, 10.0)
            if remaining:
                log.warning("backfill stopped with %d records unflushed (not committed)", remaining)
            await self._call(consumer.close)
            self._kafka.shutdown(wait=False)
            if self._client is None:
                await client.aclose()
            log.info("backfill worker stopped: %s", self.stats)
        return self.stats

    def _status_line(self) -> str:
        s = self.stats
        return f"{s.gaps_seen} gaps, {s.gaps_repaired} repaired, {s.trades_published} trades"

    @property
    def stats(self) -> BackfillStats:
        """A snapshot of the counters, including the requests and records of the current gap."""
        snapshot = dataclasses.replace(self._stats)
        if self._inflight is not None:
            snapshot.rest_requests += self._inflight.requests
            snapshot.trades_published += self._inflight.published
        return snapshot

    async def _handle_batch(
        self,
        consumer: Consumer,
        producer: Producer,
        client: UpbitRestClient,
        messages: list[Message],
        stop: asyncio.Event,
    ) -> None:
        messages = [m for m in messages if not self._is_error(m)]
        offsets = _Offsets(messages)
        trade_gaps: list[tuple[Message, GapEvent]] = []
        for message in messages:
            self._stats.gaps_seen += 1
            try:
                gap = decode_gap(message.value() or b"")
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.error("gap event at %s does not decode (%s): skipped", _where(message), exc)
                self._stats.gaps_skipped += 1
                offsets.mark(message)
                continue
            if gap.channel != "trade":
                self._stats.gaps_skipped += 1
                offsets.mark(message)
                continue
            trade_gaps.append((message, gap))
        await self._commit(consumer, offsets)
        for gap, members in coalesce_gaps(trade_gaps):
            outcome = await self._repair(gap, client, producer, stop)
            if outcome is None:
                return  # stopped: nothing more is committed, the rest is read again next time
            self._account(gap, members, outcome)
            for message in members:
                offsets.mark(message)
            await self._commit(consumer, offsets)

    def _is_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        log.warning("consumer error on %s: %s", self.topics.gaps, error)
        return True

    async def _commit(self, consumer: Consumer, offsets: _Offsets) -> None:
        ready = offsets.ready()
        if not ready:
            return
        try:
            await self._call(lambda: consumer.commit(offsets=ready, asynchronous=False))
        except KafkaException as exc:  # e.g. a rebalance took the partition: it will be redone
            log.warning("gap offsets not committed (%s): those gaps will be repaired again", exc)

    def _account(self, gap: GapEvent, members: list[Message], outcome: GapOutcome) -> None:
        n = len(members)
        where = ",".join(_where(m) for m in members)
        extra = {"market": gap.market}
        if outcome.status == "repaired":
            self._stats.gaps_repaired += n
            log.info(
                "trade gap repaired %s %d..%d: %d trades, %d requests (%s)",
                gap.market, gap.from_ms, gap.to_ms, outcome.trades_published,
                outcome.rest_requests, where, extra=extra,
            )  # fmt: skip
        elif outcome.status == "truncated":
            self._stats.gaps_truncated += n
            log.warning(
                "trade gap partly repaired %s %d..%d: %d trades; %s (%s)",
                gap.market, gap.from_ms, gap.to_ms, outcome.trades_published, outcome.detail,
                where, extra=extra,
            )  # fmt: skip
        else:
            self._stats.gaps_unrecoverable += n
            log.error(
                "trade gap unrecoverable %s %d..%d: %s (%s)",
                gap.market, gap.from_ms, gap.to_ms, outcome.detail, where, extra=extra,
            )  # fmt: skip

    async def _repair(
        self,
        gap: GapEvent,
        client: UpbitRestClient,
        producer: Producer,
        stop: asyncio.Event,
    ) -> GapOutcome | None:
        """Run :func:`backfill_gap` until it finishes (retrying in place) or ``stop`` is set."""
        attempt = 0
        extra = {"market": gap.market}
        while not stop.is_set():
            progress = self._inflight = GapProgress()
            today = max(wall_utc_day() + self._skew_days, utc_day(gap.to_ms))
            try:
                outcome = await _until_stopped(
                    backfill_gap(
                        gap,
                        client=client,
                        producer=producer,
                        topic=self.topics.channel("trade"),
                        today=today,
                        page_size=self._page_size,
                        progress=progress,
                    ),
                    stop,
                    self._live,
                )
                if outcome is not None:
                    self._skew_days = outcome.today - wall_utc_day()
                return outcome
            except BannedError as exc:
                delay = max(1.0, exc.until_s - time.monotonic())
                log.error("REST banned; backfill waits %.0f s", delay, extra=extra)
            except (TransientError, KafkaException) as exc:
                delay = random.uniform(0.5, min(_BACKOFF_MAX_S, 0.5 * 2**attempt))
                log.warning("backfill retry in %.1f s: %s", delay, exc, extra=extra)
            except TerminalError as exc:  # e.g. a REST body that does not decode
                log.exception("backfill gave up on a gap", extra=extra)
                await asyncio.to_thread(producer.flush, 10.0)  # what it did publish, best effort
                return GapOutcome(
                    "unrecoverable", progress.published, progress.requests, today, str(exc)
                )
            finally:
                self._inflight = None
                self._stats.rest_requests += progress.requests
                self._stats.trades_published += progress.published
            attempt += 1
            self._stats.retries += 1
            await _sleep_unless(stop, delay, self._live)
        return None


async def _until_stopped(
    work: Awaitable[T], stop: asyncio.Event, live: Liveness | None = None
) -> T | None:
    """``await work``, or cancel it and return None as soon as ``stop`` is set.

    Cancelling this coroutine cancels ``work`` too (and still raises CancelledError). ``live``
    is pinged while waiting (ops): a long gap is work, not a hang.
    """
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    every = live.interval_s if live is not None else None
    try:
        while True:
            done, _ = await asyncio.wait(
                {task, waiter}, timeout=every, return_when=asyncio.FIRST_COMPLETED
            )
            if done:
                break
            if live is not None:
                live.ping()
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})  # let it unwind; never raises its CancelledError here
    if task.cancelled():
        return None
    return task.result()


async def _sleep_unless(stop: asyncio.Event, seconds: float, live: Liveness | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        step = min(left, live.interval_s or left) if live is not None else left
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=step)
        if live is not None:
            live.ping()


async def run_backfill(
    settings: Settings, *, stop: asyncio.Event, metrics_port: int | None = None
) -> BackfillStats:
    """The ``backfill`` command: one :class:`BackfillWorker` until ``stop`` is set.

    As a service: systemd notify/watchdog when ``$NOTIFY_SOCKET`` is set, and ``/metrics`` on
    ``metrics_port`` (its own: it runs on the producer VM beside ``produce``, whose port is
    ``producer.metrics_port``).
    """
    worker = BackfillWorker(settings)
    with serve_metrics(metrics_port, BackfillCollector(lambda: worker.stats)):
        return await worker.run(stop, Liveness.from_env())
