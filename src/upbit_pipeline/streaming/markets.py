"""Which markets the producer subscribes, kept in step with Upbit's listings.

``markets = "all"`` means every KRW market of ``/v1/market/all``, re-read every
``market_refresh_s``: new listings are subscribed and delisted markets dropped through
:meth:`UpbitWebSocket.update_codes`, which re-subscribes only the shards whose codes changed and
paces every request within Upbit's per-connection message budget (5/s, 100/min). An explicit
list is fixed for the life of the process.

Guarantee: a failed refresh (REST error, empty answer) keeps the current subscription and tries
again next period; it never unsubscribes everything because of one bad answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from upbit_pipeline.errors import UpbitPipelineError
from upbit_pipeline.settings import UpbitSettings
from upbit_pipeline.upbit.tail import resolve_markets

__all__ = ["MarketRefresher", "is_all", "resolve_markets"]

log = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[list[str]]]


def is_all(spec: str) -> bool:
    return spec.strip().lower() == "all"


class MarketRefresher:
    """Re-reads the market list periodically and applies the difference to ``update``."""

    def __init__(
        self,
        fetch: Fetch,
        update: Callable[[Sequence[str]], None],
        current: Sequence[str],
        interval_s: float,
    ) -> None:
        self._fetch = fetch
        self._update = update
        self.current = list(current)
        self.interval_s = interval_s
        self.refreshes = 0
        self.failures = 0

    @classmethod
    def for_upbit(
        cls,
        upbit: UpbitSettings,
        update: Callable[[Sequence[str]], None],
        current: Sequence[str],
        interval_s: float,
    ) -> MarketRefresher:
        async def fetch() -> list[str]:
            return await resolve_markets(upbit, "all")

        return cls(fetch, update, current, interval_s)

    async def refresh_once(self) -> tuple[list[str], list[str]]:
        """One refresh: returns (added, removed); both empty on failure or no change."""
        try:
            listed = await self._fetch()
        except (UpbitPipelineError, OSError) as exc:
            self.failures += 1
            log.warning("market refresh failed (keeping %d markets): %s", len(self.current), exc)
            return [], []
        if not listed:
            self.failures += 1
            log.warning("market refresh returned no markets; keeping %d", len(self.current))
            return [], []
        self.refreshes += 1
        old = set(self.current)
        added = [m for m in listed if m not in old]
        removed = [m for m in self.current if m not in set(listed)]
        if added or removed:
            self.current = list(listed)
            self._update(self.current)
            log.info("markets changed: +%s -%s", added, removed)
        return added, removed

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.interval_s)
                return
            except TimeoutError:
                pass
            await self.refresh_once()
