"""Gap events: a statement that data *may* be missing for a market, a channel and a time range.

The producer emits one to ``upbit.gaps`` whenever it cannot prove continuity: a connection
dropped or was replaced, the silence watchdog fired, the spool overflowed, or the producer itself
restarted. The backfill worker repairs trade gaps from REST; other channels' gaps stay recorded
(candles are repaired by the batch layer; orderbooks and tickers are state, re-sent as snapshots).
Times are epoch ms, UTC, exchange time; ``from_ms`` is the last event seen before the gap and
``to_ms`` the first event after it (both inclusive: backfill overlap is removed by dedup).
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

__all__ = ["GAP_REASONS", "GapEvent", "GapReason", "decode_gap", "encode_gap"]

GapReason = Literal["reconnect", "resubscribe", "silence", "spool_overflow", "producer_restart"]
GAP_REASONS: Final[tuple[str, ...]] = (
    "reconnect",
    "resubscribe",
    "silence",
    "spool_overflow",
    "producer_restart",
)


class GapEvent(msgspec.Struct, frozen=True):
    """Data for ``market`` on ``channel`` may be missing between ``from_ms`` and ``to_ms``."""

    market: str
    channel: str
    from_ms: int
    to_ms: int
    reason: GapReason
    conn_id: str = ""  # the connection that ended (or "" when not connection-related)
    detected_ns: int = 0  # local time the producer noticed, epoch ns


_decoder = msgspec.json.Decoder(GapEvent)


def encode_gap(event: GapEvent) -> bytes:
    return msgspec.json.encode(event)


def decode_gap(data: bytes) -> GapEvent:
    return _decoder.decode(data)
