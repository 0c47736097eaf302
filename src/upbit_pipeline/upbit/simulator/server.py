"""The Simulator: one aiohttp port serving REST ``/v1/...``, ``/websocket/v1`` and ``/_sim/``.

Simulated time is ``start_ms + wall_elapsed * speed``; the tape, books, tickers and candles are
pure functions of (config, simulated time), so two simulators with the same seed and start answer
the same requests with the same bytes whatever the wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from aiohttp import web

from upbit_pipeline.upbit.simulator.admin import add_admin_routes
from upbit_pipeline.upbit.simulator.books import Books
from upbit_pipeline.upbit.simulator.config import SimConfig
from upbit_pipeline.upbit.simulator.limits import Limiter
from upbit_pipeline.upbit.simulator.market import build_markets
from upbit_pipeline.upbit.simulator.rest import SIM_KEY, ApiError, add_routes, group_of
from upbit_pipeline.upbit.simulator.stream import Hub
from upbit_pipeline.upbit.simulator.tape import DAY_MS, Tape
from upbit_pipeline.upbit.simulator.ws import handle_ws

__all__ = ["Simulator", "run_simulator"]

log = logging.getLogger(__name__)

_HEADERS = {
    "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
    "Expires": "0",
    "Pragma": "no-cache",
    "Limit-By-Ip": "Yes",
    "Vary": "origin,access-control-request-method,access-control-request-headers,accept-encoding",
}
_NOT_FOUND = b'{"error":{"name":"not_found","message":"no Route matched with those values"}}'
_JSON = "application/json;charset=UTF-8"


@dataclass
class RestFaults:
    """Run-time REST faults (wall-clock deadlines)."""

    rest_5xx_until: float = 0.0
    rest_429_until: float = 0.0

    def describe(self) -> dict[str, float]:
        now = time.monotonic()
        return {
            "rest_5xx_s_left": max(0.0, self.rest_5xx_until - now),
            "rest_429_s_left": max(0.0, self.rest_429_until - now),
        }


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Simulator:
    """A running local Upbit. Use ``async with Simulator(cfg) as sim:``."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.scenario = config.load_scenario()
        self.start_ms = config.start_ms if config.start_ms is not None else int(time.time() * 1000)
        self.specs = build_markets(config.markets, config.seed)
        self.index = {s.code: s.index for s in self.specs}
        first_day = self.start_ms // DAY_MS - config.history_days
        self.tape = Tape(self.specs, config.seed, first_day, self.scenario, self.start_ms)
        self.books = Books(self.tape, config.seed)
        self.limiter = Limiter(config.rest_per_s, config.ban_base_s, config.rate_limits)
        self.faults = RestFaults()
        self._mono0 = time.monotonic()
        self.hub = Hub(self)
        self._runner: web.AppRunner | None = None
        self.port = config.port

    # -- public API -----------------------------------------------------------------------------
    @property
    def markets(self) -> list[str]:
        return [s.code for s in self.specs]

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}/websocket/v1"

    def now_ms(self) -> int:
        """Current simulated time, epoch ms."""
        elapsed = time.monotonic() - self._mono0
        return self.start_ms + int(elapsed * 1000 * self.config.speed)

    async def start(self) -> Simulator:
        app = web.Application(middlewares=[self._middleware])
        app[SIM_KEY] = self
        add_routes(app)
        add_admin_routes(app)
        app.router.add_get("/websocket/v1", handle_ws)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._mono0 = time.monotonic()
        self.hub.t_prev = self.now_ms()
        self.hub.start()
        log.info(
            "simulator listening on %s (markets=%d seed=%d speed=%s)",
            self.base_url,
            len(self.specs),
            self.config.seed,
            self.config.speed,
        )
        return self

    async def stop(self) -> None:
        await self.hub.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Simulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- REST plumbing --------------------------------------------------------------------------
    def _rest_fault(self, now_ms: int) -> int:
        mono = time.monotonic()
        sc = self.scenario.faults
        if mono < self.faults.rest_5xx_until or any(
            a <= now_ms < b for a, b in (w.bounds(self.start_ms) for w in sc.rest_5xx)
        ):
            return 500
        if mono < self.faults.rest_429_until or any(
            a <= now_ms < b for a, b in (w.bounds(self.start_ms) for w in sc.rest_429)
        ):
            return 429
        return 0

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_sim/") or path == "/websocket/v1":
            return await handler(request)
        group = group_of(path)
        if group is None or request.match_info.http_exception is not None:
            return web.Response(status=404, body=_NOT_FOUND, headers={"Content-Type": _JSON})
        if "Origin" in request.headers:
            verdict = self.limiter.check(request.remote or "?", "origin", 1, 10.0)
        else:
            verdict = self.limiter.check(request.remote or "?", group)
        headers = dict(_HEADERS, **{"Remaining-Req": verdict.header, "Content-Type": _JSON})
        if verdict.status != 200:
            return web.Response(status=verdict.status, body=verdict.body(), headers=headers)
        fault = self._rest_fault(self.now_ms())
        if fault == 500:
            body = b'{"error":{"name":"internal_server_error","message":"simulated fault"}}'
            return web.Response(status=500, body=body, headers=headers)
        if fault == 429:
            return web.Response(status=429, body=verdict.body(), headers=headers)
        try:
            response = await handler(request)
        except ApiError as exc:
            return web.Response(status=exc.status, body=exc.body(), headers=headers)
        except web.HTTPNotFound:
            return web.Response(status=404, body=_NOT_FOUND, headers={"Content-Type": _JSON})
        response.headers.update(headers)
        return response


def run_simulator(config: SimConfig) -> None:
    """Serve until SIGINT/SIGTERM; prints the base URL once listening (the CLI's ``sim``)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # non-Unix
                loop.add_signal_handler(sig, stop.set)
        async with Simulator(config) as sim:
            print(sim.base_url, flush=True)
            await stop.wait()

    asyncio.run(main())
