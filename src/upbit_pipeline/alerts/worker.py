"""``upbit-pipeline alert``: the Kafka consumer -> engine -> ``upbit.alerts`` + lake -> delivery.

Consumes ``upbit.trade`` and ``upbit.ticker`` in its own group (``alerts.consumer_group``) and
decides on every record as it arrives: no polling of files, no flush to wait for.

Start-up rebuilds state in seconds, so no window warms up live:

1. alerts already raised (lake ``alerts/``, else the JSONL log) are remembered: never again, and
   their cooldowns hold;
2. the market list gives Korean names and the current ``market_event`` flags (the state);
3. history is fed to the engine quietly: the lake's raw trades of the last ``warmup`` when the
   lake has them, else the last 200 REST 1-minute candles per market (one request each).

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
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

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
        self._pending: list[Alert] = []
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
        dirty = False
        self._live.ready("deciding")
        try:
            while not stop.is_set():
                self._live.ping(self._status_line)
                alerts = await self._call(self._poll_batch, consumer)
                if alerts:
                    await self._publish(alerts, producer, delivery)
                dirty = dirty or self.stats.records > 0
                now = time.monotonic()
                if dirty and now - last_commit >= _COMMIT_EVERY_S:
                    await self._commit(consumer, producer)
                    last_commit, dirty = now, False
                if now - last_markets >= _MARKETS_EVERY_S:
                    last_markets = now
                    await self._refresh_markets(producer, delivery)
        finally:
            with contextlib.suppress(UpbitPipelineError):
                await self._commit(consumer, producer, final=True)
            await self._call(consumer.close)

    def _poll_batch(self, consumer: Consumer) -> list[Alert]:
        """On the engine thread: consume up to 1,000 records, decide on each as it comes."""
        messages = consumer.consume(1000, 0.01)
        alerts: list[Alert] = []
        engine, stats = self.engine, self.stats
        latency = stats.latency_ms
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", error)
                continue
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
            consumer.store_offsets(message)
        return alerts

    async def _publish(
        self, alerts: list[Alert], producer: Producer, delivery: Delivery | None
    ) -> None:
        """Topic, lake, local sinks, then Slack (queued; never awaited)."""
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
        try:
            files = await asyncio.to_thread(write_lake_alerts, self.settings.lake.path, alerts)
            self.stats.lake_files += len(files)
        except OSError as exc:  # the topic and the JSONL log still have them
            log.error("cannot write %d alerts to the lake: %s", len(alerts), exc)

    async def _commit(self, consumer: Consumer, producer: Producer, *, final: bool = False) -> None:
        """Commit the stored offsets once every alert before them is acknowledged.

        Asynchronous while running (a synchronous commit would stall decisions for a broker
        round trip); synchronous at shutdown.
        """
        if len(producer):
            remaining = await asyncio.to_thread(producer.flush, 10.0)
            if remaining:
                raise TransientError(f"{remaining} alerts not acknowledged; offsets not committed")
        with contextlib.suppress(KafkaException):
            if final:
                await self._call(lambda: consumer.commit(asynchronous=False))
            else:
                await self._call(lambda: consumer.commit(asynchronous=True))

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
            await self._publish(alerts, producer, delivery)

    # -- warm-up ---------------------------------------------------------------------------------

    async def _warm_up(self) -> None:
        """Remember past alerts, learn names and flags, feed recent history quietly."""
        started = time.monotonic()
        now_ms = int(time.time() * 1000)
        since_ms = now_ms - int(self.warmup.total_seconds() * 1000)
        lake = self.settings.lake.path
        known: list[Alert] = []
        try:
            known = await asyncio.to_thread(read_lake_alerts, lake, now_ms - 86_400_000, now_ms)
        except (OSError, ValueError) as exc:
            log.warning("cannot read past alerts from the lake: %s", exc)
        if not known:
            known, _ = await asyncio.to_thread(read_jsonl, self.settings.alerts.jsonl_path)
        await self._call(self.engine.remember, known)
        markets: list[str] = []
        if self.warmup <= timedelta(0):  # benchmarks and tests without an Upbit to ask
            self.stats.warmup_source = "none"
            return
        try:
            async with UpbitRestClient(self.settings.upbit.url) as client:
                listing = await client.markets(details=True)
                await self._call(self.engine.on_markets, listing, now_ms)
                markets = [m.market for m in listing if m.quote == "KRW"]
                events: list[Event] = []
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


def _headers(message: Message) -> tuple[int, str]:
    recv_ns, fmt = 0, ""
    headers: Any = message.headers() or []
    for name, raw in headers:
        if not raw:
            continue
        text = raw if isinstance(raw, str) else raw.decode("ascii", "replace")
        if name == H_RECV_NS:
            recv_ns = int(text)
        elif name == H_FORMAT:
            fmt = text
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
