"""``upbit-pipeline ops watch``: application-level watchdogs that post to Slack.

systemd sees processes; it cannot see that a perfectly healthy producer receives nothing from
Upbit, or that the consumer on the *other* VM died with its machine. This loop watches the data:

* **no trades**: no record on the trade topic for ``no_trades_s`` (Upbit trades KRW-BTC around
  the clock, so silence means the stream or the producer VM is broken);
* **consumer stalled**: a lake-group partition whose committed offset has not moved for
  ``consumer_stall_s`` *while a record waits at that offset* (``probe.consumer_progress``: read
  from the log, not from watermarks). An idle stream (producer down) is not a stalled consumer;
* **broker unreachable**.

Each condition posts once when it starts, again every ``repeat_s`` while it lasts, and once when
it clears. Run one ``ops watch`` on each VM: the producer VM then notices a dead consumer VM
and the consumer VM a dead producer VM.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from upbit_pipeline.ops.probe import BrokerInfo, broker_info, channel_ages, consumer_progress
from upbit_pipeline.ops.slack import post_text
from upbit_pipeline.service import Liveness
from upbit_pipeline.settings import Settings
from upbit_pipeline.streaming.topics import TopicNames

__all__ = ["Notice", "WatchOptions", "Watcher"]

log = logging.getLogger(__name__)


class StopFlag(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass(frozen=True)
class WatchOptions:
    interval_s: float = 30.0
    no_trades_s: float = 300.0
    consumer_stall_s: float = 300.0
    repeat_s: float = 3600.0
    trades: bool = True
    consumer: bool = True


@dataclass(frozen=True)
class Notice:
    condition: str  # broker / trades / consumer
    kind: str  # "alert" or "recovered"
    text: str
    posted: bool


@dataclass
class _Condition:
    bad_since: float | None = None
    alerted_at: float | None = None


@dataclass
class Watcher:
    """Evaluate the conditions with :meth:`check_once`; :meth:`run` loops until stopped."""

    settings: Settings
    webhook: str | None
    options: WatchOptions = field(default_factory=WatchOptions)
    host: str = field(default_factory=socket.gethostname)
    post: Callable[[str, str], bool] = post_text
    notices: list[Notice] = field(default_factory=list)
    checks: int = 0
    _conditions: dict[str, _Condition] = field(default_factory=dict)
    _progress_at: dict[tuple[str, int], tuple[int | None, float]] = field(default_factory=dict)

    def check_once(self, now: float | None = None) -> list[Notice]:
        now = time.monotonic() if now is None else now
        self.checks += 1
        out: list[Notice] = []
        info = broker_info(self.settings.broker)
        bootstrap = self.settings.broker.bootstrap_servers
        out += self._update(
            "broker",
            None if info.reachable else f"broker {bootstrap} unreachable ({info.error})",
            now,
        )
        if not info.reachable:
            return out  # nothing else can be judged without it
        names = TopicNames.of(self.settings.broker)
        if self.options.trades:
            topic = names.channel("trade")
            age = channel_ages(
                self.settings.broker, [topic], info=info, lookback_s=self.options.no_trades_s * 4
            )[topic]
            problem = None
            if age.age_s is None or age.age_s > self.options.no_trades_s:
                seen = "none found" if age.age_s is None else f"last one {age.age_s:.0f} s ago"
                problem = (
                    f"no trades from any market for more than {self.options.no_trades_s:.0f} s "
                    f"on {topic} ({seen}): is the producer (or its VM, or Upbit) down?"
                )
            out += self._update("trades", problem, now)
        if self.options.consumer:
            out += self._update("consumer", self._consumer_problem(info, now), now)
        return out

    def _consumer_problem(self, info: BrokerInfo, now: float) -> str | None:
        names = TopicNames.of(self.settings.broker)
        topics = [names.channel(c) for c in self.settings.producer.channels]
        group = self.settings.lake.consumer_group
        progress = consumer_progress(self.settings.broker, group, topics, info=info)
        stuck = []
        for p in progress.partitions:
            key = (p.topic, p.partition)
            previous = self._progress_at.get(key)
            if previous is None or previous[0] != p.committed:
                self._progress_at[key] = (p.committed, now)
                continue
            if p.waiting and now - previous[1] >= self.options.consumer_stall_s:
                stuck.append(f"{p.topic}[{p.partition}]@{p.committed}")
        if not stuck:
            return None
        shown = ", ".join(stuck[:6]) + (f" and {len(stuck) - 6} more" if len(stuck) > 6 else "")
        return (
            f"lake consumer (group {group}) not progressing for more than "
            f"{self.options.consumer_stall_s:.0f} s while records are waiting: {shown}. "
            "Is the consumer (or its VM) down?"
        )

    def _update(self, name: str, problem: str | None, now: float) -> list[Notice]:
        cond = self._conditions.setdefault(name, _Condition())
        if problem is None:
            if cond.alerted_at is None:
                cond.bad_since = None
                return []
            cond.bad_since = cond.alerted_at = None
            return [self._send(name, "recovered", f":white_check_mark: {name} OK again")]
        if cond.bad_since is None:
            cond.bad_since = now
        if cond.alerted_at is not None and now - cond.alerted_at < self.options.repeat_s:
            return []
        again = " (still)" if cond.alerted_at is not None else ""
        cond.alerted_at = now
        return [self._send(name, "alert", f":rotating_light: {problem}{again}")]

    def _send(self, condition: str, kind: str, text: str) -> Notice:
        text = f"{text} [upbit-pipeline ops watch on `{self.host}`]"
        posted = self.post(self.webhook, text) if self.webhook else False
        level = logging.WARNING if kind == "alert" else logging.INFO
        log.log(level, "%s %s: %s", condition, kind, text)
        notice = Notice(condition, kind, text, posted)
        self.notices.append(notice)
        return notice

    def status_line(self) -> str:
        bad = [n for n, c in self._conditions.items() if c.alerted_at is not None]
        return f"{self.checks} checks; " + (f"alerting: {', '.join(bad)}" if bad else "all OK")

    def run(self, stop: StopFlag, liveness: Liveness | None = None) -> None:
        """Check every ``interval_s`` until ``stop``; pings the watchdog from this loop."""
        live = liveness or Liveness.disabled()
        live.ready("watching")
        step = min(self.options.interval_s, live.interval_s or self.options.interval_s)
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    self.check_once()
                except Exception:  # a probe bug must not end the watch; systemd sees the log
                    log.exception("watch check failed")
                live.ping(self.status_line)
                while not stop.is_set():
                    left = self.options.interval_s - (time.monotonic() - started)
                    if left <= 0:
                        break
                    stop.wait(min(step, left))
                    live.ping(self.status_line)
        finally:
            live.stopping()
