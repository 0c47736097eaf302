"""``upbit-pipeline status``: the health of every part, as a table or JSON.

Each part is one :class:`Check` with a state (``ok``, ``warn``, ``fail``, ``unknown``), a one-line
summary and its data. The checks read what the parts leave behind, never the processes
themselves, so ``status`` works from any machine that reaches the broker and the lake (the
producer and consumer VMs are apart):

* broker: metadata answered;
* ``channel:*``: the newest record per channel topic, by reading records (``probe.py`` explains
  why watermarks are not used);
* consumer: the lake group's committed offsets, and whether records wait at them;
* lake: the newest raw file;
* alerts: the last alert of the JSONL log and its delivery counts;
* batch: the newest build markers;
* report: the newest daily report file.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from upbit_pipeline.alerts.sinks import read_jsonl
from upbit_pipeline.alerts.worker import jsonl_status
from upbit_pipeline.batch.markers import read_marker
from upbit_pipeline.batch.run import STEPS
from upbit_pipeline.lake import layout
from upbit_pipeline.lake.storage import LakeStorage, open_lake
from upbit_pipeline.ops.probe import BrokerInfo, broker_info, channel_ages, consumer_progress
from upbit_pipeline.settings import Settings
from upbit_pipeline.streaming.topics import TopicNames

__all__ = ["Check", "State", "StatusOptions", "StatusReport", "collect_status"]

State = Literal["ok", "warn", "fail", "unknown"]
_ORDER: dict[State, int] = {"ok": 0, "unknown": 1, "warn": 2, "fail": 3}


@dataclass(frozen=True)
class StatusOptions:
    """Thresholds; the defaults suit a live exchange (KRW-BTC trades every second)."""

    stale_after_s: float = 120.0  # a channel's newest record older than this: warn
    lookback_s: float = 86_400.0  # nothing newer than this: fail
    consumer_waiting_after_s: float | None = None  # None: lake.flush_interval_s * 2 + 30
    batch_days: int = 7  # how far back to look for markers


@dataclass(frozen=True)
class Check:
    name: str
    state: State
    summary: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusReport:
    checks: list[Check]
    generated_at: str

    @property
    def state(self) -> State:
        return max((c.state for c in self.checks), key=_ORDER.__getitem__, default="unknown")

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "generated_at": self.generated_at,
            "checks": [asdict(c) for c in self.checks],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str, sort_keys=True)

    def render(self) -> Any:
        """A rich Table (the CLI prints it)."""
        from rich.table import Table

        colours = {"ok": "green", "warn": "yellow", "fail": "red", "unknown": "dim"}
        table = Table(title=f"upbit-pipeline status ({self.generated_at})")
        table.add_column("part")
        table.add_column("state")
        table.add_column("detail", overflow="fold")
        for c in self.checks:
            table.add_row(c.name, f"[{colours[c.state]}]{c.state}[/]", c.summary)
        return table


def _iso(ms: int | float | None) -> str | None:
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


# -- the checks ---------------------------------------------------------------------------------


def _broker_check(info: BrokerInfo, settings: Settings) -> Check:
    data = {"bootstrap_servers": settings.broker.bootstrap_servers, "brokers": info.brokers}
    if not info.reachable:
        return Check("broker", "fail", f"unreachable: {info.error}", data)
    return Check("broker", "ok", f"{info.brokers} broker(s), {len(info.topics)} topics", data)


def _channel_checks(info: BrokerInfo, settings: Settings, opts: StatusOptions) -> list[Check]:
    names = TopicNames.of(settings.broker)
    channels = list(settings.producer.channels)
    if not info.reachable:
        return [Check(f"channel:{c}", "unknown", "broker unreachable") for c in channels]
    topics = [names.channel(c) for c in channels]
    ages = channel_ages(settings.broker, topics, info=info, lookback_s=opts.lookback_s)
    checks = []
    for channel, topic in zip(channels, topics, strict=True):
        age = ages[topic]
        data = {
            "topic": topic,
            "last_event": _iso(age.last_ms),
            "age_s": age.age_s,
            "records_read": age.records_read,
            "scan_complete": age.complete,
        }
        if age.age_s is None:
            state: State = "fail"
            summary = f"no record in the last {opts.lookback_s / 3600:.0f} h"
        else:
            state = "ok" if age.age_s <= opts.stale_after_s else "warn"
            summary = f"last event {_age(age.age_s)} ({_iso(age.last_ms)})"
            if not age.complete:
                summary += " (scan budget hit: at least this recent)"
        checks.append(Check(f"channel:{channel}", state, summary, data))
    return checks


def _consumer_check(info: BrokerInfo, settings: Settings, opts: StatusOptions) -> Check:
    group = settings.lake.consumer_group
    if not info.reachable:
        return Check("consumer", "unknown", "broker unreachable", {"group": group})
    names = TopicNames.of(settings.broker)
    topics = [names.channel(c) for c in settings.producer.channels]
    progress = consumer_progress(settings.broker, group, topics, info=info)
    limit = opts.consumer_waiting_after_s or settings.lake.flush_interval_s * 2 + 30
    now_ms = time.time() * 1000
    waiting = progress.waiting
    oldest = min((p.waiting_since_ms or now_ms for p in waiting), default=None)
    oldest_age = (now_ms - oldest) / 1000 if oldest is not None else None
    committed = sum(1 for p in progress.partitions if p.committed is not None)
    data = {
        "group": group,
        "partitions": [asdict(p) for p in progress.partitions],
        "waiting_partitions": len(waiting),
        "oldest_waiting_event": _iso(oldest),
    }
    head = f"group {group}: {committed}/{len(progress.partitions)} partitions committed"
    if not waiting:
        return Check("consumer", "ok", f"{head}, caught up", data)
    state: State = "warn" if oldest_age is not None and oldest_age > limit else "ok"
    return Check(
        "consumer",
        state,
        f"{head}, records waiting on {len(waiting)} partition(s) since {_age(oldest_age)}",
        data,
    )


def _modified(storage: LakeStorage, rel: str) -> float | None:
    try:
        info = storage.fs.info(storage.full(rel))
    except (OSError, ValueError):
        return None
    for key in ("mtime", "updated", "LastModified", "last_modified"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def _lake_check(storage: LakeStorage, settings: Settings) -> Check:
    """Newest raw file: look at today's and yesterday's UTC folders only (cheap on GCS)."""
    today = datetime.now(UTC).date()
    newest: tuple[str, str] | None = None  # (date/hour folder, path)
    for channel in settings.producer.channels:
        for day in (today, today - timedelta(days=1)):
            files = [
                p
                for p in storage.find(layout.date_dir(layout.RAW, channel, day))
                if layout.parse_file_name(p) is not None
            ]
            if files:
                best = max(files, key=lambda p: (p.rsplit("/", 1)[0], p))
                folder = best.rsplit("/", 1)[0].split("/", 2)[-1]
                if newest is None or (folder, best) > newest:
                    newest = (folder, best)
                break
    if newest is None:
        return Check("lake", "warn", "no raw file for today or yesterday (UTC)", {})
    path = newest[1]
    mtime = _modified(storage, path)
    age = time.time() - mtime if mtime is not None else None
    data = {"last_file": path, "written_at": _iso(mtime * 1000 if mtime else None)}
    return Check("lake", "ok", f"{path} (written {_age(age)})", data)


def _alerts_check(settings: Settings) -> Check:
    path = settings.alerts.jsonl_path
    if not path.exists():
        return Check("alerts", "unknown", f"no alert log at {path}", {"path": str(path)})
    alerts, _marks = read_jsonl(path)
    counts = jsonl_status(path)
    data: dict[str, Any] = {"path": str(path), **counts}
    if not alerts:
        return Check("alerts", "ok", "no alert raised yet", data)
    last = max(alerts, key=lambda a: a.event_ms)
    data["last"] = {"id": last.id, "rule": last.rule, "market": last.market,
                    "event": _iso(last.event_ms)}  # fmt: skip
    state: State = "warn" if counts["undelivered"] else "ok"
    return Check(
        "alerts",
        state,
        f"last {last.rule} {last.market} at {_iso(last.event_ms)}; {counts['alerts']} alerts, "
        f"{counts['delivered']} delivered, {counts['undelivered']} undelivered",
        data,
    )


def _batch_check(storage: LakeStorage, opts: StatusOptions) -> Check:
    today = datetime.now(UTC).date()
    for back in range(opts.batch_days + 1):
        day = today - timedelta(days=back)
        markers = {step: read_marker(storage, day, step) for step in STEPS}
        found = {step: m for step, m in markers.items() if m is not None}
        if not found:
            continue
        steps = {
            step: {"status": m.status, "finished_at": m.finished_at, "error": m.error}
            for step, m in found.items()
        }
        failed = [s for s, m in found.items() if not m.ok]
        state: State = "fail" if failed else ("ok" if len(found) == len(STEPS) else "warn")
        parts = ", ".join(f"{s} {m.status}" for s, m in found.items())
        return Check("batch", state, f"{day}: {parts}", {"date": day.isoformat(), "steps": steps})
    return Check("batch", "unknown", f"no build marker in the last {opts.batch_days} days", {})


def _report_check(storage: LakeStorage) -> Check:
    dates: list[date] = []
    for path in storage.find(layout.REPORTS):
        for part in path.split("/"):
            if part.startswith("date="):
                with contextlib.suppress(ValueError):
                    dates.append(date.fromisoformat(part[5:]))
    if not dates:
        return Check("report", "unknown", "no report written yet", {})
    day = max(dates)
    files = storage.find(f"{layout.REPORTS}/date={day.isoformat()}")
    mtime = max((m for m in (_modified(storage, f) for f in files) if m is not None), default=None)
    written = _iso(mtime * 1000 if mtime else None)
    data = {"date": day.isoformat(), "files": files, "written_at": written}
    return Check("report", "ok", f"{day}: {', '.join(f.rsplit('/', 1)[-1] for f in files)}", data)


def _safe(name: str, fn: Any, *args: Any) -> Check:
    try:
        check: Check = fn(*args)
    except Exception as exc:  # one broken part must not hide the others
        return Check(name, "unknown", f"check failed: {type(exc).__name__}: {exc}"[:300], {})
    return check


def collect_status(
    settings: Settings, options: StatusOptions | None = None, *, parts: Sequence[str] = ()
) -> StatusReport:
    """Every check (or only those named in ``parts``: broker, channels, consumer, lake,
    alerts, batch, report)."""
    opts = options or StatusOptions()
    wanted = set(parts) or {"broker", "channels", "consumer", "lake", "alerts", "batch", "report"}
    checks: list[Check] = []
    info = broker_info(settings.broker)
    if "broker" in wanted:
        checks.append(_broker_check(info, settings))
    if "channels" in wanted:
        try:
            checks += _channel_checks(info, settings, opts)
        except Exception as exc:
            checks.append(Check("channels", "unknown", f"check failed: {type(exc).__name__}"))
    if "consumer" in wanted:
        checks.append(_safe("consumer", _consumer_check, info, settings, opts))
    storage: LakeStorage | None = None
    try:
        storage = open_lake(settings.lake.path)
    except Exception as exc:
        checks.append(Check("lake", "fail", f"cannot open the lake: {type(exc).__name__}"))
    if storage is not None:
        if "lake" in wanted:
            checks.append(_safe("lake", _lake_check, storage, settings))
        if "batch" in wanted:
            checks.append(_safe("batch", _batch_check, storage, opts))
        if "report" in wanted:
            checks.append(_safe("report", _report_check, storage))
    if "alerts" in wanted:
        checks.append(_safe("alerts", _alerts_check, settings))
    generated = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return StatusReport(checks, generated)
