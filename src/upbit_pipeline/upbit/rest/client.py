"""Async client for Upbit's public quotation REST API (``BASE/v1``), built on httpx.

Guarantees:

* Returns typed values (``upbit_pipeline.upbit.models``) or raises a typed error from
  ``upbit_pipeline.upbit.errors`` -- an error body is never returned as data:
  400/404 bodies -> :class:`UpbitApiError` (``name`` is an int for quotation errors);
  429 after bounded retries -> :class:`RateLimitedError`; 418 -> :class:`BannedError` at once,
  and every later call in that group fails fast until the ban ends (never retried into a ban);
  5xx and transport failures after bounded, jittered retries -> :class:`UpbitServerError`.
* Throttled per ``Remaining-Req`` group by one :class:`RateLimiter` (see ``limiter.py``), so
  concurrent callers run at Upbit's 10 requests/s ceiling without drawing 429s.
* Never sends an ``Origin`` header (Upbit limits such requests to 1 per 10 s). Sends
  ``Accept: application/json`` and ``Accept-Encoding: gzip``.
* GET requests only, which are idempotent: retrying them is always safe.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

import httpx

from upbit_pipeline.settings import rest_root
from upbit_pipeline.upbit.decode import (
    decode_candles_rest,
    decode_markets,
    decode_orderbooks_rest,
    decode_rest_error,
    decode_tickers_rest,
    decode_trades_rest,
)
from upbit_pipeline.upbit.errors import RateLimitedError, UpbitApiError, UpbitServerError
from upbit_pipeline.upbit.models import Candle, Market, Orderbook, Ticker, Trade
from upbit_pipeline.upbit.rest.limiter import GroupStats, RateLimiter, group_for_path
from upbit_pipeline.upbit.rest.pagination import (
    CANDLE_PAGE_MAX,
    TRADE_PAGE_MAX,
    format_to,
    interval_path,
    iter_candles_range,
    iter_trades,
)

__all__ = ["UpbitRestClient"]

log = logging.getLogger(__name__)

_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip",
    "User-Agent": "upbit-pipeline/0.1 (+httpx)",
}

Params = dict[str, str | int]


class UpbitRestClient:
    """Upbit quotation REST client; use as ``async with UpbitRestClient(base) as client``.

    ``base_url`` is the host root (``https://api.upbit.com`` or the simulator's ``base_url``);
    the REST root is :func:`~upbit_pipeline.settings.rest_root` of it (``base_url/v1``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        limiter: RateLimiter | None = None,
        max_retries: int = 4,
        max_429_retries: int = 5,
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 8.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.max_retries = max_retries
        self.max_429_retries = max_429_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._http = httpx.AsyncClient(
            base_url=rest_root(self.base_url),
            headers=_HEADERS,
            timeout=timeout_s,
            transport=transport,
            follow_redirects=False,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def stats(self) -> dict[str, GroupStats]:
        """Counters per wire group (requests, 429s, 418s, retries, ...) for metrics."""
        return self.limiter.stats()

    # -- endpoints -------------------------------------------------------------------------

    async def markets(self, details: bool = True) -> list[Market]:
        """``/v1/market/all``; with ``details`` also the ``market_event`` warning/caution flags."""
        body = await self._get("/market/all", {"is_details": "true" if details else "false"})
        return decode_markets(body)

    async def candles(
        self, market: str, interval: str, *, to: datetime | None = None, count: int = 200
    ) -> list[Candle]:
        """One page of candles, newest first, all starting before ``to`` (exclusive).

        ``interval``: ``1s``, ``1m 3m 5m 10m 15m 30m 60m 240m``, ``1d``, ``1w``, ``1mo``, ``1y``.
        ``count`` is clamped to 200 (Upbit clamps silently too). The first element of a page
        without ``to`` is the still-forming candle.
        """
        params: Params = {"market": market, "count": max(1, min(count, CANDLE_PAGE_MAX))}
        if to is not None:
            params["to"] = format_to(to)
        body = await self._get(interval_path(interval), params)
        return decode_candles_rest(body, interval)

    def candles_range(
        self, market: str, interval: str, start: datetime, end: datetime
    ) -> AsyncIterator[Candle]:
        """Every candle with ``start <= start_utc < end``, newest first, each exactly once.

        Pages of 200 chained by ``to`` = oldest start received; see ``pagination.py``.
        """

        async def page(to: datetime, count: int) -> list[Candle]:
            return await self.candles(market, interval, to=to, count=count)

        return iter_candles_range(page, start, end, interval)

    async def trades(
        self,
        market: str,
        *,
        count: int = 500,
        cursor: int | None = None,
        days_ago: int | None = None,
        to: str | None = None,
    ) -> list[Trade]:
        """``/v1/trades/ticks``: recent trades, newest first.

        ``cursor``: a ``sequential_id``, continue with trades before it. ``days_ago``: 1..7 (UTC
        days back). ``to``: ``HHmmss`` or ``HH:mm:ss`` UTC within that day.
        """
        body = await self.trades_raw(market, count=count, cursor=cursor, days_ago=days_ago, to=to)
        return decode_trades_rest(body)

    async def trades_raw(
        self,
        market: str,
        *,
        count: int = 500,
        cursor: int | None = None,
        days_ago: int | None = None,
        to: str | None = None,
    ) -> bytes:
        """Like :meth:`trades`, but Upbit's body as it came: the log stores exchange bytes."""
        params: Params = {"market": market, "count": max(1, min(count, TRADE_PAGE_MAX))}
        if cursor is not None:
            params["cursor"] = cursor
        if days_ago is not None:
            params["days_ago"] = days_ago
        if to is not None:
            params["to"] = to
        return await self._get("/trades/ticks", params)

    def trades_iter(
        self,
        market: str,
        *,
        days_ago: int | None = None,
        to: str | None = None,
        since_ms: int | None = None,
        count: int = TRADE_PAGE_MAX,
    ) -> AsyncIterator[Trade]:
        """Backfill: trades newest first, paged by ``cursor``, until exhausted or ``since_ms``."""

        async def page(cursor: int | None, n: int) -> list[Trade]:
            return await self.trades(market, count=n, cursor=cursor, days_ago=days_ago, to=to)

        return iter_trades(page, count=count, since_ms=since_ms)

    async def ticker(self, markets: Sequence[str]) -> list[Ticker]:
        """``/v1/ticker`` for the given markets (one unknown code makes the whole call 404)."""
        return decode_tickers_rest(await self._get("/ticker", {"markets": ",".join(markets)}))

    async def orderbook(self, markets: Sequence[str], count: int = 30) -> list[Orderbook]:
        """``/v1/orderbook``: full books, up to ``count`` (1..30) levels each."""
        params: Params = {"markets": ",".join(markets), "count": max(1, min(count, 30))}
        return decode_orderbooks_rest(await self._get("/orderbook", params))

    # -- transport ---------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        """Capped exponential backoff with full jitter (attempt 0 -> up to ``backoff_base_s``)."""
        return random.uniform(0.0, min(self.backoff_max_s, self.backoff_base_s * 2**attempt))

    async def _get(self, path: str, params: Params) -> bytes:
        """GET ``/v1{path}`` through the limiter; returns the 200 body or raises a typed error."""
        group = group_for_path(path)
        stats = self.limiter.group_stats(group)
        failures = 0
        limited = 0
        while True:
            sent_at = await self.limiter.acquire(group)
            try:
                response = await self._http.get(path, params=params)
            except httpx.TransportError as exc:
                self.limiter.observe(group, sent_at, 0, None)
                stats.transport_errors += 1
                if failures >= self.max_retries:
                    raise UpbitServerError(f"GET {path}: {exc!r}") from exc
                await self._retry_sleep(group, path, failures, repr(exc))
                failures += 1
                continue
            except BaseException:  # cancelled, or a bug: the send still happened
                self.limiter.observe(group, sent_at, 0, None)
                raise
            status = response.status_code
            self.limiter.observe(group, sent_at, status, response.headers.get("remaining-req"))
            if status == 200:
                return response.content
            if status == 429:
                self.limiter.on_429(group)
                if limited >= self.max_429_retries:
                    raise RateLimitedError(group, response.text[:200])
                limited += 1
                stats.retries += 1
                continue  # acquire() waits out the group's pause
            if status == 418:
                raise self.limiter.on_418(
                    group, response.content, response.headers.get("retry-after")
                )
            if status >= 500:
                stats.server_errors += 1
                if failures >= self.max_retries:
                    raise UpbitServerError(f"GET {path}: HTTP {status} {response.text[:200]}")
                await self._retry_sleep(group, path, failures, f"HTTP {status}")
                failures += 1
                continue
            raise self._api_error(response)

    async def _retry_sleep(self, group: str, path: str, attempt: int, reason: str) -> None:
        self.limiter.group_stats(group).retries += 1
        delay = self._backoff(attempt)
        log.warning(
            "GET %s failed (%s); retry %d in %.2f s",
            path,
            reason,
            attempt + 1,
            delay,
            extra={"group": group},
        )
        await asyncio.sleep(delay)

    @staticmethod
    def _api_error(response: httpx.Response) -> UpbitApiError:
        url = str(response.request.url)
        try:
            parsed = decode_rest_error(response.content)
        except Exception:  # a garbled error body must still surface as the HTTP error
            parsed = None
        if parsed is None:
            return UpbitApiError(
                response.status_code, response.status_code, response.text[:200], url
            )
        name, message = parsed
        return UpbitApiError(response.status_code, name, message, url)
