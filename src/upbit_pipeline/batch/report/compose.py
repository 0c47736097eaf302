"""One summary model of the daily report, rendered three ways (Slack, console, HTML).

Everything a renderer shows is decided here, once, so the three outputs cannot disagree:
the headline (first line), which markets make each list, the market-wide figures. Renderers only
format. Days are UTC trading days (D = [D 00:00 UTC, D+1 00:00 UTC) = [D 09:00 KST, D+1 09:00
KST)); every time shown to a person is KST, the zone Upbit's users live in.

Percentiles are each market's ``own_percentile`` from ``gold_market_daily_rank``: today's
volatility against the market's *own previous* 30 days, today excluded. (The original report
printed the rank of the very row it had picked as the maximum, hence always "100.0".) A market
without history has no percentile, and the report says "new" rather than inventing one.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final

from upbit_pipeline.batch.report.data import (
    AlertRow,
    CompletenessRow,
    GoldDay,
    MarketDay,
    ReportKind,
    Resolution,
)

__all__ = [
    "KST",
    "AlertSummary",
    "CompletenessSummary",
    "Heatmap",
    "MarketSummary",
    "Report",
    "compose",
    "fmt_krw",
    "fmt_pct",
    "headlines",
    "kst_window",
    "market_label",
    "move_time_kst",
    "percentile_text",
]

KST: Final = timedelta(hours=9)
TOP_VOL: Final = 10
TOP_MOVERS: Final = 5
TOP_MOVES: Final = 5


@dataclass(frozen=True)
class MarketSummary:
    """Market-wide figures of the shown day; volatilities are daily fractions."""

    markets: int
    up: int
    down: int
    flat: int
    median_vol: float | None
    median_vol_annualized: float | None
    total_krw: float  # KRW-quoted markets only (other quotes are not KRW amounts)


@dataclass(frozen=True)
class AlertSummary:
    """v1 real-time alert counts of the shown day."""

    total: int
    price_move: int
    volume_spike: int
    flags: int
    critical: int
    markets: int
    top: list[AlertRow]


@dataclass(frozen=True)
class CompletenessSummary:
    """Holes the completeness model shows for the shown day (``None`` in the report: none)."""

    markets: int
    markets_with_holes: int
    missing_in_stream_minutes: int
    missing_in_rest_minutes: int
    mismatched_minutes: int
    worst: list[CompletenessRow]


@dataclass(frozen=True)
class Heatmap:
    """Own-percentile cells (0-100, None = no value) of the top markets over recent days."""

    markets: list[str]
    days: list[date]
    cells: dict[tuple[str, date], float | None]


@dataclass(frozen=True)
class Report:
    """The report of one requested day. ``shown`` is the day whose figures appear (None: none)."""

    kind: ReportKind
    requested: date
    shown: date | None
    headline: str  # the first line of every output
    headline_ko: str
    reasons: list[str]  # why days were passed over (fallback, no data)
    summary: MarketSummary | None = None
    top_vol: list[MarketDay] = field(default_factory=list)
    gainers: list[MarketDay] = field(default_factory=list)
    losers: list[MarketDay] = field(default_factory=list)
    moves: list[MarketDay] = field(default_factory=list)
    alerts: AlertSummary | None = None
    completeness: CompletenessSummary | None = None
    completeness_missing: bool = False  # gold has markets but the completeness model has no rows
    heatmap: Heatmap | None = None
    names: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)


def kst_window(day: date) -> tuple[datetime, datetime]:
    """The trading day ``day`` as KST wall times: D 09:00 to D+1 09:00."""
    start = datetime(day.year, day.month, day.day) + KST
    return start, start + timedelta(days=1)


def fmt_pct(fraction: float | None, *, signed: bool = True, digits: int = 2) -> str:
    """A fraction as percent text (0.0123 -> "+1.23%"); "-" for a missing value."""
    if fraction is None:
        return "-"
    return f"{100 * fraction:+.{digits}f}%" if signed else f"{100 * fraction:.{digits}f}%"


def fmt_krw(amount: float) -> tuple[str, str]:
    """(English, Korean) renderings of a KRW amount: ("₩12.3B", "123억 원")."""
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if abs(amount) >= size:
            english = f"₩{amount / size:,.1f}{suffix}"
            break
    else:
        english = f"₩{amount:,.0f}"
    if abs(amount) >= 1e12:
        korean = f"{amount / 1e12:,.2f}조 원"
    elif abs(amount) >= 1e8:
        korean = f"{amount / 1e8:,.0f}억 원"
    elif abs(amount) >= 1e4:
        korean = f"{amount / 1e4:,.0f}만 원"
    else:
        korean = f"{amount:,.0f}원"
    return english, korean


def market_label(m: MarketDay) -> str:
    """``KRW-BTC 비트코인`` (the Korean name is what Upbit's users know the market by)."""
    return f"{m.market} {m.korean_name}" if m.korean_name else m.market


def headlines(resolution: Resolution) -> tuple[str, str]:
    """(English, Korean) first line. The fallback wording is the issue's promise verbatim."""
    day, shown = resolution.requested, resolution.shown
    if resolution.kind == "normal":
        start, end = kst_window(day)
        return (
            f"Upbit trading day {day} ({start:%m-%d %H:%M} – {end:%m-%d %H:%M} KST)",
            f"업비트 거래일 {day} 요약 ({start:%m-%d %H:%M} – {end:%m-%d %H:%M} KST)",
        )
    if resolution.kind == "fallback":
        return (
            f"data for {day} unavailable — showing {shown}",
            f"{day} 데이터를 사용할 수 없어 {shown} 데이터를 표시합니다",
        )
    return (
        f"no data: nothing usable for {day} or the days before it",
        f"데이터 없음: {day} 및 이전 며칠의 데이터를 사용할 수 없습니다",
    )


def _reasons(resolution: Resolution) -> list[str]:
    reasons = [] if resolution.warehouse_error is None else [resolution.warehouse_error]
    for check in resolution.checks:
        if not check.usable and check.reason not in reasons:
            reasons.append(check.reason)
    return reasons


def _summary(markets: Sequence[MarketDay]) -> MarketSummary:
    changes = [m.change for m in markets if m.change is not None]
    vols = [m.realized_vol for m in markets if m.realized_vol is not None]
    annual = [m.realized_vol_annualized for m in markets if m.realized_vol_annualized is not None]
    return MarketSummary(
        markets=len(markets),
        up=sum(1 for c in changes if c > 0),
        down=sum(1 for c in changes if c < 0),
        flat=sum(1 for c in changes if c == 0),
        median_vol=statistics.median(vols) if vols else None,
        median_vol_annualized=statistics.median(annual) if annual else None,
        total_krw=sum(m.volume_krw for m in markets if m.market.startswith("KRW-")),
    )


def _alerts(rows: Sequence[AlertRow]) -> AlertSummary:
    return AlertSummary(
        total=sum(r.alert_count for r in rows),
        price_move=sum(r.price_move_alerts for r in rows),
        volume_spike=sum(r.volume_spike_alerts for r in rows),
        flags=sum(r.flag_alerts for r in rows),
        critical=sum(r.critical_alerts for r in rows),
        markets=len(rows),
        top=sorted(rows, key=lambda r: (-r.alert_count, r.market))[:TOP_MOVERS],
    )


def _completeness(rows: Sequence[CompletenessRow]) -> CompletenessSummary | None:
    holes = [r for r in rows if r.has_holes]
    if not holes:
        return None
    return CompletenessSummary(
        markets=len(rows),
        markets_with_holes=len(holes),
        missing_in_stream_minutes=sum(r.missing_in_stream_minutes for r in holes),
        missing_in_rest_minutes=sum(r.missing_in_rest_minutes for r in holes),
        mismatched_minutes=sum(r.mismatched_minutes for r in holes),
        worst=sorted(
            holes,
            key=lambda r: (
                r.completeness_pct if r.completeness_pct is not None else -1.0,
                r.market,
            ),
        )[:TOP_MOVERS],
    )


def compose(resolution: Resolution, gold: GoldDay | None) -> Report:
    """The report for ``resolution`` from ``gold`` (the rows of ``resolution.shown``)."""
    english, korean = headlines(resolution)
    base = Report(
        kind=resolution.kind,
        requested=resolution.requested,
        shown=resolution.shown,
        headline=english,
        headline_ko=korean,
        reasons=_reasons(resolution),
    )
    if gold is None or resolution.shown is None:
        return base
    markets = gold.markets
    with_vol = [m for m in markets if m.realized_vol is not None]
    top_vol = sorted(with_vol, key=lambda m: (-(m.realized_vol or 0.0), m.market))[:TOP_VOL]
    with_change = [m for m in markets if m.change is not None]
    gainers = sorted(
        (m for m in with_change if (m.change or 0.0) > 0),
        key=lambda m: (-(m.change or 0.0), m.market),
    )[:TOP_MOVERS]
    losers = sorted(
        (m for m in with_change if (m.change or 0.0) < 0),
        key=lambda m: (m.change or 0.0, m.market),
    )[:TOP_MOVERS]
    moves = sorted(
        (m for m in markets if m.largest_1m_move is not None),
        key=lambda m: (-abs(m.largest_1m_move or 0.0), m.market),
    )[:TOP_MOVES]
    cells: dict[tuple[str, date], float | None] = {
        (p.market, p.day): p.own_percentile for p in gold.history
    }
    heatmap = Heatmap([m.market for m in top_vol], list(gold.history_days), cells)
    return Report(
        kind=base.kind,
        requested=base.requested,
        shown=base.shown,
        headline=base.headline,
        headline_ko=base.headline_ko,
        reasons=base.reasons,
        summary=_summary(markets),
        top_vol=top_vol,
        gainers=gainers,
        losers=losers,
        moves=moves,
        alerts=_alerts(gold.alerts),
        completeness=_completeness(gold.completeness),
        completeness_missing=bool(markets) and not gold.completeness,
        heatmap=heatmap,
        names={m.market: (m.korean_name, m.english_name) for m in markets},
    )


def percentile_text(m: MarketDay) -> str:
    """``p87 (30d)``, or ``new (no history)`` -- never a made-up 100."""
    if m.own_percentile is None:
        return "new (no history) / 신규"
    return f"p{m.own_percentile:.0f} of own {m.history_days}d"


def move_time_kst(m: MarketDay) -> str:
    """KST wall time of the minute that ended the largest 1-minute move."""
    if m.largest_1m_move_at_utc is None:
        return "-"
    return f"{m.largest_1m_move_at_utc + KST:%m-%d %H:%M} KST"
