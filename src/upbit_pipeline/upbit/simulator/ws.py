"""The ``/websocket/v1`` endpoint: requests, errors, keepalive, idle close.

Protocol as measured on Upbit (upbit-api.md section 2): every frame the server sends is binary
(opcode 2) UTF-8 JSON; a request ``[{ticket},{type,codes,...},...,{format}]`` replaces the whole
subscription of the connection; unknown or lowercase codes are silently ignored; protocol errors
are one ``{"error":{...}}`` frame and a close 1000 about 150 ms later; text ``PING`` gets
``{"status":"UP"}`` now and every 10 s; a socket with no traffic for ``idle_timeout_s`` is aborted
without a close frame (the client sees 1006).

Our assumptions (UNCONFIRMED for Upbit): the per-connection request limit (5/s and 100/min) is
enforced with an error frame ``TOO_MANY_REQUESTS`` followed by close 1000, like the other protocol
errors; an empty ``codes`` list is INVALID_PARAM (as Bithumb's clone); an unknown ``format`` is
WRONG_FORMAT; camelCase ``isOnlySnapshot``/``isOnlyRealtime`` are honoured; protocol pings count
as traffic for the idle timer (the docs say so).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from upbit_pipeline.upbit import fields
from upbit_pipeline.upbit.simulator.rest import SIM_KEY
from upbit_pipeline.upbit.simulator.stream import CANDLE_UNITS, MAX_QUEUE, Hub

if TYPE_CHECKING:
    from upbit_pipeline.upbit.simulator.server import Simulator

__all__ = ["handle_ws"]

log = logging.getLogger(__name__)

FORMATS = ("DEFAULT", "SIMPLE", "JSON_LIST", "SIMPLE_LIST")
TYPES = ("ticker", "trade", "orderbook", *CANDLE_UNITS)
_BOOK_UNITS = (1, 5, 15, 30)
_ids = itertools.count(1)


class ProtocolError(Exception):
    def __init__(self, name: str, message: str, message_first: bool = False) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.message_first = message_first

    def frame(self) -> bytes:
        name, msg = json.dumps(self.name), json.dumps(self.message, ensure_ascii=False)
        inner = (
            f'"message":{msg},"name":{name}'
            if self.message_first
            else f'"name":{name},"message":{msg}'
        )
        return ('{"error":{' + inner + "}}").encode()


class Conn:
    """One client socket: its format, subscription and send queue."""

    def __init__(
        self, hub: Hub, ws: web.WebSocketResponse, transport: asyncio.Transport | None
    ) -> None:
        self.id = next(_ids)
        self.hub = hub
        self.ws = ws
        self.transport: asyncio.Transport | None = transport
        self.fmt = "DEFAULT"
        self.subs: dict[str, dict[int, tuple[int, int, bool]]] = {}
        self.listing: list[tuple[str, list[str], int | None]] = []
        self.ticket = ""
        self.queue: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.last_io = time.monotonic()
        self.requests: deque[float] = deque()
        self.status_task: asyncio.Task[None] | None = None
        self.aborted = False

    # -- Subscriber protocol --------------------------------------------------------------------
    def push(self, data: bytes) -> None:
        if self.aborted:
            return  # the socket is gone; the hub drops this conn when its handler ends
        self.queue.append(data)
        if len(self.queue) > MAX_QUEUE:
            log.warning("conn_id=%s slow consumer, aborting", self.id)
            self.abort()
        self.wake.set()

    def abort(self) -> None:
        self.aborted = True
        self.queue.clear()
        if self.transport is not None:
            self.transport.abort()

    def idle_for(self, now_mono: float) -> float:
        return now_mono - self.last_io

    # -- sending --------------------------------------------------------------------------------
    async def sender(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            queue, send = self.queue, self.ws.send_bytes
            while queue:
                await send(queue.popleft())
                self.last_io = time.monotonic()

    async def status_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.push(b'{"status":"UP"}')

    # -- requests -------------------------------------------------------------------------------
    def rate_ok(self, cfg_per_s: int, cfg_per_min: int) -> bool:
        now = time.monotonic()
        self.requests.append(now)
        while self.requests and now - self.requests[0] > 60:
            self.requests.popleft()
        last_second = sum(1 for t in self.requests if now - t <= 1.0)
        return last_second <= cfg_per_s and len(self.requests) <= cfg_per_min

    def apply(self, sim: Simulator, request: list[Any]) -> list[tuple[str, int, int, int]]:
        """Validate a request; install it. Returns the snapshots to send (kind, market, n, lv)."""
        if not any(isinstance(o, dict) and "ticket" in o for o in request):
            raise ProtocolError("NO_TICKET", "티켓이 존재하지 않거나, 유효하지 않습니다.")
        ticket_obj = next(o for o in request if isinstance(o, dict) and "ticket" in o)
        ticket = ticket_obj["ticket"]
        if not isinstance(ticket, str) or not ticket:
            raise ProtocolError("NO_TICKET", "티켓이 존재하지 않거나, 유효하지 않습니다.")
        fmt = "DEFAULT"
        methods, type_objs = [], []
        for o in request:
            if not isinstance(o, dict):
                raise ProtocolError("WRONG_FORMAT", "Format 이 맞지 않습니다.", True)
            if "format" in o:
                fmt = str(o["format"]).upper()
                if fmt not in FORMATS:
                    raise ProtocolError("WRONG_FORMAT", "Format 이 맞지 않습니다.", True)
            elif "method" in o:
                methods.append(o["method"])
            elif "type" in o:
                type_objs.append(o)
            elif "ticket" not in o and ("codes" in o or not o):
                raise ProtocolError("NO_TYPE", "타입이 존재하지 않습니다.")
        for method in methods:
            if method != "LIST_SUBSCRIPTIONS":
                raise ProtocolError(
                    "INVALID_PARAM", f"{method} 은 지원하지 않는 메소드입니다.", True
                )
        if not type_objs and not methods:
            raise ProtocolError("NO_TYPE", "타입이 존재하지 않습니다.")
        parsed = [self._parse_type(sim, o) for o in type_objs]
        self.fmt = fmt
        self.ticket = ticket
        if not type_objs:
            return []
        subs: dict[str, dict[int, tuple[int, int, bool]]] = {}
        listing: list[tuple[str, list[str], int | None]] = []
        snaps: list[tuple[str, int, int, int]] = []
        for kind, codes, level, snapshot, realtime, shown in parsed:
            bucket = subs.setdefault(kind, {})
            for mi, n in codes:
                bucket[mi] = (n, level, realtime)
                if snapshot:
                    snaps.append((kind, mi, n, level))
            listing.append((kind, shown, level if kind == "orderbook" else None))
        self.subs, self.listing = subs, listing
        return snaps

    @staticmethod
    def _parse_type(
        sim: Simulator, o: dict[str, Any]
    ) -> tuple[str, list[tuple[int, int]], int, bool, bool, list[str]]:
        kind = o["type"]
        if not isinstance(kind, str) or kind not in TYPES:
            raise ProtocolError("INVALID_PARAM", f"{kind} 은 지원하지 않는 타입입니다.", True)
        if "codes" not in o:
            raise ProtocolError("NO_CODES", "코드가 존재하지 않습니다.")
        raw_codes = o["codes"]
        if not isinstance(raw_codes, list) or not raw_codes:
            raise ProtocolError("INVALID_PARAM", "codes 가 유효하지 않습니다.", True)
        only_snapshot = bool(o.get("is_only_snapshot", o.get("isOnlySnapshot", False)))
        only_realtime = bool(o.get("is_only_realtime", o.get("isOnlyRealtime", False)))
        level_raw = o.get("level", 0) if kind == "orderbook" else 0
        try:
            level = int(float(level_raw) * 100_000_000)
        except (TypeError, ValueError):
            raise ProtocolError("INVALID_PARAM", "level 이 유효하지 않습니다.", True) from None
        codes: list[tuple[int, int]] = []
        shown: list[str] = []
        for raw in raw_codes:
            if not isinstance(raw, str):
                continue
            code, n = raw, 30
            if kind == "orderbook" and "." in raw:
                code, _, suffix = raw.partition(".")
                n = int(suffix) if suffix.isdigit() and int(suffix) in _BOOK_UNITS else 30
            mi = sim.index.get(code)  # exact match: lowercase and unknown codes are ignored
            if mi is not None:
                codes.append((mi, n))
                shown.append(raw)
        return kind, codes, level, not only_realtime, not only_snapshot, shown

    def listing_frame(self) -> bytes:
        simple = self.fmt.startswith("SIMPLE")
        k = fields.LIST_SUBSCRIPTIONS if simple else {x: x for x in fields.LIST_SUBSCRIPTIONS}
        result = []
        for kind, codes, level in self.listing:
            item: dict[str, Any] = {k["type"]: kind, k["codes"]: codes}
            if level is not None:
                item[k["level"]] = level // 100_000_000
            result.append(item)
        body = {k["method"]: "LIST_SUBSCRIPTIONS", k["result"]: result, k["ticket"]: self.ticket}
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        return (f"[{text}]" if self.fmt.endswith("_LIST") else text).encode()


async def handle_ws(request: web.Request) -> web.StreamResponse:
    """aiohttp handler for ``GET /websocket/v1``."""
    sim: Simulator = request.app[SIM_KEY]
    ip = request.remote or "?"
    cfg = sim.config
    if "Origin" in request.headers:
        verdict = sim.limiter.check(ip, "origin", 1, 10.0)
    else:
        verdict = sim.limiter.check(ip, "websocket", cfg.ws_connects_per_s)
    if verdict.status != 200:
        return web.Response(
            status=verdict.status,
            body=verdict.body(),
            headers={
                "Remaining-Req": verdict.header,
                "Content-Type": "application/json;charset=UTF-8",
            },
        )
    ws = web.WebSocketResponse(autoping=False, compress=cfg.compress, max_msg_size=1 << 22)
    ws.headers["Remaining-Req"] = verdict.header
    ws.headers["Limit-By-Ip"] = "Yes"
    transport = request.transport
    await ws.prepare(request)
    hub = sim.hub
    conn = Conn(hub, ws, transport)
    hub.conns.add(conn)
    sender = asyncio.create_task(conn.sender())
    try:
        async for msg in ws:
            conn.last_io = time.monotonic()
            if msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
                continue
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            text = msg.data if msg.type == WSMsgType.TEXT else msg.data.decode("utf-8", "replace")
            if not await _on_message(sim, conn, text):
                break
    finally:
        hub.conns.discard(conn)
        sender.cancel()
        if conn.status_task is not None:
            conn.status_task.cancel()
    return ws


async def _on_message(sim: Simulator, conn: Conn, text: str) -> bool:
    """Handle one client message; False when the socket was closed after an error frame."""
    cfg = sim.config
    if text.strip() == "PING":
        conn.push(b'{"status":"UP"}')
        if conn.status_task is None:
            conn.status_task = asyncio.create_task(conn.status_loop(cfg.status_interval_s))
        return True
    try:
        if not conn.rate_ok(cfg.ws_messages_per_s, cfg.ws_messages_per_min):
            raise ProtocolError("TOO_MANY_REQUESTS", "요청 수 제한을 초과했습니다.")
        try:
            request_obj = json.loads(text)
        except ValueError:
            raise ProtocolError("WRONG_FORMAT", "Format 이 맞지 않습니다.", True) from None
        if not isinstance(request_obj, list):
            raise ProtocolError("WRONG_FORMAT", "Format 이 맞지 않습니다.", True)
        snaps = conn.apply(sim, request_obj)
    except ProtocolError as exc:
        conn.queue.clear()
        await conn.ws.send_bytes(exc.frame())
        await asyncio.sleep(cfg.error_close_delay_s)
        await conn.ws.close(code=1000)
        return False
    if any(isinstance(o, dict) and "type" in o for o in request_obj):
        conn.queue.clear()  # frames of the replaced subscription are not sent any more
    if any(isinstance(o, dict) and o.get("method") for o in request_obj):
        conn.push(conn.listing_frame())
    for kind, mi, n, level in snaps:
        sim.hub.snapshot(conn, kind, mi, n, level)
    return True
