"""Client-side rate limiting for Upbit's quotation REST API, one budget per ``Remaining-Req`` group.

Upbit limits each group (``market``, ``candles``, ``crix-trades``, ``ticker``, ``orderbook``) to
10 requests/s per IP, independently (a candle backfill does not consume the ticker budget).
Exceeding it answers 429; continuing after a 429 answers 418 and bans the IP for a while, longer
with every repeat. pyupbit reads ``Remaining-Req`` but does not throttle, so its users collect
429s; its regex ``group=([a-z]+)`` even cuts ``crix-trades`` to ``crix``.

The server's window is never guessed from our own send times. What a response proves is only
this: the server counted the request at some instant between our send and the arrival of the
answer. So every rule below is written with the *arrival* time of the answer, which bounds the
server's instant from above, whatever the network latency was:

* **Completion window** (our own requests): a request occupies one of the group's ``per_second``
  slots from its send until ``window_s`` after its answer arrived (for ever while in flight). A
  send needs a free slot. Then any ``per_second + 1`` of our requests include one whose server
  instant lies at least ``window_s`` before the newest one's: no server window of length
  ``window_s`` -- fixed windows opened by the first request (Upbit's guide), aligned 1-s buckets,
  or a sliding second -- can ever see more than ``per_second`` of ours. Up to ``per_second``
  requests are pipelined at once; in steady state the group sends ``per_second`` requests per
  ``window_s`` + one round trip (9.9/s against a local server), where a send-time window needs a
  margin that latency jitter eventually exceeds (1.05 s gave 9.35/s, 1.02 s drew 429s).
* **Server budget** (the authority, covers other users of the IP): the answer to the most
  recently sent answered request says ``sec=N`` -- N requests left in the server window that
  counted it. That window ends at the latest ``window_s`` after the answer arrived; until then at
  most N more sends (minus the ones sent after that request) are allowed. ``sec=0`` therefore
  waits exactly for the server's next window as far as our clock can know it.
* **429** (only when someone else shares the IP, or the server changed its limit): every caller of
  the group pauses until the server's window surely rolled over (``window_s`` after the 429
  arrived), then longer with repeats (``window_s * 2**(n-1)``, capped); the request is retried
  (bounded) by the client. The pause re-synchronises: the next answers set the budget again.
* **418**: the group is closed until the ban ends (duration parsed from the body or
  ``Retry-After`` when present, else a conservative default); during the ban :meth:`acquire`
  raises :class:`BannedError` at once, so nothing is ever retried into a ban.

The endpoint→group map (:func:`group_for_path`) is static, so the very first concurrent burst is
already throttled per group, before any response has told us the group name. Callers must report
every acquired send back through :meth:`RateLimiter.observe` (status 0 for a transport failure),
or its slot stays occupied.
"""

from __future__ import annotations

import asyncio
import contextlib
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


@dataclass(frozen=True, slots=True)
class _Answer:
    sent: float  # our send time
    arrived: float  # arrival of the answer: the server counted the request at or before this
    left: int | None  # its ``sec=N``; None without a Remaining-Req (or without any answer)


@dataclass
class GroupState:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # set by observe()
    stats: GroupStats = field(default_factory=GroupStats)
    in_flight: list[float] = field(default_factory=list)  # send times not yet observed
    sends: int = 0  # sends of the current generation, the probe included
    answers: list[_Answer] = field(default_factory=list)  # answers of the current generation
    probe_sent: float = -math.inf  # send time of the current generation's probe
    paused_until: float = 0.0  # after a 429
    banned_until: float = 0.0  # after a 418
    ban_message: str = ""
    consecutive_429: int = 0


class RateLimiter:
    """Per-group limiter; one instance per REST client (i.e. per IP budget you own).

    Guarantee (see the module doc): with no other user of the IP, no server window -- fixed
    windows opened by their first request (Upbit's guide) or aligned to the server's clock --
    ever counts more than ``per_second`` requests of one group; against any server, at most
    one request per generation can find the window full, and nothing is sent during a 429
    pause or a 418 ban. ``margin_s`` is added to every ``window_s`` wait: only for a server
    clock that runs slower than ours, not for latency (arrival times bound the server's instants).
    """

    def __init__(
        self,
        per_second: int = 10,
        *,
        window_s: float = 1.0,
        margin_s: float = 0.002,
        max_pause_s: float = 8.0,
        ban_default_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_second < 1 or window_s <= 0 or margin_s < 0:
            raise ValueError("per_second must be >= 1, window_s > 0 and margin_s >= 0")
        self.per_second = per_second
        self.window_s = window_s
        self.margin_s = margin_s
        self.max_pause_s = max_pause_s
        self.ban_default_s = ban_default_s
        self._clock = clock
        self._groups: dict[str, GroupState] = {}

    @property
    def hold_s(self) -> float:
        """A server window that counted a request ends at the latest this long after its answer."""
        return self.window_s + self.margin_s

    def _state(self, group: str) -> GroupState:
        state = self._groups.get(group)
        if state is None:
            state = self._groups[group] = GroupState()
        return state

    def stats(self) -> dict[str, GroupStats]:
        """A copy of every group's counters, keyed by wire group name."""
        return {name: GroupStats(**vars(s.stats)) for name, s in self._groups.items()}

    def group_stats(self, group: str) -> GroupStats:
        return self._state(group).stats

    def banned_until(self, group: str) -> float:
        """Monotonic time the group's ban ends (0.0 when not banned)."""
        return self._state(group).banned_until

    def in_flight(self, group: str) -> int:
        """Sends of ``group`` not yet reported back through :meth:`observe`."""
        return len(self._state(group).in_flight)

    def _check_ban(self, group: str, state: GroupState, now: float) -> None:
        if now < state.banned_until:
            raise BannedError(group, state.banned_until, state.ban_message)

    def generation_end(self, group: str) -> float:
        """When every server window that counted a request of the current generation has ended.

        Only meaningful once all its requests are answered. Tight -- the probe's answer plus one
        window -- when the answers prove a single fresh window: the probe found it empty
        (``sec = per_second - 1``: it opened it, before its answer arrived) and every ``sec`` of
        the generation differs (with no other user, a second window would have started at
        ``per_second - 1`` again). Otherwise the last answer plus one window, which holds for
        any server.
        """
        state = self._state(group)
        if not state.answers:
            return -math.inf
        lefts = [a.left for a in state.answers]
        probe = next((a for a in state.answers if a.sent == state.probe_sent), None)
        if (
            probe is not None
            and probe.left == self.per_second - 1
            and None not in lefts
            and len(set(lefts)) == len(lefts)
        ):
            return probe.arrived + self.hold_s
        return max(a.arrived for a in state.answers) + self.hold_s

    def _budget(self, state: GroupState) -> int:
        """Sends still allowed in the current generation (0 while its probe is unanswered)."""
        if not state.answers:
            return 0
        own = self.per_second - state.sends
        lefts = [a.left for a in state.answers if a.left is not None]
        if not lefts:
            return own
        # the answer with the lowest sec was counted last; the unanswered may follow it
        return min(own, min(lefts) - len(state.in_flight))

    def _delay(self, group: str, state: GroupState, now: float) -> float | None:
        """0.0: send now; > 0: wait that long; None: wait for an answer."""
        if state.sends == 0:
            return 0.0  # a new generation opens with its probe
        if not state.in_flight:
            end = self.generation_end(group)
            if now >= end:  # every window we used is over: a new generation, a new probe
                state.sends, state.answers = 0, []
                return 0.0
            return 0.0 if self._budget(state) > 0 else end - now
        return 0.0 if self._budget(state) > 0 else None

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
                wait: float | None = state.paused_until - now
                if wait is not None and wait <= 0:
                    wait = self._delay(group, state, now)
                    if wait is not None and wait <= 0:
                        break
                state.answered.clear()
                if wait is None:  # only an answer can free a send
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(state.answered.wait(), self.max_pause_s)
                elif state.in_flight:  # an answer may change the budget before the wait ends
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(state.answered.wait(), wait)
                else:
                    await asyncio.sleep(wait)
            sent_at = self._clock()
            if state.sends == 0:
                state.probe_sent = sent_at
            state.sends += 1
            state.in_flight.append(sent_at)
            state.stats.requests += 1
            state.stats.throttled_s += sent_at - start
            return sent_at

    def observe(
        self,
        group: str,
        sent_at: float,
        status: int,
        remaining_req: str | None,
        *,
        received_at: float | None = None,
    ) -> None:
        """Report the answer to the send made at ``sent_at`` (from :meth:`acquire`).

        ``status`` 0 = no answer (transport failure, cancelled): treated as an answer arriving
        now without ``sec``, since the request may still have reached the server.
        """
        state = self._state(group)
        arrived = self._clock() if received_at is None else received_at
        try:
            state.in_flight.remove(sent_at)
        except ValueError:  # not ours, or reported twice: it is no longer in any generation
            return
        parsed = parse_remaining_req(remaining_req)
        left: int | None = None
        if parsed is not None:
            wire_group, left = parsed
            if wire_group != group:
                log.warning(
                    "Remaining-Req group %r answered a request mapped to %r",
                    wire_group,
                    group,
                    extra={"group": group},
                )
            state.stats.last_remaining = left
        state.answers.append(_Answer(sent_at, arrived, left))
        if 0 < status < 400:
            state.consecutive_429 = 0
        state.answered.set()

    def on_429(self, group: str) -> float:
        """Pause the whole group (next window, doubling with repeats); returns the pause length."""
        state = self._state(group)
        state.stats.responses_429 += 1
        state.consecutive_429 += 1
        pause = min(self.max_pause_s, self.hold_s * 2.0 ** (state.consecutive_429 - 1))
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
