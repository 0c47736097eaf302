"""A live tail of decoded trades: the smallest end-to-end use of the exchange edge.

It resolves markets over REST (``all`` = every KRW market from ``/v1/market/all``), subscribes to
``trade`` over the WebSocket and yields typed trades. Frames that do not decode are counted and
skipped: a tail is for watching, the producer (issue 3) is what dead-letters them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from upbit_pipeline.settings import UpbitSettings
from upbit_pipeline.upbit.decode import decode_frame
from upbit_pipeline.upbit.errors import MalformedFrameError
from upbit_pipeline.upbit.models import Trade
from upbit_pipeline.upbit.rest import UpbitRestClient
from upbit_pipeline.upbit.ws import UpbitWebSocket

__all__ = ["TailStats", "resolve_markets", "stream_trades"]

log = logging.getLogger(__name__)


@dataclass
class TailStats:
    """What the tail saw: decoded trades and frames it could not decode."""

    trades: int = 0
    malformed: int = 0


async def resolve_markets(upbit: UpbitSettings, spec: str, quote: str = "KRW") -> list[str]:
    """``all`` -> every market of ``quote`` listed by Upbit now; else a comma list, upper-cased.

    Upbit silently ignores lowercase codes on the WebSocket, so codes are upper-cased here.
    """
    if spec.strip().lower() == "all":
        async with UpbitRestClient(upbit.url) as rest:
            return [m.market for m in await rest.markets(details=False) if m.quote == quote]
    return [code.strip().upper() for code in spec.split(",") if code.strip()]


async def stream_trades(
    upbit: UpbitSettings, codes: Sequence[str], stats: TailStats | None = None
) -> AsyncIterator[Trade]:
    """Trades of ``codes`` as they happen, in arrival order, across reconnects."""
    stats = stats if stats is not None else TailStats()
    async with UpbitWebSocket(upbit.websocket_url, ["trade"], codes, fmt=upbit.ws_format) as ws:
        async for frame in ws.frames():
            try:
                messages = decode_frame(frame.data)
            except MalformedFrameError as exc:
                stats.malformed += 1
                log.warning(
                    "malformed frame skipped: %s", exc.reason, extra={"conn_id": frame.conn_id}
                )
                continue
            for message in messages:
                if isinstance(message, Trade):
                    stats.trades += 1
                    yield message
