"""The WebSocket -> Kafka producer (``upbit-pipeline produce``).

Per frame: decode (to learn channel, market, exchange time and snapshot flag), check continuity
(gap events), drop repeated trades, and publish the frame's **raw bytes** to ``{prefix}.{channel}``
keyed by market, timestamped with the exchange time, with ``records.RecordHeaders`` (receive ns,
conn_id, format, snapshot flag). A frame that does not decode goes to ``{prefix}.deadletter`` with
the reason in the ``error`` header. Gap events go to ``{prefix}.gaps`` keyed by market.

Delivery guarantee: **at-least-once and in order per market from socket to broker** for every
frame received, across broker outages (``publisher.py``: disk spool, ordered replay) and
restarts (the spool is replayed first). The exceptions are explicit, never silent: frames the
exchange sent while a socket was down, frames dropped because the spool hit its bound, and frames
still in librdkafka's memory when the process is killed (SIGKILL) are each covered by a gap event
(``reconnect``/``silence``/``resubscribe``, ``spool_overflow``, ``producer_restart``). Repeated
trades ``(market, sequential_id)`` within ``dedup_window`` are published once.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

from upbit_pipeline.service import Liveness, ProducerCollector, serve_metrics
from upbit_pipeline.settings import Settings
from upbit_pipeline.streaming.continuity import CHECKPOINT_FILE, Continuity
from upbit_pipeline.streaming.dedup import TradeDedup
from upbit_pipeline.streaming.gaps import GapEvent, encode_gap
from upbit_pipeline.streaming.markets import MarketRefresher, is_all, resolve_markets
from upbit_pipeline.streaming.publisher import Publisher, PublisherTuning
from upbit_pipeline.streaming.records import H_ERROR, H_SOURCE_TOPIC, RecordHeaders
from upbit_pipeline.streaming.spool import Spool
from upbit_pipeline.streaming.topics import TopicNames
from upbit_pipeline.upbit.decode import decode_frame
from upbit_pipeline.upbit.errors import MalformedFrameError
from upbit_pipeline.upbit.models import Candle, Orderbook, Ticker, Trade
from upbit_pipeline.upbit.ws import RawFrame, UpbitWebSocket, WsConfig
from upbit_pipeline.upbit.ws.client import ConnEvent

__all__ = ["Producer", "ProducerStats", "run_producer", "ws_channels"]

log = logging.getLogger(__name__)

_WS_CHANNEL = {"candle": "candle.1m"}  # settings say "candle"; the socket needs a unit
_CHANNEL_OF = {Trade: "trade", Ticker: "ticker", Orderbook: "orderbook", Candle: "candle"}


def ws_channels(channels: tuple[str, ...]) -> list[str]:
    """Settings channel names -> WebSocket subscription types (``candle`` = 1-minute candles)."""
    return [_WS_CHANNEL.get(c, c) for c in channels]


@dataclass
class ProducerStats:
    """Counters of one producer run (a snapshot; see :meth:`Producer.stats`)."""

    frames_in: dict[str, int] = field(default_factory=dict)  # per channel, decoded frames
    frames_total: int = 0  # every frame read from the sockets
    published: int = 0  # records accepted for the channel topics (direct or spooled)
    delivered: int = 0  # broker acknowledgements (all topics)
    failed: int = 0
    deadlettered: int = 0
    deduped: int = 0
    empty: int = 0  # LIST frames with no message
    spooled: int = 0
    spool_bytes: int = 0
    spool_dropped: int = 0
    replayed: int = 0
    gaps_emitted: int = 0
    gaps_by_reason: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    inflight: int = 0
    markets: int = 0


class Producer:
    """WebSocket frames -> Kafka records; usable in-process (tests, demo) or via run_producer.

    Delivery guarantee: see the module docstring.
    """

    publisher_class: type[Publisher] = Publisher  # a subclass may observe acknowledgements

    def __init__(
        self,
        settings: Settings,
        *,
        ws_config: WsConfig | None = None,
        tuning: PublisherTuning | None = None,
    ) -> None:
        self.settings = settings
        cfg = settings.producer
        self.process_id = secrets.token_hex(4)  # conn_id prefix: unique across restarts
        self.ws_config = replace(ws_config or WsConfig(), conn_prefix=self.process_id)
        self.topics = TopicNames.of(settings.broker)
        self.spool = Spool(cfg.spool_dir, cfg.spool_max_bytes)
        self.continuity = Continuity(cfg.spool_dir / CHECKPOINT_FILE)
        self.dedup = TradeDedup(cfg.dedup_window)
        self.tuning = tuning
        self.publisher: Publisher | None = None
        self.ws: UpbitWebSocket | None = None
        self._stats = ProducerStats()
        self._channel_topic = {c: self.topics.channel(c) for c in ("trade", "ticker", "orderbook")}
        self._channel_topic["candle"] = self.topics.channel("candle")
        self._topic_channel = {t: c for c, t in self._channel_topic.items()}
        self.started = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------------

    def open(self) -> Publisher:
        """Open the spool and checkpoint and create the publisher (``run`` does this first;
        benchmarks call it to drive :meth:`handle` with recorded frames)."""
        self.spool.open()
        restarted = self.continuity.load()
        if restarted:
            log.info("%d streams checkpointed by the previous run", restarted)
        self.publisher = self.publisher_class(
            self.settings.broker, self.settings.producer, self.spool, tuning=self.tuning
        )
        return self.publisher

    async def run(self, stop: asyncio.Event, liveness: Liveness | None = None) -> ProducerStats:
        """Run until ``stop`` is set; then flush (bounded), persist spool and checkpoint.

        ``liveness`` (ops, issue 8): READY once the sockets are being read, then WATCHDOG and
        STATUS from the supervisor loop below, so a blocked event loop stops the pings.
        """
        live = liveness or Liveness.disabled()
        cfg = self.settings.producer
        publisher = self.open()
        codes = await resolve_markets(self.settings.upbit, cfg.markets)
        self._stats.markets = len(codes)
        log.info(
            "producer %s: %d markets, channels %s",
            self.process_id,
            len(codes),
            ",".join(cfg.channels),
        )
        ws = self.ws = UpbitWebSocket(
            self.settings.upbit.websocket_url,
            ws_channels(cfg.channels),
            codes,
            fmt=self.settings.upbit.ws_format,
            config=self.ws_config,
            on_event=self._on_conn_event,
        )
        inner_stop = asyncio.Event()
        tasks = [
            asyncio.create_task(self._consume(ws), name="producer-consume"),
            asyncio.create_task(publisher.run(inner_stop), name="producer-pump"),
            asyncio.create_task(self._checkpoints(inner_stop), name="producer-checkpoint"),
        ]
        if is_all(cfg.markets):
            refresher = MarketRefresher.for_upbit(
                self.settings.upbit, ws.update_codes, codes, cfg.market_refresh_s
            )
            tasks.append(asyncio.create_task(refresher.run(inner_stop), name="producer-markets"))
        if cfg.backfill:
            backfill = self._backfill_task(inner_stop)
            if backfill is not None:
                tasks.append(backfill)
        self.started.set()
        live.ready(f"streaming {len(codes)} markets")  # ops: systemd Type=notify
        stopper = asyncio.create_task(stop.wait())
        try:
            # ops: the supervisor loop wakes every liveness.interval_s to ping the watchdog.
            while True:
                done, _ = await asyncio.wait(
                    [stopper, *tasks], timeout=live.interval_s, return_when=asyncio.FIRST_COMPLETED
                )
                if done:
                    break
                live.ping(self._status_line)
        finally:
            live.stopping("flushing")
            inner_stop.set()
            stopper.cancel()
            failure = await self._shutdown(ws, tasks)
        if failure is not None:
            raise failure
        return self.stats()

    async def _shutdown(
        self, ws: UpbitWebSocket, tasks: list[asyncio.Task[None]]
    ) -> BaseException | None:
        await ws.aclose()
        failure: BaseException | None = None
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                failure = failure or task.exception()
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert self.publisher is not None
        await self.publisher.close()
        self._save_checkpoint()
        log.info("producer %s stopped: %s", self.process_id, self.stats())
        return failure

    def _backfill_task(self, stop: asyncio.Event) -> asyncio.Task[None] | None:
        """The backfill worker runs in-process when configured (imported lazily)."""
        try:
            module = importlib.import_module("upbit_pipeline.streaming.backfill")
        except ModuleNotFoundError:
            log.warning("backfill enabled but upbit_pipeline.streaming.backfill is not installed")
            return None
        # The worker itself, not run_backfill: that is the standalone service (sd_notify, metrics).
        worker = cast(Callable[..., Any], module.BackfillWorker)(self.settings)
        run_worker = cast(Callable[[asyncio.Event], Awaitable[object]], worker.run)

        async def backfill() -> None:
            await run_worker(stop)

        return asyncio.create_task(backfill(), name="producer-backfill")

    async def _checkpoints(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            self._save_checkpoint()

    def _save_checkpoint(self) -> None:
        if self.publisher is None:
            return
        durable: dict[tuple[str, str], int] = {}
        for (topic, key), ms in list(self.publisher.durable.items()):
            channel = self._topic_channel.get(topic)
            if channel is not None and key is not None:
                durable[(key.decode(), channel)] = ms
        try:
            self.continuity.save(durable)
        except OSError:
            log.exception("cannot write the continuity checkpoint")

    # -- frames ---------------------------------------------------------------------------------

    async def _consume(self, ws: UpbitWebSocket) -> None:
        async for frame in ws.frames():
            self.handle(frame)

    def _on_conn_event(self, event: ConnEvent) -> None:
        log.warning(
            "connection interrupted (%s): %s", event.reason, event.detail,
            extra={"conn_id": event.conn_id},
        )  # fmt: skip
        self.continuity.on_conn_event(event)

    def handle(self, frame: RawFrame) -> None:
        """Publish one frame (the hot path; synchronous, never raises for bad data)."""
        stats = self._stats
        stats.frames_total += 1
        assert self.publisher is not None
        try:
            messages = decode_frame(frame.data)
        except MalformedFrameError as exc:
            self._deadletter(frame, exc.reason)
            return
        if not messages:
            stats.empty += 1
            return
        msg = messages[0]
        channel = _CHANNEL_OF.get(type(msg))
        if channel is None:  # status/error frames: the socket layer consumes them
            return
        assert isinstance(msg, Trade | Ticker | Orderbook | Candle)
        ts = msg.trade_timestamp if isinstance(msg, Trade) else msg.timestamp
        market = msg.code
        snapshot = msg.stream_type == "SNAPSHOT"
        stats.frames_in[channel] = stats.frames_in.get(channel, 0) + 1
        if not self.publisher.has_room(len(frame.data)):
            self.publisher.stats.spool_dropped += 1
            self.continuity.dropped(market, channel)
            return
        gap = self.continuity.observe(market, channel, ts, frame.conn_id, snapshot)
        if gap is not None:
            self._emit_gap(gap)
        if isinstance(msg, Trade) and not self.dedup.first_time(market, msg.sequential_id):
            stats.deduped += 1
            return
        headers = RecordHeaders(frame.received_ns, frame.conn_id, frame.fmt, snapshot).encode()
        if self.publisher.publish(
            self._channel_topic[channel],
            market.encode(),
            frame.data,
            ts,
            headers=headers,
            recv_ns=frame.received_ns,
        ):
            stats.published += 1

    def _deadletter(self, frame: RawFrame, reason: str) -> None:
        assert self.publisher is not None
        self._stats.deadlettered += 1
        headers = RecordHeaders(frame.received_ns, frame.conn_id, frame.fmt).encode()
        headers.append((H_ERROR, reason[:2000].encode("ascii", "backslashreplace")))
        channel = _guess_channel(frame.data)
        if channel is not None:
            headers.append((H_SOURCE_TOPIC, self._channel_topic[channel].encode()))
        if self._stats.deadlettered == 1 or self._stats.deadlettered % 1000 == 0:
            log.warning(
                "malformed frame dead-lettered (%d so far): %s", self._stats.deadlettered,
                reason[:200], extra={"conn_id": frame.conn_id},
            )  # fmt: skip
        self.publisher.publish(
            self.topics.deadletter,
            frame.conn_id.encode(),
            frame.data,
            frame.received_ns // 1_000_000,
            headers=headers,
        )

    def _emit_gap(self, gap: GapEvent) -> None:
        assert self.publisher is not None
        self._stats.gaps_emitted += 1
        by_reason = self._stats.gaps_by_reason
        by_reason[gap.reason] = by_reason.get(gap.reason, 0) + 1
        log.info(
            "gap %s %s [%d, %d] (%s)", gap.market, gap.channel, gap.from_ms, gap.to_ms,
            gap.reason, extra={"market": gap.market, "conn_id": gap.conn_id},
        )  # fmt: skip
        self.publisher.publish(
            self.topics.gaps,
            gap.market.encode(),
            encode_gap(gap),
            gap.detected_ns // 1_000_000,
            headers=[],
        )

    # -- stats ----------------------------------------------------------------------------------

    def last_event_ms(self) -> dict[str, int]:
        """Newest exchange time acknowledged or spooled, per channel (for /metrics)."""
        if self.publisher is None:
            return {}
        out: dict[str, int] = {}
        for (topic, _key), ms in list(self.publisher.durable.items()):
            channel = self._topic_channel.get(topic)
            if channel is not None and ms > out.get(channel, -1):
                out[channel] = ms
        return out

    def _status_line(self) -> str:
        s = self.stats()
        return (
            f"{s.frames_total} frames, {s.delivered} delivered, {s.reconnects} reconnects, "
            f"{s.gaps_emitted} gaps, spool {s.spool_bytes} B"
        )

    def stats(self) -> ProducerStats:
        """A snapshot of the counters."""
        s = replace(
            self._stats,
            frames_in=dict(self._stats.frames_in),
            gaps_by_reason=dict(self._stats.gaps_by_reason),
        )
        if self.publisher is not None:
            p = self.publisher.stats
            s.delivered, s.failed, s.spooled = p.delivered, p.failed, p.spooled
            s.spool_bytes, s.spool_dropped, s.replayed = (
                self.spool.bytes,
                p.spool_dropped,
                p.replayed,
            )
            s.inflight = self.publisher.inflight
        if self.ws is not None:
            s.reconnects = self.ws.stats().reconnects
        return s


def _guess_channel(data: bytes) -> str | None:
    """Best-effort channel of a broken frame, for the dead letter's source_topic header."""
    for marker in (b'"ty":"', b'"type":"'):
        start = data.find(marker)
        if start >= 0:
            start += len(marker)
            name = data[start : data.find(b'"', start)].decode("ascii", "replace")
            name = "candle" if name.startswith("candle.") else name
            return name if name in _WS_CHANNEL or name in ("trade", "ticker", "orderbook") else None
    return None


async def run_producer(settings: Settings, *, stop: asyncio.Event) -> ProducerStats:
    """Run the producer until ``stop`` is set; return its final counters (see :class:`Producer`).

    As a service: systemd notify/watchdog when ``$NOTIFY_SOCKET`` is set, and ``/metrics`` when
    ``producer.metrics_port`` is set.
    """
    producer = Producer(settings)
    collector = ProducerCollector(producer.stats, producer.last_event_ms)
    with serve_metrics(settings.producer.metrics_port, collector):
        return await producer.run(stop, Liveness.from_env())
