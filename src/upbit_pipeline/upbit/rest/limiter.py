"""Client-side rate limiting for Upbit's quotation REST API, one budget per ``Remaining-Req`` group.

Upbit limits each group (``market``, ``candles``, ``crix-trades``, ``ticker``, ``orderbook``) to
10 requests/s per IP, independently (a candle backfill does not consume the ticker budget).
Exceeding it answers 429; continuing after a 429 answers 418 and bans the IP for a while, longer
with every repeat. pyupbit reads ``Remaining-Req`` but does not throttle, so its users collect
429s; its regex ``group=([a-z]+)`` even cuts ``crix-trades`` to ``crix``.

Algorithm (per group, all state in :class:`GroupState`):

* **Sliding window**: at most ``per_second`` sends in any ``window_s`` (+ a small margin for
  network jitter, so two sends 1.0 s apart locally never land < 1.0 s apart at the server).
* **Server budget**: every response's ``Remaining-Req: ...; sec=N`` says N requests are left in
  the server's current window. Until that window ends, we allow at most N more sends (minus the
  ones sent since). This also covers other processes on the same IP eating the budget.
* **429**: every caller of the group pauses until the next window, then longer with repeats
  (``window_s * 2**(n-1)``, capped); the request is retried (bounded) by the client.
* **418**: the group is closed until the ban ends (duration parsed from the body or
  ``Retry-After`` when present, else a conservative default); during the ban :meth:`acquire`
  raises :class:`BannedError` at once, so nothing is ever retried into a ban.

The endpoint→group map (:func:`group_for_path`) is static, so the very first concurrent burst is
already throttled per group, before any response has told us the group name.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from upbit_pipeline.upbit.errors import BannedError

__all__ = [
    "GROUPS",
    "GroupStats",
    "RateLimiter",
    "SlidingWindow",
    "group_for_path",
    "parse_ban_seconds",
    "parse_remaining_req",
]

log = logging.getLogger(__name__)

GROUPS: tuple[str, ...] = ("market", "candles", "crix-trades", "ticker", "orderbook")
"""Wire names of the quotation groups (``Remaining-Req: group=...``), not the doc names."""

_PREFIX_GROUPS: tuple[tuple[str, str], ...] = (
    ("/market/", "market"),
    ("/candles/", "candles"),
    ("/trades/", "crix-trades"),
    ("/ticker", "ticker"),
    ("/orderbook", "orderbook"),
)

# '-' and digits allowed in the group name: ``crix-trades``.
_REMAINING_RE = re.compile(r"group=([A-Za-z0-9_.-]+)\s*;.*?\bsec=(\d+)", re.IGNORECASE)

_DURATION_RE = re.compile(
    r"(\d+(?:\.\d+)?)\s*(ms|milliseconds?|secs?|seconds?|s|초|mins?|minutes?|m|분|hours?|h|시간)"
    r"(?![A-Za-z])",
    re.IGNORECASE,
)


def _unit_seconds(unit: str) -> float:
    unit = unit.lower()
    if unit.startswith(("ms", "milli")):
        return 0.001
    if unit.startswith(("s", "초")):
        return 1.0
    if unit.startswith(("m", "분")):
        return 60.0
    return 3600.0


def group_for_path(path: str) -> str:
    """Rate-limit group of a REST path relative to the ``/v1`` root, e.g. ``/candles/days``."""
    probe = path if path.endswith("/") else path + "/"
    for prefix, group in _PREFIX_GROUPS:
        if probe.startswith(prefix) or path.startswith(prefix):
            return group
    return "default"


def parse_remaining_req(value: str | None) -> tuple[str, int] | None:
    """``"group=crix-trades; min=600; sec=9"`` -> ``("crix-trades", 9)``; None if absent/garbled.

    ``min`` is deprecated by Upbit (a fixed 600) and ignored.
    """
    if not value:
        return None
    match = _REMAINING_RE.search(value)
    if match is None:
        return None
    return match.group(1).lower(), int(match.group(2))


def parse_ban_seconds(body: bytes, retry_after: str | None = None) -> float | None:
    """Ban length from a 418 answer: ``Retry-After`` seconds, else a duration in the body text.

    Upbit's 418 body format is undocumented ("contains the block duration"); we accept
    ``"... 30 seconds"``, ``"5분"``, ``"1.5 min"``, ``"120s"``. None when nothing parses.
    """
    if retry_after:
        try:
            return max(0.0, float(retry_after.strip()))
        except ValueError:
            pass
    text = body.decode("utf-8", "replace")
    match = _DURATION_RE.search(text)
    if match is None:
        return None
    return float(match.group(1)) * _unit_seconds(match.group(2))


class SlidingWindow:
    """At most ``limit`` events in any ``window_s`` seconds; :meth:`delay` says how long to wait."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._sent: deque[float] = deque()

    def delay(self) -> float:
        """Seconds until one more event fits (0.0 when it fits now)."""
        now = self._clock()
        while self._sent and self._sent[0] <= now - self.window_s:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            return 0.0
        return self._sent[0] + self.window_s - now

    def record(self) -> float:
        now = self._clock()
        self._sent.append(now)
        return now

    def count_after(self, t: float) -> int:
        """Events recorded strictly after ``t`` (still inside the window)."""
        return sum(1 for sent in self._sent if sent > t)

    async def acquire(self) -> None:
        """Wait (without a lock: callers serialise) until an event fits, then record it."""
        while (wait := self.delay()) > 0:
            await asyncio.sleep(wait)
        self.record()


@dataclass
class GroupStats:
    """Counters of one group, for metrics. ``throttled_s`` = time callers waited in the limiter."""

    requests: int = 0
    responses_429: int = 0
    responses_418: int = 0
    retries: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    throttled_s: float = 0.0
    last_remaining: int | None = None


@dataclass
class GroupState:
    window: SlidingWindow
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    stats: GroupStats = field(default_factory=GroupStats)
    server_left: int | None = None  # sec=N of the newest answered request ...
    server_sent_at: float = 0.0  # ... which we sent at this time
    paused_until: float = 0.0  # after a 429
    banned_until: float = 0.0  # after a 418
    ban_message: str = ""
    consecutive_429: int = 0


class RateLimiter:
    """Per-group limiter; one instance per REST client (i.e. per IP budget you own).

    Guarantee: with no other user of the IP, no group ever sends more than ``per_second`` requests
    in any ``window_s + margin_s`` interval, and never sends during a 429 pause or a 418 ban.
    """

    def __init__(
        self,
        per_second: int = 10,
        *,
        window_s: float = 1.0,
        margin_s: float = 0.05,
        max_pause_s: float = 8.0,
        ban_default_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_second
        self.window_s = window_s
        self.margin_s = margin_s
        self.max_pause_s = max_pause_s
        self.ban_default_s = ban_default_s
        self._clock = clock
        self._groups: dict[str, GroupState] = {}

    def _state(self, group: str) -> GroupState:
        state = self._groups.get(group)
        if state is None:
            window = SlidingWindow(self.per_second, self.window_s + self.margin_s, self._clock)
            state = self._groups[group] = GroupState(window)
        return state

    def stats(self) -> dict[str, GroupStats]:
        """A copy of every group's counters, keyed by wire group name."""
        return {name: GroupStats(**vars(s.stats)) for name, s in self._groups.items()}

    def group_stats(self, group: str) -> GroupStats:
        return self._state(group).stats

    def banned_until(self, group: str) -> float:
        """Monotonic time the group's ban ends (0.0 when not banned)."""
        return self._state(group).banned_until

    def _check_ban(self, group: str, state: GroupState, now: float) -> None:
        if now < state.banned_until:
            raise BannedError(group, state.banned_until, state.ban_message)

    def _server_delay(self, state: GroupState, now: float) -> float:
        """Wait imposed by the server's ``sec``.

        ``sec`` was N when our request sent at ``server_sent_at`` reached the server; that server
        window ends by ``server_sent_at + window``; our own sends since then used part of the N.
        """
        if state.server_left is None:
            return 0.0
        until = state.server_sent_at + self.window_s + self.margin_s
        if now >= until:
            return 0.0
        left = state.server_left - state.window.count_after(state.server_sent_at)
        return 0.0 if left > 0 else until - now

    async def acquire(self, group: str) -> float:
        """Wait for a send slot in ``group`` and return the send time (pass it to :meth:`observe`).

        Raises :class:`BannedError` at once during a ban."""
        state = self._state(group)
        self._check_ban(group, state, self._clock())
        async with state.lock:  # FIFO: callers of one group are served in arrival order
            start = self._clock()
            while True:
                now = self._clock()
                self._check_ban(group, state, now)
                wait = max(
                    state.paused_until - now,
                    self._server_delay(state, now),
                    state.window.delay(),
                )
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            sent_at = state.window.record()
            state.stats.requests += 1
            state.stats.throttled_s += sent_at - start
            return sent_at

    def observe(self, group: str, sent_at: float, status: int, remaining_req: str | None) -> None:
        """Feed a response's status and ``Remaining-Req`` header back into the group's state.

        Answers can arrive out of order; only the one to the most recently sent request counts.
        """
        state = self._state(group)
        parsed = parse_remaining_req(remaining_req)
        if parsed is not None and sent_at >= state.server_sent_at:
            wire_group, left = parsed
            if wire_group != group:
                log.warning(
                    "Remaining-Req group %r answered a request mapped to %r",
                    wire_group,
                    group,
                    extra={"group": group},
                )
            state.stats.last_remaining = left
            state.server_left = left
            state.server_sent_at = sent_at
        if status < 400:
            state.consecutive_429 = 0

    def on_429(self, group: str) -> float:
        """Pause the whole group (next window, doubling with repeats); returns the pause length."""
        state = self._state(group)
        state.stats.responses_429 += 1
        state.consecutive_429 += 1
        pause = min(self.max_pause_s, self.window_s * 2.0 ** (state.consecutive_429 - 1))
        state.paused_until = max(state.paused_until, self._clock() + pause)
        log.warning(
            "Upbit 429 in group %s (%d in a row): pausing the group %.1f s",
            group,
            state.consecutive_429,
            pause,
            extra={"group": group},
        )
        return pause

    def on_418(self, group: str, body: bytes, retry_after: str | None = None) -> BannedError:
        """Close the group until the ban ends; returns the error for the caller to raise."""
        state = self._state(group)
        state.stats.responses_418 += 1
        parsed = parse_ban_seconds(body, retry_after)
        seconds = self.ban_default_s if parsed is None else max(parsed, self.window_s)
        state.banned_until = max(state.banned_until, self._clock() + math.ceil(seconds))
        state.ban_message = body[:200].decode("utf-8", "replace")
        log.error(
            "Upbit 418 ban in group %s for %.0f s (%s); requests fail fast until then",
            group,
            seconds,
            "from the answer" if parsed is not None else "default, no duration in the answer",
            extra={"group": group},
        )
        return BannedError(group, state.banned_until, state.ban_message)
