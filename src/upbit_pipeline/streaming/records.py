"""What a record in the log looks like: key, value, timestamp and headers, defined once.

* **value**: the exchange's own bytes, untouched (like tardis): a WebSocket frame as received, or
  one REST trade object as Upbit sent it (backfill). Nothing is re-encoded, so nothing is lost.
* **key**: the market code (``KRW-BTC``), so one market's records share a partition, in order.
* **timestamp**: the exchange's event time in epoch ms (UTC): ``trade_timestamp`` for trades,
  ``timestamp`` for ticker, orderbook and candle frames.
* **headers** (all ASCII): see the ``H_*`` names below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "FORMAT_REST",
    "H_BACKFILL",
    "H_CONN_ID",
    "H_ERROR",
    "H_FORMAT",
    "H_RECV_NS",
    "H_SNAPSHOT",
    "H_SOURCE_TOPIC",
    "RecordHeaders",
    "header_map",
]

H_RECV_NS: Final = "recv_ns"  # local receive time, epoch ns (time.time_ns())
H_CONN_ID: Final = (
    "conn_id"  # WebSocket connection id "<producer>-<shard>-<n>"; "rest" for backfill
)
H_FORMAT: Final = "format"  # SIMPLE / DEFAULT (WebSocket) or REST (backfilled REST trade object)
H_SNAPSHOT: Final = "snapshot"  # "1" when Upbit marked the frame stream_type=SNAPSHOT
H_BACKFILL: Final = "backfill"  # "1" when the record was repaired from REST after a gap
H_ERROR: Final = "error"  # dead letter only: why the frame did not decode
H_SOURCE_TOPIC: Final = "source_topic"  # dead letter only: where it would have gone, if known

FORMAT_REST: Final = "REST"


@dataclass(frozen=True)
class RecordHeaders:
    """Typed view of a record's headers."""

    recv_ns: int
    conn_id: str
    fmt: str
    snapshot: bool = False
    backfill: bool = False

    def encode(self) -> list[tuple[str, bytes]]:
        headers = [
            (H_RECV_NS, str(self.recv_ns).encode()),
            (H_CONN_ID, self.conn_id.encode()),
            (H_FORMAT, self.fmt.encode()),
        ]
        if self.snapshot:
            headers.append((H_SNAPSHOT, b"1"))
        if self.backfill:
            headers.append((H_BACKFILL, b"1"))
        return headers

    @classmethod
    def decode(cls, headers: list[tuple[str, bytes | None]] | None) -> RecordHeaders:
        values = header_map(headers)
        return cls(
            recv_ns=int(values.get(H_RECV_NS, "0") or 0),
            conn_id=values.get(H_CONN_ID, ""),
            fmt=values.get(H_FORMAT, ""),
            snapshot=values.get(H_SNAPSHOT) == "1",
            backfill=values.get(H_BACKFILL) == "1",
        )


def header_map(headers: list[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Headers as a dict of ASCII strings (the last value wins for a repeated name)."""
    return {name: (value or b"").decode("ascii", "replace") for name, value in headers or []}
