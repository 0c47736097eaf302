"""Slack delivery that never blocks detection: a bounded queue, 1 message/s, retries, marks.

Detection calls :meth:`Delivery.submit`, which never waits and never raises: the alert goes into
a bounded queue, or, when the queue is full, is marked undelivered at once (reason
``queue full``) in the alert log. One sender task drains the queue:

* **Pacing**: at most one message per ``interval_s`` (Slack allows about 1/s per webhook). The
  alerts that arrived while it waited for its slot are combined into that one message (up to
  ``max_batch``, which keeps Block Kit under its 50-block limit).
* **Retries**: 429 waits ``Retry-After`` (capped), 5xx and network errors back off exponentially
  (``backoff_base_s * 2**n``, capped). A message is tried ``max_attempts`` times in all.
* **Never silently dropped**: each alert ends with a ``delivered`` or ``undelivered`` mark in the
  alert log (JSONL), after its last try, on a non-retryable 4xx, or at shutdown.

Delivery guarantee: at-least-once to Slack per alert within ``max_attempts`` (a post whose reply
is lost is retried and may show twice); exactly one final mark per alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from upbit_pipeline.alerts.model import Alert, DeliveryMark
from upbit_pipeline.alerts.sinks import SlackError
from upbit_pipeline.errors import TerminalError

__all__ = ["Delivery", "DeliveryStats"]

log = logging.getLogger(__name__)

Sender = Callable[[list[Alert]], Awaitable[None]]
Marker = Callable[[DeliveryMark], None]


@dataclass
class DeliveryStats:
    """Counters of the sender: alerts delivered / marked undelivered, messages, retries."""

    submitted: int = 0
    delivered: int = 0
    undelivered: int = 0
    messages: int = 0
    attempts: int = 0
    retries: int = 0
    queue_full: int = 0

    @property
    def pending(self) -> int:
        return self.submitted - self.delivered - self.undelivered


class Delivery:
    """The queue and its sender task. ``submit`` from the event loop's thread only."""

    def __init__(
        self,
        sender: Sender,
        mark: Marker,
        *,
        max_queue: int = 10_000,
        interval_s: float = 1.0,
        max_attempts: int = 6,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 30.0,
        max_batch: int = 12,
        drain_timeout_s: float = 5.0,
    ) -> None:
        self._send = sender
        self._mark = mark
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=max_queue)
        self.interval_s = interval_s
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_batch = max_batch
        self.drain_timeout_s = drain_timeout_s
        self.stats = DeliveryStats()

    def submit(self, alert: Alert) -> None:
        """Queue ``alert`` for Slack. Never blocks; a full queue marks it undelivered now."""
        self.stats.submitted += 1
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.stats.queue_full += 1
            self._finish([alert], "undelivered", 0, "queue full")

    async def run(self, stop: asyncio.Event) -> DeliveryStats:
        """Send until ``stop`` is set, then drain for ``drain_timeout_s`` and mark the rest."""
        next_slot = 0.0
        deadline: float | None = None
        while True:
            if stop.is_set() and deadline is None:
                deadline = time.monotonic() + self.drain_timeout_s
            if deadline is not None and (self._queue.empty() or time.monotonic() >= deadline):
                break
            first = await self._next(stop, deadline)
            if first is None:
                continue
            wait = next_slot - time.monotonic()
            if wait > 0:
                await self._pause(wait, deadline)
            batch = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._deliver(batch, deadline)
            next_slot = time.monotonic() + self.interval_s
        rest = []
        while not self._queue.empty():
            rest.append(self._queue.get_nowait())
        if rest:
            self._finish(rest, "undelivered", 0, "shutdown before delivery")
        return self.stats

    async def _next(self, stop: asyncio.Event, deadline: float | None) -> Alert | None:
        if deadline is not None:
            return None if self._queue.empty() else self._queue.get_nowait()
        getter = asyncio.ensure_future(self._queue.get())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not getter.done():
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getter
        if getter.done() and not getter.cancelled():
            return getter.result()
        return None

    async def _pause(self, seconds: float, deadline: float | None) -> None:
        if deadline is not None:
            seconds = min(seconds, max(0.0, deadline - time.monotonic()))
        await asyncio.sleep(seconds)

    async def _deliver(self, batch: list[Alert], deadline: float | None) -> None:
        reason = ""
        for attempt in range(1, self.max_attempts + 1):
            self.stats.attempts += 1
            try:
                await self._send(batch)
            except SlackError as exc:
                reason = str(exc)
                if attempt == self.max_attempts:
                    break
                delay = exc.retry_after_s
                if delay is None:
                    delay = self.backoff_base_s * 2 ** (attempt - 1)
                delay = min(delay, self.backoff_max_s)
                if deadline is not None and time.monotonic() + delay > deadline:
                    break
                self.stats.retries += 1
                log.warning(
                    "slack delivery failed (%s), try %d/%d, retrying in %.1f s",
                    reason,
                    attempt,
                    self.max_attempts,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            except TerminalError as exc:
                reason = str(exc)
                self._finish(batch, "undelivered", attempt, reason)
                return
            self.stats.messages += 1
            self._finish(batch, "delivered", attempt, "")
            return
        self._finish(batch, "undelivered", attempt, reason)

    def _finish(self, batch: list[Alert], status: str, attempts: int, reason: str) -> None:
        now = int(time.time() * 1000)
        for alert in batch:
            if status == "delivered":
                self.stats.delivered += 1
            else:
                self.stats.undelivered += 1
                log.error(
                    "alert %s marked undelivered after %d tries: %s", alert.id, attempts, reason
                )
            self._mark(
                DeliveryMark(
                    id=alert.id,
                    status="delivered" if status == "delivered" else "undelivered",
                    attempts=attempts,
                    reason=reason,
                    at_ms=now,
                )
            )
