"""One Upbit WebSocket connection: subscribe, keep alive, watch for silence, stamp and pass on.

This is the only place a socket is read. Per connection:

* **Subscribe**: send the connection's one full request (text JSON); send a new full request
  when ``resubscribe`` is set (code list changed), paced by :class:`MessageBudget`.
* **Keepalive** every ``keepalive_s`` (default 20 s, Upbit closes idle sockets at ~60 s on the
  wire, 120 s in the docs): an RFC 6455 ping (websockets' ``ping_interval``; a missing pong
  within ``ping_timeout_s`` closes the socket, which triggers a reconnect) *and* the text
  ``PING``, after which Upbit sends ``{"status":"UP"}`` every 10 s. Those status frames are
  consumed here (counted in ``status_up``), never yielded.
* **Silence watchdog**: if nothing at all arrives for ``silence_timeout_s`` (default 30 s), not
  even the 10-s ``UP`` heartbeat, the socket is dead: :class:`SilenceError` makes the caller
  reconnect. Because the heartbeat arrives on every live socket, a quiet market never trips it
  (cryptofeed's 120 s data-only watchdog flaps on quiet markets). The watchdog times only the
  wait for the socket, never time spent blocked on a full downstream queue.
* **Receive time** ``time.time_ns()`` is taken right after ``recv()`` returns; the bytes are
  passed on untouched (a text frame is tolerated and encoded to UTF-8).
* **Error frames** (``{"error":{"name":...}}``) raise :class:`WebSocketErrorFrame`; Upbit closes
  the socket right after one anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
from websockets.asyncio.client import ClientConnection, connect

from upbit_pipeline.errors import TransientError
from upbit_pipeline.upbit.errors import WebSocketErrorFrame
from upbit_pipeline.upbit.ws.subscription import MessageBudget

__all__ = [
    "TERMINAL_ERROR_NAMES",
    "ConnStats",
    "RawFrame",
    "SessionConfig",
    "SilenceError",
    "run_session",
]

log = logging.getLogger(__name__)

TERMINAL_ERROR_NAMES: frozenset[str] = frozenset(
    {"NO_TICKET", "NO_TYPE", "NO_CODES", "WRONG_FORMAT", "INVALID_PARAM", "INVALID_AUTH"}
)
"""Error names meaning *our request* is wrong: reconnecting would only repeat it."""

_CONTROL_MAX_BYTES = 512  # status and error frames are tiny; data frames never hold these keys


class RawFrame(msgspec.Struct, frozen=True, gc=False):
    """One data frame as received: the exact bytes, the local receive time, where it came from."""

    data: bytes
    received_ns: int  # time.time_ns() right after recv()
    conn_id: str  # unique per connect: "<shard>-<n>"
    fmt: str  # request format: SIMPLE, DEFAULT, JSON_LIST, SIMPLE_LIST


class _Error(msgspec.Struct):
    name: str = ""
    message: str = ""


class _Control(msgspec.Struct):
    status: str | None = None
    error: _Error | None = None


_control_decoder = msgspec.json.Decoder(_Control)


class SilenceError(TransientError):
    """Nothing (not even the ``UP`` heartbeat) arrived for ``silence_timeout_s``."""


@dataclass
class ConnStats:
    """Counters of one connection (one connect)."""

    conn_id: str
    shard: int
    connected_ns: int = 0
    frames: int = 0
    bytes: int = 0
    text_frames: int = 0
    status_up: int = 0
    requests_sent: int = 0
    last_frame_ns: int | None = None  # any frame, heartbeat included


@dataclass(frozen=True)
class SessionConfig:
    """Timings of one connection (see the module docstring for why these defaults)."""

    keepalive_s: float = 20.0
    ping_timeout_s: float = 20.0
    silence_timeout_s: float = 30.0
    open_timeout_s: float = 10.0
    max_frame_bytes: int = 8 * 2**20
    proxy: str | None = None  # websockets' proxy; None = direct (no proxy from the environment)
    heartbeat: bool = True  # text PING -> {"status":"UP"} every 10 s; off only if unsupported
    # permessage-deflate (RFC 7692), offered as Upbit supports it: it cuts the ~2 MB/s all-market
    # stream several-fold, and measured against the simulator (separate process, 60 markets) the
    # client took ~70k frames/s with it against ~7k/s without. None turns it off.
    compression: str | None = "deflate"


def _control(data: bytes) -> _Control | None:
    """Status/error frame, or None for a data frame (cheap check first: the hot path)."""
    if len(data) > _CONTROL_MAX_BYTES or (b'"status"' not in data and b'"error"' not in data):
        return None
    try:
        return _control_decoder.decode(data)
    except msgspec.DecodeError:
        return None


async def run_session(
    url: str,
    stats: ConnStats,
    fmt: str,
    request: Callable[[], bytes],
    emit: Callable[[RawFrame], Awaitable[None]],
    *,
    config: SessionConfig,
    resubscribe: asyncio.Event | None = None,
) -> None:
    """Run one connection until it fails (a connection never ends without an exception).

    ``request()`` builds the current full subscription (called at connect and on every
    ``resubscribe``). Raises :class:`SilenceError`, :class:`WebSocketErrorFrame`, websockets'
    ``ConnectionClosed`` (also ``ConnectionClosedOK`` on a clean close) / ``InvalidHandshake``,
    or ``OSError`` / ``TimeoutError`` (connect).
    """
    async with connect(
        url,
        ping_interval=config.keepalive_s,
        ping_timeout=config.ping_timeout_s,
        open_timeout=config.open_timeout_s,
        close_timeout=2.0,
        max_size=config.max_frame_bytes,
        proxy=config.proxy,
        compression=config.compression,
        user_agent_header="upbit-pipeline/0.1",
    ) as ws:
        session = _Session(ws, stats, fmt, request, config)
        stats.connected_ns = time.time_ns()
        if resubscribe is not None:
            resubscribe.clear()  # this connect subscribes with the current codes anyway
        await session.subscribe()
        helpers = []
        if config.heartbeat:
            await session.send("PING")  # start the 10-s UP heartbeat now: the watchdog needs it
            helpers.append(asyncio.create_task(session.keepalive()))
        log.info("connected %s", url, extra={"conn_id": stats.conn_id})
        if resubscribe is not None:
            helpers.append(asyncio.create_task(session.resubscriber(resubscribe)))
        try:
            await session.receive(emit)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)


class _Session:
    """The parts of one live connection: paced sends, keepalive, re-subscription, receive loop."""

    def __init__(
        self,
        ws: ClientConnection,
        stats: ConnStats,
        fmt: str,
        request: Callable[[], bytes],
        config: SessionConfig,
    ) -> None:
        self.ws = ws
        self.stats = stats
        self.fmt = fmt
        self.request = request
        self.config = config
        self.budget = MessageBudget()
        self.send_lock = asyncio.Lock()

    async def send(self, message: str) -> None:
        await self.budget.acquire()
        async with self.send_lock:
            await self.ws.send(message)

    async def subscribe(self) -> None:
        await self.send(self.request().decode())
        self.stats.requests_sent += 1

    async def keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.config.keepalive_s)
            await self.send("PING")

    async def resubscriber(self, event: asyncio.Event) -> None:
        while True:
            await event.wait()
            event.clear()
            await self.subscribe()
            log.info("re-subscribed (code list changed)", extra={"conn_id": self.stats.conn_id})

    async def receive(self, emit: Callable[[RawFrame], Awaitable[None]]) -> None:
        stats, timeout_s = self.stats, self.config.silence_timeout_s
        while True:
            try:
                async with asyncio.timeout(timeout_s):
                    message = await self.ws.recv()
            except TimeoutError:
                raise SilenceError(
                    f"{stats.conn_id}: nothing received for {timeout_s:g} s"
                ) from None
            received_ns = time.time_ns()
            stats.last_frame_ns = received_ns
            if isinstance(message, str):
                stats.text_frames += 1
                data = message.encode()
            else:
                data = bytes(message)
            control = _control(data)
            if control is not None:
                if control.error is not None:
                    raise WebSocketErrorFrame(control.error.name, control.error.message)
                if control.status is not None:
                    stats.status_up += 1
                    continue
            stats.frames += 1
            stats.bytes += len(data)
            await emit(RawFrame(data, received_ns, stats.conn_id, self.fmt))
