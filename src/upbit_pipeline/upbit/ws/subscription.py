"""Upbit WebSocket subscription requests: building, sharding codes over connections, pacing.

Upbit facts this module is shaped by (docs/upbit-api.md §2.2, §2.10):

* One request message is the whole subscription of its connection; a second request replaces
  the first (no per-code unsubscribe). So a connection always gets one *full* request, with all
  its channels in one message:
  ``[{"ticket"}, {"type","codes","is_only_realtime"}, ..., {"format"}]``.
* Unknown or lowercase codes are silently ignored (no error, no frame): codes are upper-cased.
* Each connection may send 5 messages/s and 100/min (LIST_SUBSCRIPTIONS and, we assume, the
  text ``PING`` count): :class:`MessageBudget` paces every message we send on a connection.
  ccxt pro re-sends the whole subscription for every added symbol and burns that budget; we
  coalesce code changes into at most one request per budget slot.

Sharding: one socket carried all 855 pairs in a 9,468-byte request in a live probe, so the limit
is not Upbit's but ours: a connection is a failure domain (a drop loses every code on it until
the reconnect) and one receive loop per socket. Default :data:`MAX_CODES_PER_CONN` = 100 codes
(all ~290 KRW pairs -> 3 sockets) and :data:`MAX_REQUEST_BYTES` = 8,192 bytes (below the largest
request measured to work). Sharding is sticky: a code keeps its connection while it is listed,
new listings fill the first shard with room, so a new listing re-subscribes one connection only.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Collection, Sequence

import msgspec

from upbit_pipeline.upbit.rest.limiter import SlidingWindow

__all__ = [
    "CHANNELS",
    "FORMATS",
    "MAX_CODES_PER_CONN",
    "MAX_REQUEST_BYTES",
    "MessageBudget",
    "build_request",
    "normalize_codes",
    "plan_shards",
    "request_size",
]

CHANNELS: frozenset[str] = frozenset(
    {"trade", "ticker", "orderbook"}
    | {f"candle.{unit}" for unit in ("1s", "1m", "3m", "5m", "10m", "15m", "30m", "60m", "240m")}
)
FORMATS: frozenset[str] = frozenset({"DEFAULT", "SIMPLE", "JSON_LIST", "SIMPLE_LIST"})
MAX_CODES_PER_CONN = 100
MAX_REQUEST_BYTES = 8192
MESSAGES_PER_S = 5
MESSAGES_PER_MIN = 100

_encoder = msgspec.json.Encoder()


def normalize_codes(codes: Sequence[str]) -> list[str]:
    """Upper-case and de-duplicate, keeping order (Upbit ignores lowercase codes silently)."""
    seen: dict[str, None] = {}
    for code in codes:
        seen.setdefault(code.strip().upper(), None)
    return [code for code in seen if code]


def _check(channels: Sequence[str], fmt: str) -> None:
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise ValueError(f"unknown channel(s) {unknown}; known: {sorted(CHANNELS)}")
    if not channels:
        raise ValueError("at least one channel is required")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {sorted(FORMATS)}")


def build_request(
    channels: Sequence[str],
    codes: Sequence[str],
    *,
    fmt: str = "SIMPLE",
    realtime_only: Collection[str] = (),
    ticket: str | None = None,
) -> bytes:
    """The one request message of a connection, as compact JSON bytes.

    ``realtime_only``: channels sent with ``is_only_realtime: true`` (no snapshot); every other
    channel gets a snapshot first (``stream_type`` SNAPSHOT), then realtime frames.
    """
    _check(channels, fmt)
    if not codes:
        raise ValueError("at least one code is required (Upbit answers NO_CODES otherwise)")
    message: list[dict[str, object]] = [{"ticket": ticket or str(uuid.uuid4())}]
    for channel in channels:
        message.append(
            {"type": channel, "codes": list(codes), "is_only_realtime": channel in realtime_only}
        )
    message.append({"format": fmt})
    return _encoder.encode(message)


def request_size(channels: Sequence[str], codes: Sequence[str], fmt: str) -> int:
    """Byte size of :func:`build_request` for these codes (worst case: every ``false``)."""
    return len(build_request(channels, codes, fmt=fmt, ticket="0" * 36))


def plan_shards(
    codes: Sequence[str],
    channels: Sequence[str],
    *,
    fmt: str = "SIMPLE",
    max_codes: int = MAX_CODES_PER_CONN,
    max_bytes: int = MAX_REQUEST_BYTES,
    previous: Sequence[Sequence[str]] = (),
) -> list[list[str]]:
    """Split ``codes`` into shards (one per connection) within both limits, sticky to ``previous``.

    Shard i of the result corresponds to shard i of ``previous`` (it may become empty when all
    its codes were delisted: the caller then closes that connection). Codes no longer listed
    are dropped; new codes go to the first shard with room, else to new shards at the end.
    """
    if max_codes < 1:
        raise ValueError("max_codes must be >= 1")
    wanted = normalize_codes(codes)
    wanted_set = set(wanted)
    shards = [[c for c in shard if c in wanted_set] for shard in previous]
    placed = {c for shard in shards for c in shard}
    per_code = {c: (len(_encoder.encode(c)) + 1) * len(channels) for c in wanted}
    # bytes without any code; each code then costs len('"CODE",') per channel (an upper bound)
    base = request_size(channels, ["X"], fmt) - len(b'"X",') * len(channels)
    sizes = [base + sum(per_code[c] for c in shard) for shard in shards]
    for code in wanted:
        if code in placed:
            continue
        if base + per_code[code] > max_bytes:
            raise ValueError(f"max_bytes={max_bytes} cannot hold even one code ({code})")
        for i, shard in enumerate(shards):
            if len(shard) < max_codes and sizes[i] + per_code[code] <= max_bytes:
                shard.append(code)
                sizes[i] += per_code[code]
                break
        else:
            shards.append([code])
            sizes.append(base + per_code[code])
    return shards


class MessageBudget:
    """Upbit's per-connection message limit: 5 messages/s and 100/min (sliding windows).

    Guarantee: :meth:`acquire` never lets more than ``per_s`` messages through in any second
    nor more than ``per_min`` in any minute (plus a small margin for clock jitter).
    """

    def __init__(
        self,
        per_s: int = MESSAGES_PER_S,
        per_min: int = MESSAGES_PER_MIN,
        *,
        margin_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._second = SlidingWindow(per_s, 1.0 + margin_s, clock)
        self._minute = SlidingWindow(per_min, 60.0 + margin_s, clock)
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while (wait := max(self._second.delay(), self._minute.delay())) > 0:
                await asyncio.sleep(wait)
            self._second.record()
            self._minute.record()
