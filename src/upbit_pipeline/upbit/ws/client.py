"""Upbit quotation WebSocket client: sharded connections that reconnect forever, one frame stream.

Guarantees (what ``frames()`` yields and what it never does):

* Every data frame received on any connection is yielded once, as :class:`RawFrame` with its
  exact bytes, the local receive time (``time.time_ns()``) and a ``conn_id`` unique per connect
  (``"<shard>-<n>"``, or ``"<prefix>-<shard>-<n>"`` with ``WsConfig.conn_prefix``, which a
  long-running producer sets per process so ids stay unique across restarts). Keepalive
  ``{"status":"UP"}`` frames are consumed and counted, not yielded. Frames of one connection
  come in receive order.
* Delivery is at-most-once per connection: frames the exchange sent while a connection was down
  are *not* recovered here. A new ``conn_id`` marks every reconnect, so downstream can record a
  gap per ``(conn_id, market)`` and backfill trades/candles over REST.
* Snapshots: every connect (first or reconnect) and every re-subscription asks for snapshots
  (``is_only_realtime: false``). After a reconnect the orderbook and ticker snapshots restore
  state that a quiet market may not resend for minutes; the trade snapshot repeats the last
  trade and is harmless because downstream deduplicates on ``(market, sequential_id)`` and the
  frame says ``stream_type: SNAPSHOT``. ``WsConfig.realtime_only_on_reconnect`` can switch
  chosen channels to realtime-only after the first connect.
* Bounded memory: frames go through a bounded queue; a slow consumer slows the sockets (TCP
  backpressure) instead of growing memory (cryptofeed's unbounded queue).
* Reconnects: capped exponential backoff with full jitter per shard, and at most
  ``connects_per_s`` (Upbit: 5/s per IP) connects across the whole client.
* Interruptions are reported: ``on_event`` (optional) is called with a :class:`ConnEvent` when a
  connection ends and will be replaced (``reconnect``, or ``silence`` for the watchdog) and when
  a live connection's subscription is replaced by a new request (``resubscribe``), with the codes
  it carried. It is called before any frame of the replacing connection is queued, so a
  consumer that sees a new ``conn_id`` already knows why the old one ended.
* An error frame whose name says our request is wrong (``NO_TICKET``, ``INVALID_PARAM``, ...)
  is raised from ``frames()`` as :class:`WebSocketErrorFrame` (terminal); other error names are
  counted and the connection reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Literal, Self

from upbit_pipeline.upbit.errors import WebSocketErrorFrame
from upbit_pipeline.upbit.rest.limiter import SlidingWindow
from upbit_pipeline.upbit.ws.connection import (
    TERMINAL_ERROR_NAMES,
    ConnStats,
    RawFrame,
    SessionConfig,
    SilenceError,
    run_session,
)
from upbit_pipeline.upbit.ws.subscription import (
    MAX_CODES_PER_CONN,
    MAX_REQUEST_BYTES,
    build_request,
    plan_shards,
)

__all__ = ["ConnEvent", "ConnEventReason", "UpbitWebSocket", "WsConfig", "WsStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WsConfig:
    """Tuning of :class:`UpbitWebSocket`; the defaults suit api.upbit.com."""

    session: SessionConfig = field(default_factory=SessionConfig)
    max_codes_per_conn: int = MAX_CODES_PER_CONN
    max_request_bytes: int = MAX_REQUEST_BYTES
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    stable_after_s: float = 10.0  # a connection up this long resets its shard's backoff
    connects_per_s: int = 5
    queue_max: int = 10_000
    realtime_only_on_reconnect: frozenset[str] = frozenset()
    conn_prefix: str = ""  # conn_id = "<prefix>-<shard>-<n>" when set (unique per process)


ConnEventReason = Literal["reconnect", "silence", "resubscribe"]


@dataclass(frozen=True)
class ConnEvent:
    """A connection's stream was interrupted: frames of ``codes`` may be missing after it.

    ``reconnect``/``silence``: the connection ``conn_id`` ended (``detail`` says how) and a new
    one will follow. ``resubscribe``: ``conn_id`` stays up but its subscription is being replaced
    (a new request, with snapshots, follows). ``codes`` are the codes carried *before* the event.
    """

    reason: ConnEventReason
    conn_id: str
    shard: int
    codes: tuple[str, ...]
    detail: str = ""
    at_ns: int = 0  # time.time_ns() when the client noticed


@dataclass
class WsStats:
    """Client-wide counters plus the live connections' :class:`ConnStats`."""

    connects: int = 0
    reconnects: int = 0
    silence_reconnects: int = 0
    error_frames: dict[str, int] = field(default_factory=dict)
    frames: int = 0
    status_up: int = 0
    last_frame_ns: int | None = None
    connections: dict[int, ConnStats] = field(default_factory=dict)  # shard -> current conn


class _Shard:
    def __init__(self, index: int, codes: list[str]) -> None:
        self.index = index
        self.codes = codes
        self.connects = 0
        self.conn_id: str | None = None  # the live (or last) connection of this shard
        self.resubscribe = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class UpbitWebSocket:
    """Sharded, self-healing Upbit WebSocket subscription; see the module docstring.

    Usage::

        url = settings.upbit.websocket_url
        async with UpbitWebSocket(url, ["trade", "orderbook"], codes) as ws:
            async for frame in ws.frames():
                ...
    """

    def __init__(
        self,
        url: str,
        channels: Sequence[str],
        codes: Sequence[str],
        *,
        fmt: str = "SIMPLE",
        config: WsConfig | None = None,
        on_event: Callable[[ConnEvent], None] | None = None,
    ) -> None:
        self.url = url
        self.on_event = on_event
        self.channels = list(channels)
        self.fmt = fmt
        self.config = config or WsConfig()
        self._stats = WsStats()
        build_request(self.channels, ["KRW-BTC"], fmt=fmt)  # validate channels/format now
        self._shards: list[_Shard] = [
            _Shard(i, shard) for i, shard in enumerate(self._plan(codes, previous=()))
        ]
        self._queue: asyncio.Queue[RawFrame | BaseException] = asyncio.Queue(self.config.queue_max)
        self._connect_gate = SlidingWindow(self.config.connects_per_s, 1.05, time.monotonic)
        self._gate_lock = asyncio.Lock()
        self._started = False
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def start(self) -> None:
        """Start one task per shard (idempotent). Needs a running event loop."""
        if self._started:
            return
        self._started = True
        for shard in self._shards:
            self._launch(shard)

    async def aclose(self) -> None:
        """Stop every connection and wait for them to close."""
        self._closed = True
        tasks = [s.task for s in self._shards if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def frames(self) -> AsyncIterator[RawFrame]:
        """All data frames of all connections; raises :class:`WebSocketErrorFrame` (terminal)."""
        self.start()
        while True:
            item = await self._queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    # -- codes ---------------------------------------------------------------------------------

    @property
    def shards(self) -> list[list[str]]:
        """Codes per shard (index = shard number in ``conn_id``)."""
        return [list(s.codes) for s in self._shards]

    def update_codes(self, codes: Sequence[str]) -> None:
        """Subscribe exactly ``codes`` from now on (e.g. after a new listing).

        Sharding is sticky, so only the shards whose code list changed send a new full request
        (paced by the per-connection message budget; several quick updates coalesce into one
        request). New shards connect; shards left without codes close.
        """
        plan = self._plan(codes, previous=[s.codes for s in self._shards])
        for index, new_codes in enumerate(plan):
            if index == len(self._shards):
                self._shards.append(_Shard(index, []))
            shard = self._shards[index]
            if new_codes == shard.codes:
                continue
            old_codes, shard.codes = shard.codes, new_codes
            running = shard.task is not None and not shard.task.done()
            if not new_codes:
                if running and shard.task is not None:
                    shard.task.cancel()
                self._stats.connections.pop(index, None)
            elif running:
                if shard.conn_id is not None:
                    self._notify("resubscribe", shard, shard.conn_id, old_codes, "codes changed")
                shard.resubscribe.set()
            elif self._started and not self._closed:
                self._launch(shard)
        log.info("codes updated: %d codes on %d shards", len(codes), len(plan))

    def _plan(self, codes: Sequence[str], previous: Sequence[Sequence[str]]) -> list[list[str]]:
        return plan_shards(
            codes,
            self.channels,
            fmt=self.fmt,
            max_codes=self.config.max_codes_per_conn,
            max_bytes=self.config.max_request_bytes,
            previous=previous,
        )

    # -- stats ---------------------------------------------------------------------------------

    def stats(self) -> WsStats:
        """A snapshot of the counters (frames per connection, reconnects, heartbeats, ...)."""
        s = self._stats
        conns = {i: replace(c) for i, c in s.connections.items()}
        frames = s.frames + sum(c.frames for c in conns.values())
        status_up = s.status_up + sum(c.status_up for c in conns.values())
        last = [c.last_frame_ns for c in conns.values() if c.last_frame_ns is not None]
        last_ns = max([*last, s.last_frame_ns or 0]) or None
        return replace(
            s,
            error_frames=dict(s.error_frames),
            frames=frames,
            status_up=status_up,
            last_frame_ns=last_ns,
            connections=conns,
        )

    # -- connection loop -----------------------------------------------------------------------

    def _notify(
        self,
        reason: ConnEventReason,
        shard: _Shard,
        conn_id: str,
        codes: Sequence[str],
        detail: str,
    ) -> None:
        if self.on_event is None:
            return
        event = ConnEvent(reason, conn_id, shard.index, tuple(codes), detail, time.time_ns())
        try:
            self.on_event(event)
        except Exception:  # a faulty observer must not stop the sockets
            log.exception("on_event callback failed", extra={"conn_id": conn_id})

    def _launch(self, shard: _Shard) -> None:
        shard.task = asyncio.create_task(
            self._run_shard(shard), name=f"upbit-ws-shard-{shard.index}"
        )

    async def _emit(self, frame: RawFrame) -> None:
        await self._queue.put(frame)

    async def _wait_connect_slot(self) -> None:
        async with self._gate_lock:
            await self._connect_gate.acquire()

    def _retire(self, stats: ConnStats) -> None:
        """Fold a finished connection's counters into the client totals."""
        self._stats.frames += stats.frames
        self._stats.status_up += stats.status_up
        if stats.last_frame_ns is not None:
            self._stats.last_frame_ns = max(self._stats.last_frame_ns or 0, stats.last_frame_ns)
        if self._stats.connections.get(stats.shard) is stats:
            del self._stats.connections[stats.shard]

    async def _run_shard(self, shard: _Shard) -> None:
        attempt = 0
        while not self._closed and shard.codes:
            await self._wait_connect_slot()
            if not shard.codes:
                return
            conn_id = f"{shard.index}-{shard.connects}"
            if self.config.conn_prefix:
                conn_id = f"{self.config.conn_prefix}-{conn_id}"
            shard.conn_id = conn_id
            realtime_only = (
                self.config.realtime_only_on_reconnect if shard.connects else frozenset()
            )
            shard.connects += 1
            self._stats.connects += 1
            if shard.connects > 1:
                self._stats.reconnects += 1
            stats = ConnStats(conn_id=conn_id, shard=shard.index)
            self._stats.connections[shard.index] = stats
            extra = {"conn_id": conn_id}
            started = time.monotonic()

            def request(ro: frozenset[str] = realtime_only) -> bytes:
                return build_request(self.channels, shard.codes, fmt=self.fmt, realtime_only=ro)

            try:
                await run_session(
                    self.url,
                    stats,
                    self.fmt,
                    request,
                    self._emit,
                    config=self.config.session,
                    resubscribe=shard.resubscribe,
                )
                reason = "closed"
                kind: ConnEventReason = "reconnect"
            except asyncio.CancelledError:
                self._retire(stats)
                raise
            except WebSocketErrorFrame as exc:
                self._stats.error_frames[exc.name] = self._stats.error_frames.get(exc.name, 0) + 1
                if exc.name in TERMINAL_ERROR_NAMES:
                    log.error("terminal error frame %s: %s", exc.name, exc.message, extra=extra)
                    self._retire(stats)
                    await self._queue.put(exc)
                    return
                reason, kind = f"error frame {exc.name}", "reconnect"
            except SilenceError as exc:
                self._stats.silence_reconnects += 1
                reason, kind = str(exc), "silence"
            except Exception as exc:  # ConnectionClosed, InvalidHandshake, OSError, TimeoutError
                reason, kind = repr(exc), "reconnect"
            self._retire(stats)
            if stats.connected_ns:  # it carried data; a failed connect interrupted nothing new
                self._notify(kind, shard, conn_id, shard.codes, reason)
            if time.monotonic() - started >= self.config.stable_after_s:
                attempt = 0
            delay = random.uniform(
                0.0, min(self.config.backoff_max_s, self.config.backoff_base_s * 2**attempt)
            )
            attempt += 1
            log.warning(
                "connection lost (%s, %d frames); reconnecting in %.2f s",
                reason,
                stats.frames,
                delay,
                extra=extra,
            )
            await asyncio.sleep(delay)
