"""Server-side rate limits: Upbit's per-IP request windows, 429, then 418 bans.

Confirmed by Upbit (upbit-api.md section 4): 10 requests per second per wire group and IP; any
request with an ``Origin`` header falls in group ``origin`` at 1 per 10 s; 5 WebSocket connects
per second;
``Remaining-Req: group=<g>; min=<n>; sec=<left>`` on every response; exceeding gives 429, and
continuing after 429s gives 418 with a block that grows on repeats.

Upbit's request guide (docs.upbit.com/v1.4.0/docs/user-request-guide, the "old guide") also says
how a window is placed: "the time condition of the limit is based on the time of the first
request, and it is reset after a set time (failed requests are not counted)". So a window opens
with the first request that finds no open window and lasts 1 s (10 s for ``origin``); the next
request after that opens the next one. (Until issue 6 this module used 1-s buckets aligned to the
server's clock, which the guide does not describe; both allow 10 per window and a burst of 20
across a boundary, so neither is looser than the other.)

Our assumptions (UNCONFIRMED for Upbit, documented in docs/upbit-protocol.md):

* a 429 does not consume the window (the guide's "failed requests are not counted");
* the 5th 429 inside one window turns into a 418 ban of ``ban_base_s * 2**k`` seconds (k = bans
  the IP already had in that group), and every request of that group gets 418 until it ends;
* bodies: ``{"error":{"name":"too_many_requests","message":...}}`` for 429 (what third-party
  mocks assume) and ``{"error":{"name":"too_many_requests","message":"... blocked for N seconds"}}``
  for 418.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["STRIKES_BEFORE_BAN", "Limiter", "Verdict"]

STRIKES_BEFORE_BAN = 5
_MIN_FIELD = {"origin": 6, "websocket": 300}


@dataclass(slots=True)
class _Bucket:
    opened: float = float("-inf")  # when the current window opened (its first request)
    count: int = 0
    strikes: int = 0
    banned_until: float = 0.0
    bans: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of one request: HTTP status (200 = allowed), header value, ban length."""

    status: int
    group: str
    remaining: int
    ban_s: float = 0.0

    @property
    def header(self) -> str:
        return f"group={self.group}; min={_MIN_FIELD.get(self.group, 600)}; sec={self.remaining}"

    def body(self) -> bytes:
        if self.status == 418:
            message = f"Too many requests after 429. Blocked for {self.ban_s:.0f} seconds."
        else:
            message = "Too many requests."
        return ('{"error":{"name":"too_many_requests","message":"' + message + '"}}').encode()


class Limiter:
    """Windows per (client IP, wire group)."""

    def __init__(
        self,
        per_s: int,
        ban_base_s: float,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_s = per_s
        self.ban_base_s = ban_base_s
        self.enabled = enabled
        self.clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def check(
        self, ip: str, group: str, limit: int | None = None, window_s: float = 1.0
    ) -> Verdict:
        """Count one request and say whether it may proceed."""
        limit = self.per_s if limit is None else limit
        if not self.enabled:
            return Verdict(200, group, limit - 1)
        now = self.clock()
        bucket = self._buckets.setdefault((ip, group), _Bucket())
        if now < bucket.banned_until:
            return Verdict(418, group, 0, bucket.banned_until - now)
        if now >= bucket.opened + window_s:  # no open window: this request opens one
            bucket.opened, bucket.count, bucket.strikes = now, 0, 0
        if bucket.count < limit:
            bucket.count += 1
            return Verdict(200, group, limit - bucket.count)
        bucket.strikes += 1
        if bucket.strikes >= STRIKES_BEFORE_BAN:
            ban = self.ban_base_s * 2**bucket.bans
            bucket.bans += 1
            bucket.banned_until = now + ban
            bucket.strikes = 0
            return Verdict(418, group, 0, ban)
        return Verdict(429, group, 0)
