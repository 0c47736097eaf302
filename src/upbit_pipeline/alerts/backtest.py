"""``alert backtest`` and ``alert --replay``: the engine over history; same input, same alerts.

* :func:`run_backtest` runs the rules over ``[start, end)`` from the lake's raw trades, REST
  1-minute candles, or a file of candles (CSV export or REST JSON). The engine is first fed
  ``warmup`` of history quietly so thresholds and baselines are warm at ``start``, exactly as the
  worker warms up after a restart. This is how thresholds are tuned: edit the rules file, re-run,
  compare the counts per rule and market.
* :func:`run_replay` runs a recorded capture (cryptofeed recorder or raw frames, one per line)
  or the lake through the worker's own decode -> engine path.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from upbit_pipeline.alerts.config import RulesConfig, load_rules
from upbit_pipeline.alerts.engine import AlertEngine, EngineStats
from upbit_pipeline.alerts.feeds import (
    Event,
    candle_events,
    capture_frames,
    csv_candles,
    frame_events,
    lake_trade_events,
)
from upbit_pipeline.alerts.model import Alert
from upbit_pipeline.errors import UserError
from upbit_pipeline.settings import Settings
from upbit_pipeline.upbit.decode import decode_candles_rest
from upbit_pipeline.upbit.errors import MalformedFrameError
from upbit_pipeline.upbit.models import Candle
from upbit_pipeline.upbit.rest import UpbitRestClient

__all__ = ["BacktestResult", "feed", "run_backtest", "run_replay"]

DEFAULT_WARMUP = timedelta(hours=4)


@dataclass
class BacktestResult:
    """Alerts of a run with counts per rule, per market and per UTC day. ``str()`` is the report."""

    alerts: list[Alert]
    start: datetime | None = None
    end: datetime | None = None
    source: str = ""
    events: int = 0
    errors: int = 0
    stats: EngineStats = field(default_factory=EngineStats)

    def per_rule(self) -> Counter[str]:
        return Counter(a.rule for a in self.alerts)

    def per_market(self) -> Counter[str]:
        return Counter(a.market for a in self.alerts)

    def per_rule_day(self) -> Counter[tuple[str, str]]:
        return Counter((_day(a.event_ms), a.rule) for a in self.alerts)

    def __str__(self) -> str:
        lines = [f"{len(self.alerts)} alerts from {self.events:,} events ({self.source})"]
        for alert in self.alerts:
            when = datetime.fromtimestamp(alert.event_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
            lines.append(f"  {when}Z {alert.summary()}")
        lines.append("per rule:   " + _counts(self.per_rule()))
        lines.append("per market: " + _counts(self.per_market()))
        if self.errors:
            lines.append(f"undecodable frames skipped: {self.errors}")
        return "\n".join(lines)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key}={n}" for key, n in sorted(counter.items())) or "none"


def feed(engine: AlertEngine, events: Iterable[Event], start_ms: int | None = None) -> list[Alert]:
    """Run events through ``engine``; those before ``start_ms`` only warm it (no alerts)."""
    alerts: list[Alert] = []
    on_trade, on_ticker = engine.on_trade, engine.on_ticker
    engine.quiet = start_ms is not None
    for event in events:
        if engine.quiet and start_ms is not None and event.ts_ms >= start_ms:
            engine.quiet = False
        if event.kind == "trade":
            found = on_trade(event.market, event.ts_ms, event.price, event.volume)
        else:
            found = on_ticker(event.market, event.ts_ms, event.warning)
        if found:
            alerts.extend(found)
    engine.quiet = False
    return alerts


def _ms(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _file_candles(path: Path) -> list[Candle]:
    if path.suffix == ".csv":
        return csv_candles(path)
    data = json.loads(path.read_bytes())
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON array of 1-minute candles or a .csv export")
    return decode_candles_rest(path.read_bytes(), "1m")


async def _rest_candles(
    settings: Settings, start: datetime, end: datetime, markets: Sequence[str] | None
) -> list[Candle]:
    async with UpbitRestClient(settings.upbit.url) as client:
        if not markets:
            markets = [m.market for m in await client.markets() if m.quote == "KRW"]
        out: list[Candle] = []
        for market in markets:
            out.extend([c async for c in client.candles_range(market, "1m", start, end)])
    return out


def run_backtest(
    settings: Settings,
    start: datetime,
    end: datetime,
    markets: Sequence[str] | None = None,
    source: str | Path = "lake",
    *,
    rules: RulesConfig | None = None,
    warmup: timedelta = DEFAULT_WARMUP,
) -> BacktestResult:
    """Alerts the rules would have raised in ``[start, end)`` (UTC).

    ``source``: ``"lake"`` (raw trades under ``settings.lake.path``), ``"rest"`` (1-minute candles
    from ``settings.upbit.url``), or a path to a candle file (.csv export or REST JSON array).
    Candles of the ``warmup`` before ``start`` are fed first without alerting.
    """
    rules = rules or load_rules(settings.alerts.rules_file)
    t0, t1 = _ms(start - warmup), _ms(end)
    wanted = set(markets) if markets else None
    if source == "lake":
        events: list[Event] = lake_trade_events(settings.lake.path, t0, t1, wanted)
        label = f"lake {settings.lake.path}"
    else:
        if source == "rest":
            candles = asyncio.run(_rest_candles(settings, start - warmup, end, markets))
            label = f"REST candles {settings.upbit.url}"
        else:
            path = Path(source)
            if not path.is_file():
                raise UserError(f"backtest source not found: {path}")
            candles = _file_candles(path)
            label = str(path)
        candles = [
            c
            for c in candles
            if t0 <= _ms(c.start_utc) < t1 and (wanted is None or c.code in wanted)
        ]
        events = sorted(candle_events(candles), key=lambda e: (e.ts_ms, e.market))
    engine = AlertEngine(rules)
    alerts = feed(engine, events, _ms(start))
    return BacktestResult(alerts, start, end, label, len(events), 0, engine.stats)


def run_replay(
    settings: Settings,
    source: str | Path,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    markets: Sequence[str] | None = None,
    rules: RulesConfig | None = None,
) -> BacktestResult:
    """Replay a capture file (frames in arrival order) or ``"lake"`` through the engine.

    Frames decode exactly as in the worker; undecodable ones are counted and skipped. The same
    input and rules always give the same alerts (the engine has no clock).
    """
    rules = rules or load_rules(settings.alerts.rules_file)
    wanted = set(markets) if markets else None
    errors = 0
    events: list[Event] = []
    if source == "lake":
        if start is None or end is None:
            raise UserError("--replay lake needs --from and --to")
        events = lake_trade_events(settings.lake.path, _ms(start), _ms(end), wanted)
        label = f"lake {settings.lake.path}"
    else:
        path = Path(source)
        if not path.is_file():
            raise UserError(f"replay capture not found: {path}")
        for frame in capture_frames(path):
            try:
                found = frame_events(frame)
            except MalformedFrameError:
                errors += 1
                continue
            events.extend(e for e in found if wanted is None or e.market in wanted)
        label = str(path)
    engine = AlertEngine(rules)
    alerts = feed(engine, events)
    return BacktestResult(alerts, start, end, label, len(events), errors, engine.stats)
