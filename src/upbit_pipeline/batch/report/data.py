"""Which trading day the report may show, and that day's gold rows.

**The decision comes from the build marker, never from "some rows exist".** A gold build that
failed half-way leaves rows behind (``gold_market_daily`` is rebuilt before the rank model fails),
and a table that is being rebuilt may be half empty; only the marker the batch writes *last*
says whether the day's gold is whole. A day is *usable* when

1. its gold marker ``_batch/date=D/gold.json`` exists and says ``ok``;
2. that marker counted at least one ``gold_market_daily`` row (an empty day is no report);
3. the warehouse holds, for D, exactly the rows the marker counted in every gold model (a
   warehouse restored from an older copy, rebuilt by hand, or changed since the build is not
   the one the marker vouches for).

The report shows D when D is usable, else the latest usable day among the ``max_fallback_days``
days before D (a *fallback*), else nothing (*no data*). The warehouse is opened read-only; when
it cannot be opened at all (missing, or locked by a running dbt build) no day is usable.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import duckdb

from upbit_pipeline.batch.markers import StepMarker, read_marker
from upbit_pipeline.lake.storage import LakeStorage, open_lake
from upbit_pipeline.settings import Settings

__all__ = [
    "GOLD_MODELS",
    "AlertRow",
    "CompletenessRow",
    "DayCheck",
    "GoldDay",
    "MarketDay",
    "PercentilePoint",
    "ReportKind",
    "Resolution",
    "check_day",
    "gold_ready",
    "load_gold_day",
    "open_warehouse",
    "resolve_day",
]

log = logging.getLogger(__name__)

ReportKind = Literal["normal", "fallback", "no_data"]

GOLD_MODELS: Final = (
    "gold_market_daily",
    "gold_market_daily_rank",
    "gold_anomalies_daily",
    "gold_data_completeness",
)
_REASON_CHARS: Final = 200


@dataclass(frozen=True)
class DayCheck:
    """Whether one day's gold may be shown; ``reason`` says why not (empty when usable)."""

    day: date
    usable: bool
    reason: str = ""
    marker: StepMarker | None = None


@dataclass(frozen=True)
class Resolution:
    """What the report shows: ``shown`` is None for no data. ``checks`` lists every day looked
    at, the requested day first, so the message can say why each was passed over."""

    kind: ReportKind
    requested: date
    shown: date | None
    checks: tuple[DayCheck, ...]
    warehouse_error: str | None = None

    @property
    def requested_check(self) -> DayCheck:
        return self.checks[0]


@dataclass(frozen=True)
class MarketDay:
    """One market's gold figures for the shown day (fractions, KRW; see data-dictionary.md)."""

    market: str
    korean_name: str | None
    english_name: str | None
    close_price: float | None
    change: float | None  # close / previous close - 1 (Upbit's change rate), else close/open - 1
    volume_krw: float
    realized_vol: float | None  # daily fraction
    realized_vol_annualized: float | None
    largest_1m_move: float | None  # signed log return, fraction
    largest_1m_move_at_utc: datetime | None
    own_percentile: float | None  # 0-100 against its own previous 30 days; None without history
    history_days: int
    cross_rank: int | None


@dataclass(frozen=True)
class AlertRow:
    """Real-time (v1) alerts of one market on the shown day, from gold_anomalies_daily."""

    market: str
    alert_count: int
    price_move_alerts: int
    volume_spike_alerts: int
    flag_alerts: int
    critical_alerts: int


@dataclass(frozen=True)
class CompletenessRow:
    """Stream against REST for one market on the shown day, from gold_data_completeness."""

    market: str
    rest_minutes: int
    stream_minutes: int
    missing_in_stream_minutes: int
    missing_in_rest_minutes: int
    mismatched_minutes: int
    completeness_pct: float | None

    @property
    def has_holes(self) -> bool:
        return (
            self.missing_in_stream_minutes > 0
            or self.missing_in_rest_minutes > 0
            or self.mismatched_minutes > 0
        )


@dataclass(frozen=True)
class PercentilePoint:
    """One cell of the percentile heatmap (market x trading day)."""

    market: str
    day: date
    own_percentile: float | None


@dataclass(frozen=True)
class GoldDay:
    """Everything the report reads from gold for one day."""

    day: date
    markets: list[MarketDay]
    alerts: list[AlertRow]
    completeness: list[CompletenessRow]
    history: list[PercentilePoint] = field(default_factory=list)
    history_days: list[date] = field(default_factory=list)


@contextlib.contextmanager
def open_warehouse(path: Path) -> Iterator[tuple[duckdb.DuckDBPyConnection | None, str | None]]:
    """``(connection, None)`` read-only, or ``(None, why)`` when the file cannot be read.

    Never creates the file (``duckdb.connect`` would), and never raises for a missing or locked
    warehouse: the report must still go out, saying there is no data and why.
    """
    if not path.is_file():
        yield None, f"warehouse {path} does not exist"
        return
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        yield None, f"warehouse {path} could not be opened read-only ({type(exc).__name__})"
        return
    try:
        yield con, None
    finally:
        con.close()


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("select table_name from duckdb_tables() where schema_name = 'main'")
    return {str(r[0]) for r in rows.fetchall()}


def _rows_for_day(con: duckdb.DuckDBPyConnection, table: str, day: date) -> int:
    # table names come from GOLD_MODELS (constants), never from input
    got = con.execute(f"select count(*) from {table} where trading_date = ?", [day]).fetchone()
    return int(got[0]) if got else 0


def _short(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    first = lines[0] if lines else "unknown error"
    return first if len(first) <= _REASON_CHARS else first[: _REASON_CHARS - 1] + "…"


def check_day(lake: LakeStorage, con: duckdb.DuckDBPyConnection | None, day: date) -> DayCheck:
    """Apply the three rules of the module docstring to ``day``."""
    marker = read_marker(lake, day, "gold")
    if marker is None:
        return DayCheck(day, False, f"gold for {day} was never built (no build marker)")
    if not marker.ok:
        return DayCheck(
            day,
            False,
            f"gold build for {day} failed at {marker.finished_at}: {_short(marker.error)}",
            marker,
        )
    if marker.counts.get("gold_market_daily", 0) <= 0:
        return DayCheck(
            day, False, f"gold for {day} is empty (its build counted no markets)", marker
        )
    if con is None:
        return DayCheck(day, False, "the warehouse cannot be read", marker)
    present = _tables(con)
    for model in GOLD_MODELS:
        expected = marker.counts.get(model)
        if expected is None:
            return DayCheck(
                day, False, f"gold for {day} is incomplete: {model} was not built", marker
            )
        if model not in present:
            return DayCheck(day, False, f"gold for {day} is incomplete: no table {model}", marker)
        actual = _rows_for_day(con, model, day)
        if actual != expected:
            return DayCheck(
                day,
                False,
                f"gold for {day} is incomplete: {model} holds {actual} rows, "
                f"its build recorded {expected}",
                marker,
            )
    return DayCheck(day, True, "", marker)


def resolve_day(
    lake: LakeStorage,
    con: duckdb.DuckDBPyConnection | None,
    day: date,
    *,
    max_fallback_days: int = 7,
    warehouse_error: str | None = None,
) -> Resolution:
    """Normal when ``day`` is usable; else the latest usable earlier day; else no data.

    The search goes back at most ``max_fallback_days``: a week-old summary posted as the
    morning report misleads more than a clear "no data" message does.
    """
    checks = [check_day(lake, con, day)]
    if checks[0].usable:
        return Resolution("normal", day, day, tuple(checks), warehouse_error)
    for back in range(1, max_fallback_days + 1):
        check = check_day(lake, con, day - timedelta(days=back))
        checks.append(check)
        if check.usable:
            return Resolution("fallback", day, check.day, tuple(checks), warehouse_error)
    return Resolution("no_data", day, None, tuple(checks), warehouse_error)


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def load_gold_day(
    con: duckdb.DuckDBPyConnection, day: date, *, heatmap_days: int = 14, heatmap_markets: int = 10
) -> GoldDay:
    """Read the shown day's rows from the four gold models (all filtered on ``trading_date``).

    The heatmap history covers the ``heatmap_days`` days ending at ``day`` for the
    ``heatmap_markets`` most volatile markets of ``day``.
    """
    market_rows = con.execute(
        """
        select d.market, d.korean_name, d.english_name, d.close_price,
               coalesce(d.return_prev_close, d.return_open_close) as change,
               coalesce(d.volume_krw, 0), d.realized_vol, d.realized_vol_annualized,
               d.largest_1m_move, d.largest_1m_move_at_utc,
               r.own_percentile, coalesce(r.history_days, 0), r.cross_rank
        from gold_market_daily as d
        left join gold_market_daily_rank as r
            on r.market = d.market and r.trading_date = d.trading_date
        where d.trading_date = ?
        order by d.market
        """,
        [day],
    ).fetchall()
    markets = [
        MarketDay(
            market=str(r[0]),
            korean_name=r[1],
            english_name=r[2],
            close_price=_f(r[3]),
            change=_f(r[4]),
            volume_krw=float(r[5]),
            realized_vol=_f(r[6]),
            realized_vol_annualized=_f(r[7]),
            largest_1m_move=_f(r[8]),
            largest_1m_move_at_utc=r[9],
            own_percentile=_f(r[10]),
            history_days=int(r[11]),
            cross_rank=None if r[12] is None else int(r[12]),
        )
        for r in market_rows
    ]
    alerts = [
        AlertRow(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]))
        for r in con.execute(
            """
            select market, alert_count, coalesce(price_move_alerts, 0),
                   coalesce(volume_spike_alerts, 0), coalesce(flag_alerts, 0),
                   coalesce(critical_alerts, 0)
            from gold_anomalies_daily where trading_date = ? order by market
            """,
            [day],
        ).fetchall()
    ]
    completeness = [
        CompletenessRow(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), _f(r[6]))
        for r in con.execute(
            """
            select market, rest_minutes, stream_minutes, missing_in_stream_minutes,
                   missing_in_rest_minutes, mismatched_minutes, completeness_pct
            from gold_data_completeness where trading_date = ? order by market
            """,
            [day],
        ).fetchall()
    ]
    ranked = sorted(
        (m for m in markets if m.realized_vol is not None),
        key=lambda m: (-(m.realized_vol or 0.0), m.market),
    )[:heatmap_markets]
    first = day - timedelta(days=heatmap_days - 1)
    history: list[PercentilePoint] = []
    if ranked:
        names = [m.market for m in ranked]
        placeholders = ", ".join("?" for _ in names)
        history = [
            PercentilePoint(str(r[0]), r[1], _f(r[2]))
            for r in con.execute(
                f"""
                select market, trading_date, own_percentile from gold_market_daily_rank
                where trading_date between ? and ? and market in ({placeholders})
                order by market, trading_date
                """,
                [first, day, *names],
            ).fetchall()
        ]
    days = [first + timedelta(days=i) for i in range(heatmap_days)]
    return GoldDay(day, markets, alerts, completeness, history, days)


def gold_ready(settings: Settings, day: date) -> bool:
    """Whether ``day`` is usable now (what the Airflow report DAG's sensor waits for)."""
    lake = open_lake(settings.lake.path)
    with open_warehouse(Path(settings.warehouse.path)) as (con, _error):
        return check_day(lake, con, day).usable
