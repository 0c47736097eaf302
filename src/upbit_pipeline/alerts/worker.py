"""``upbit-pipeline alert``: the Kafka consumer -> engine -> ``upbit.alerts`` + lake -> delivery.

Consumes ``upbit.trade`` and ``upbit.ticker`` in its own group (``alerts.consumer_group``) and
decides on every record as it arrives: no polling of files, no flush to wait for.

Tick-to-decision latency (goal p99 <= 250 ms; docs/alerts.md has the numbers): the engine thread
takes whatever librdkafka has fetched at once and blocks only until the first record arrives
(never for a batch to fill); alerts go to the topic, the log and the Slack queue without waiting,
the lake file and the offset commit are written in the background; and after the warm-up every
live object is frozen out of the garbage collector (``gc.freeze``), whose full collections had
stalled the engine thread for 100-700 ms.

Start-up rebuilds state in seconds, so no window warms up live:

1. the market list gives Korean names and the current ``market_event`` flags (the state);
2. history is fetched: the lake's raw trades of the last ``warmup`` when the lake has them, else
   the last 200 REST 1-minute candles per market (one request each);
3. alerts already raised (the lake's ``alerts/`` of the last day and the JSONL alert log) are
   remembered: never again, and their cooldowns hold;
4. the history is fed to the engine quietly.

A new group starts at the live edge (``auto.offset.reset=latest``): the past comes from the
warm-up, not from a week of retained records. Records older than the warm-up are late for the
engine and ignored, so a restart that re-reads uncommitted records double-counts nothing.

Delivery: at-least-once to ``upbit.alerts`` and the lake (offsets are committed only after the
alerts of the records before them are flushed to the topic and written to the lake); the same
event always has the same alert id, so consumers dedupe by id. Slack: see :mod:`delivery`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from upbit_pipeline.alerts.backtest import feed
from upbit_pipeline.alerts.config import load_rules
from upbit_pipeline.alerts.delivery import Delivery, DeliveryStats
from upbit_pipeline.alerts.engine import AlertEngine, EngineStats
from upbit_pipeline.alerts.feeds import Event, candle_events, lake_trade_events
from upbit_pipeline.alerts.model import Alert, DeliveryMark, encode_alert
from upbit_pipeline.alerts.sinks import (
    ConsoleSink,
    JsonlSink,
    SlackSink,
    read_jsonl,
    read_lake_alerts,
    write_lake_alerts,
)
from upbit_pipeline.errors import TransientError, UpbitPipelineError
from upbit_pipeline.service import AlertCollector, Liveness, serve_metrics
from upbit_pipeline.settings import Settings
from upbit_pipeline.streaming.kafka import consumer_config, producer_config
from upbit_pipeline.streaming.records import FORMAT_REST, H_FORMAT, H_RECV_NS
from upbit_pipeline.streaming.topics import TopicNames
from upbit_pipeline.upbit.decode import decode_frame, decode_trades_rest
from upbit_pipeline.upbit.errors import MalformedFrameError
from upbit_pipeline.upbit.models import Ticker, Trade
from upbit_pipeline.upbit.rest import UpbitRestClient

__all__ = ["AlertWorker", "WorkerStats", "run_alert_worker"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_COMMIT_EVERY_S = 5.0
_MARKETS_EVERY_S = 300.0
_LATENCY_SAMPLES = 200_000
_BATCH = 1000  # records decided per hop to the engine thread, at most
_POLL_WAIT_S = 0.1  # longest wait for a first record
_SLICE_S = 0.1  # longest stay on the engine thread per hop (bounds how late ``stop`` is seen)


@dataclass
class WorkerStats:
    """Live counters; ``latency_ms`` are tick-to-decision samples (receive -> decided)."""

    records: int = 0
    decode_errors: int = 0
    alerts: int = 0
    lake_files: int = 0
    warmup_s: float = 0.0
    warmup_events: int = 0
    warmup_source: str = ""
    assigned: bool = False
    engine: EngineStats = field(default_factory=EngineStats)
    delivery: DeliveryStats = field(default_factory=DeliveryStats)
    latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_LATENCY_SAMPLES))
    alert_latency_ms: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        """Tick-to-decision latency percentile (ms) over the recent samples; 0 with none."""
        data = sorted(self.latency_ms)
        return data[min(len(data) - 1, int(q * len(data)))] if data else 0.0


class AlertWorker:
    """One alert worker. ``await worker.run(stop)``; ``worker.stats`` is live."""

    def __init__(
        self,
        settings: Settings,
        *,
        warmup: timedelta = timedelta(hours=3),
        delivery_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.topics = TopicNames.of(settings.broker)
        self.engine = AlertEngine(load_rules(settings.alerts.rules_file))
        self.stats = WorkerStats(engine=self.engine.stats)
        self.warmup = warmup
        self._delivery_options = delivery_options or {}
        # The engine and the consumer live on this one thread; the event loop stays free for
        # delivery, so a slow Slack never delays a decision.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-engine")
        self._lake_writes: list[asyncio.Task[None]] = []
        # Next offset per (topic, partition) of the records decided so far (engine thread).
        self._offsets: dict[tuple[str, int], int] = {}
        self._console = ConsoleSink() if settings.alerts.console else None
        self._jsonl: JsonlSink | None = None
        self._live = Liveness.disabled()  # ops: set by run() when it is the service

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- run -----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, liveness: Liveness | None = None) -> WorkerStats:
        """Warm up, then decide on every record until ``stop`` is set.

        ``liveness`` (ops): READY after the warm-up and the subscription, then WATCHDOG and
        STATUS from the consume loop, so a stuck engine thread stops the pings.
        """
        self._live = liveness or Liveness.disabled()
        alerts_cfg = self.settings.alerts
        self._jsonl = JsonlSink(alerts_cfg.jsonl_path)
        webhook = alerts_cfg.slack_webhook
        try:
            async with contextlib.AsyncExitStack() as stack:
                delivery: Delivery | None = None
                delivery_task: asyncio.Task[DeliveryStats] | None = None
                delivery_stop = asyncio.Event()
                if webhook is not None:
                    slack = await stack.enter_async_context(SlackSink(webhook.get_secret_value()))
                    options = {"max_attempts": alerts_cfg.slack_max_attempts}
                    options.update(self._delivery_options)
                    delivery = Delivery(slack.send, self._mark, **options)
                    self.stats.delivery = delivery.stats
                    delivery_task = asyncio.create_task(delivery.run(delivery_stop))
                try:
                    await self._warm_up()
                    _settle_gc()
                    await self._consume(stop, delivery)
                finally:
                    delivery_stop.set()
                    if delivery_task is not None:
                        await delivery_task
        finally:
            self._live.stopping()
            self._jsonl.close()
            self._pool.shutdown(wait=False)
        log.info(
            "alert worker stopped: %d records, %d alerts", self.stats.records, self.stats.alerts
        )
        return self.stats

    def _status_line(self) -> str:
        s = self.stats
        return (
            f"{s.records} records, {s.alerts} alerts, {s.delivery.delivered} delivered, "
            f"{s.delivery.undelivered} undelivered"
        )

    def _mark(self, mark: DeliveryMark) -> None:
        if self._jsonl is not None:
            self._jsonl.mark(mark)

    async def _consume(self, stop: asyncio.Event, delivery: Delivery | None) -> None:
        broker = self.settings.broker
        consumer = Consumer(
            consumer_config(
                broker, self.settings.alerts.consumer_group, **{"auto.offset.reset": "latest"}
            )
        )
        producer = Producer(producer_config(broker, linger_ms=0))
        topics = [self.topics.channel("trade"), self.topics.channel("ticker")]

        def on_assign(_consumer: Consumer, partitions: list[Any]) -> None:
            self.stats.assigned = True
            log.info("alert worker assigned %d partitions of %s", len(partitions), topics)

        await self._call(lambda: consumer.subscribe(topics, on_assign=on_assign))
        last_commit = last_markets = time.monotonic()
        committing: asyncio.Task[None] | None = None
        self._live.ready("deciding")
        try:
            while not stop.is_set():
                self._live.ping(self._status_line)
                alerts = await self._call(self._poll_batch, consumer)
                if alerts:
                    self._publish(alerts, producer, delivery)
                now = time.monotonic()
                if committing is not None and committing.done():
                    committing.result()  # a failed commit or lake write fails the worker
                    committing = None
                if now - last_commit >= _COMMIT_EVERY_S and committing is None:
                    # In the background: deciding goes on while the lake and the topic catch up.
                    # The commit point is taken here, while the engine thread is idle.
                    point = self._commit_point()
                    committing = asyncio.create_task(self._commit(consumer, producer, point))
                    last_commit = now
                if now - last_markets >= _MARKETS_EVERY_S:
                    last_markets = now
                    await self._refresh_markets(producer, delivery)
        finally:
            if committing is not None:
                with contextlib.suppress(UpbitPipelineError):
                    await committing
            with contextlib.suppress(UpbitPipelineError):
                await self._commit(consumer, producer, self._commit_point(), final=True)
            await self._call(consumer.close)

    def _poll_batch(self, consumer: Consumer) -> list[Alert]:
        """On the engine thread: decide on records for up to ``_SLICE_S``; return at once with
        the first alerts found (so they are published without delay).

        One hop to this thread per slice, not per batch: at 20k records/s a hop per batch was
        hundreds of thread switches a second, each a chance for a busy machine to stall the
        engine.
        """
        end = time.monotonic() + _SLICE_S
        while True:
            alerts = self._decide(consumer, max(0.0, min(_POLL_WAIT_S, end - time.monotonic())))
            if alerts or time.monotonic() >= end:
                return alerts

    def _decide(self, consumer: Consumer, wait_s: float) -> list[Alert]:
        """Take the records already fetched and decide on each as it comes.

        Never waits for a batch to fill: what librdkafka has already fetched is taken at once
        (up to ``_BATCH``); only when nothing is there does it block, and then only until the
        first record arrives (at most ``wait_s``). (``consume(n, timeout)`` alone waits for
        ``n`` records or the whole timeout, which put up to its timeout on every decision.)
        """
        messages = consumer.consume(_BATCH, 0)
        if not messages:
            first = consumer.poll(wait_s)
            if first is None:
                return []
            messages = [first, *consumer.consume(_BATCH - 1, 0)]
        alerts: list[Alert] = []
        engine, stats = self.engine, self.stats
        latency = stats.latency_ms
        offsets = self._offsets
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", error)
                continue
            offsets[message.topic() or "", message.partition() or 0] = (message.offset() or 0) + 1
            stats.records += 1
            value = message.value() or b""
            recv_ns, fmt = _headers(message)
            try:
                if fmt == FORMAT_REST:
                    msgs: list[Any] = decode_trades_rest(b"[" + value + b"]")
                else:
                    msgs = decode_frame(value)
            except MalformedFrameError:
                stats.decode_errors += 1
                continue
            for msg in msgs:
                if isinstance(msg, Trade):
                    found = engine.on_trade(
                        msg.code, msg.trade_timestamp, msg.trade_price, msg.trade_volume
                    )
                elif isinstance(msg, Ticker):
                    found = engine.on_ticker(msg.code, msg.timestamp, msg.market_warning)
                else:
                    continue
                if recv_ns:
                    decided_ms = (time.time_ns() - recv_ns) / 1e6
                    latency.append(decided_ms)
                    if found:
                        stats.alert_latency_ms.extend(decided_ms for _ in found)
                if found:
                    alerts.extend(found)
        return alerts

    def _publish(self, alerts: list[Alert], producer: Producer, delivery: Delivery | None) -> None:
        """Topic, local sinks and Slack (queued) now; the lake in the background.

        Nothing here waits: the next records are decided while the lake file is written (the
        first write also imports pyarrow, which took longer than the whole latency budget).
        ``_commit`` waits for these writes before it commits offsets.
        """
        topic = self.topics.alerts
        for alert in alerts:
            producer.produce(
                topic, key=alert.market, value=encode_alert(alert), timestamp=alert.event_ms
            )
        producer.poll(0)
        self.stats.alerts += len(alerts)
        for alert in alerts:
            if self._console is not None:
                self._console.write(alert)
            if self._jsonl is not None:
                self._jsonl.write(alert)
            if delivery is not None:
                delivery.submit(alert)
        self._lake_writes.append(asyncio.create_task(self._write_lake(alerts)))

    async def _write_lake(self, alerts: list[Alert]) -> None:
        try:
            files = await asyncio.to_thread(write_lake_alerts, self.settings.lake.path, alerts)
            self.stats.lake_files += len(files)
        except OSError as exc:  # the topic and the JSONL log still have them
            log.error("cannot write %d alerts to the lake: %s", len(alerts), exc)

    def _commit_point(self) -> tuple[list[TopicPartition], list[asyncio.Task[None]]]:
        """(offsets decided so far, the lake writes of their alerts). Call only on the event loop
        while no ``_poll_batch`` runs: every alert of the records below these offsets has then
        been produced and its lake write started."""
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._offsets.items()]
        writes, self._lake_writes = self._lake_writes, []
        return offsets, writes

    async def _commit(
        self,
        consumer: Consumer,
        producer: Producer,
        point: tuple[list[TopicPartition], list[asyncio.Task[None]]],
        *,
        final: bool = False,
    ) -> None:
        """Commit a commit point once its alerts are acknowledged by the topic and in the lake.

        Waiting for those lake writes and flushing the producer makes the commit safe while the
        engine goes on deciding (at-least-once). Asynchronous while running, synchronous at
        shutdown.
        """
        offsets, writes = point
        if writes:
            await asyncio.gather(*writes)
        if not offsets:
            return
        if len(producer):
            remaining = await asyncio.to_thread(producer.flush, 10.0)
            if remaining:
                if final:
                    raise TransientError(
                        f"{remaining} alerts not acknowledged; offsets not committed"
                    )
                log.warning("%d alerts not acknowledged yet; commit postponed", remaining)
                return
        with contextlib.suppress(KafkaException):
            if final:
                await self._call(lambda: consumer.commit(offsets=offsets, asynchronous=False))
            else:
                await self._call(lambda: consumer.commit(offsets=offsets, asynchronous=True))

    async def _refresh_markets(self, producer: Producer, delivery: Delivery | None) -> None:
        try:
            async with UpbitRestClient(self.settings.upbit.url) as client:
                markets = await client.markets(details=True)
        except (UpbitPipelineError, OSError) as exc:
            log.warning("market list refresh failed: %s", exc)
            return
        now_ms = int(time.time() * 1000)
        alerts = await self._call(self.engine.on_markets, markets, now_ms)
        if alerts:
            self._publish(alerts, producer, delivery)

    # -- warm-up ---------------------------------------------------------------------------------

    async def _warm_up(self) -> None:
        """Learn names and flags, remember past alerts, feed recent history quietly."""
        started = time.monotonic()
        now_ms = int(time.time() * 1000)
        since_ms = now_ms - int(self.warmup.total_seconds() * 1000)
        lake = self.settings.lake.path
        markets: list[str] = []
        events: list[Event] = []
        source = "none"
        if self.warmup > timedelta(0):  # zero: benchmarks and tests without an Upbit to ask
            try:
                async with UpbitRestClient(self.settings.upbit.url) as client:
                    listing = await client.markets(details=True)
                    await self._call(self.engine.on_markets, listing, now_ms)
                    markets = [m.market for m in listing if m.quote == "KRW"]
                    source = "lake"
                    with contextlib.suppress(OSError, ValueError):
                        events = await asyncio.to_thread(lake_trade_events, lake, since_ms, now_ms)
                    have = {e.market for e in events}
                    missing = [m for m in markets if m not in have]
                    if missing:
                        source = "REST candles" if not have else "lake + REST candles"
                        events.extend(await self._rest_history(client, missing))
                        events.sort(key=lambda e: (e.ts_ms, e.sid))
            except (UpbitPipelineError, OSError) as exc:
                log.warning("warm-up from REST failed (%s); rules warm up live", exc)
                events, source = [], "none"
        known = await self._known_alerts(now_ms, events[-1].ts_ms if events else now_ms)
        await self._call(self.engine.remember, known)
        await self._call(feed, self.engine, events, 1 << 62)
        self.stats.warmup_events = len(events)
        self.stats.warmup_source = source
        self.stats.warmup_s = time.monotonic() - started
        log.info(
            "alert state warmed from %s: %d events, %d markets, %d known alerts in %.1f s",
            source,
            len(events),
            len(markets),
            len(known),
            self.stats.warmup_s,
        )

    async def _known_alerts(self, now_ms: int, newest_ms: int) -> list[Alert]:
        """Alerts already raised: the lake's of the last day, plus the JSONL alert log.

        Both, not one or the other: the JSONL line is written when the alert is decided, the lake
        file a moment later, so after a SIGKILL the newest alerts may be only in the log. The day
        ends at the later of the wall clock and the newest history event (a replayed or
        simulated exchange may run in the past).
        """
        end_ms = max(now_ms, newest_ms) + 60_000
        start_ms = min(now_ms, newest_ms) - 86_400_000
        known: dict[str, Alert] = {}
        try:
            lake = await asyncio.to_thread(
                read_lake_alerts, self.settings.lake.path, start_ms, end_ms
            )
            known.update((a.id, a) for a in lake)
        except (OSError, ValueError) as exc:
            log.warning("cannot read past alerts from the lake: %s", exc)
        logged, _ = await asyncio.to_thread(read_jsonl, self.settings.alerts.jsonl_path)
        for alert in logged:
            known.setdefault(alert.id, alert)
        return sorted(known.values(), key=lambda a: (a.event_ms, a.id))

    async def _rest_history(self, client: UpbitRestClient, markets: list[str]) -> list[Event]:
        """The last 200 one-minute candles per market, the still-forming minute excluded."""

        async def one(market: str) -> list[Event]:
            try:
                candles = await client.candles(market, "1m", count=200)
            except UpbitPipelineError as exc:
                log.warning("no warm-up candles for %s: %s", market, exc)
                return []
            # Newest first; the first one is the still-forming minute: leave it to the stream.
            return list(candle_events(candles[1:]))

        chunks = await asyncio.gather(*(one(m) for m in markets))
        return [event for chunk in chunks for event in chunk]


def _settle_gc() -> None:
    """Collect the start-up garbage, then take every surviving object out of the collector's view.

    The imports, the warm-up's state and the engine's rings are never garbage, yet every
    full (generation 2) collection walked all of them on the engine thread: 100-700 ms stalls of
    every decision, measured on 2 shared cores, the largest part of the tick-to-decision p99.
    After ``gc.freeze()`` a full collection walks only objects made since.
    """
    gc.collect()
    gc.freeze()


def _headers(message: Message) -> tuple[int, str]:
    """(``recv_ns``, ``format``) of a record; only those two are decoded (hot path)."""
    recv_ns, fmt = 0, ""
    headers: Any = message.headers() or ()
    for name, raw in headers:
        if not raw:
            continue
        if name == H_RECV_NS:
            with contextlib.suppress(ValueError):
                recv_ns = int(raw)  # int() reads ASCII digits from bytes or str
        elif name == H_FORMAT:
            fmt = raw if isinstance(raw, str) else raw.decode("ascii", "replace")
    return recv_ns, fmt


async def run_alert_worker(settings: Settings, *, stop: asyncio.Event) -> WorkerStats:
    """The ``alert`` command: one :class:`AlertWorker` until ``stop`` is set.

    As a service: systemd notify/watchdog when ``$NOTIFY_SOCKET`` is set, and ``/metrics`` when
    ``alerts.metrics_port`` is set.
    """
    worker = AlertWorker(settings)
    with serve_metrics(settings.alerts.metrics_port, AlertCollector(lambda: worker.stats)):
        return await worker.run(stop, Liveness.from_env())


def jsonl_status(path: Path) -> dict[str, int]:
    """For ``status``: alerts in the log and how many are delivered / undelivered / pending."""
    alerts, marks = read_jsonl(path)
    delivered = sum(1 for m in marks.values() if m.status == "delivered")
    undelivered = sum(1 for m in marks.values() if m.status == "undelivered")
    return {
        "alerts": len(alerts),
        "delivered": delivered,
        "undelivered": undelivered,
        "unmarked": max(0, len(alerts) - delivered - undelivered),
    }


__all__ += ["jsonl_status"]
