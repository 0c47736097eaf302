"""One simulated UTC day end to end without Airflow: raw -> silver -> gold, checked against
independent pandas computations, the stream-vs-REST completeness report, deduplication, the build
markers, and that a re-run gives identical tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.batch.helpers import (
    assert_gold_matches,
    batch_settings,
    expected_daily,
    query,
    sim_trades,
    table_bytes,
    write_trades,
)
from tests.batch.servers import running_simulator
from upbit_pipeline.alerts.model import Alert
from upbit_pipeline.alerts.sinks import write_lake_alerts
from upbit_pipeline.batch import BatchResult, read_marker, rest_raw_path, run_batch
from upbit_pipeline.lake.storage import open_lake
from upbit_pipeline.settings import Settings

pytestmark = pytest.mark.integration

TABLES = [
    "silver_trades",
    "silver_candles_1m",
    "silver_candles_1m_stream",
    "silver_candles_1d",
    "silver_markets",
    "gold_market_daily",
    "gold_market_daily_rank",
    "gold_anomalies_daily",
    "gold_data_completeness",
]
STREAM_HOURS = (0, 1)
CI_VARS = {"stream_rest_agreement_severity": "error"}


@dataclass
class Built:
    settings: Settings
    day: date
    result: BatchResult
    trades: pd.DataFrame  # what the stream carried, with duplicates
    first_dump: dict[str, str]

    @property
    def warehouse(self) -> Path:
        return Path(self.settings.warehouse.path)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("batch-sim")
    with running_simulator(markets=3, seed=7) as sim:
        day = datetime.fromtimestamp(sim.start_ms / 1000, UTC).date() - timedelta(days=1)
        settings = batch_settings(tmp, sim.base_url)
        lake = tmp / "lake"
        rows = sim_trades(sim, day, STREAM_HOURS)
        # the live stream, then the same first 40 trades again as a gap backfill
        write_trades(lake, rows)
        write_trades(lake, [(*r[:6], True) for r in rows[:40]], offset=10_000_000)
        start_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        alerts = [
            Alert(
                id="a1",
                rule="price_move",
                market="KRW-BTC",
                severity="warning",
                event_ms=start_ms + 1000,
                move_pct=-2.5,
                window_s=60,
            ),
            Alert(
                id="a2",
                rule="volume_spike",
                market="KRW-BTC",
                severity="critical",
                event_ms=start_ms + 7_200_000,
                ratio=12.0,
            ),
        ]
        write_lake_alerts(str(lake), alerts)
        write_lake_alerts(str(lake), alerts[:1])  # a replayed batch repeats an alert
        result = run_batch(settings, day, progress=False, dbt_vars=CI_VARS)
    trades = pd.DataFrame(rows, columns=["market", "ts", "price", "volume", "bid", "sid", "bf"])
    return Built(settings, day, result, trades, table_bytes(settings.warehouse.path, TABLES))


def test_all_steps_succeed_and_write_markers(built: Built) -> None:
    assert built.result.ok, built.result.as_dict()
    lake = open_lake(built.settings.lake.path)
    for step in ("raw", "silver", "gold"):
        marker = read_marker(lake, built.day, step)
        assert marker is not None and marker.status == "ok" and marker.error is None
        assert marker.date == built.day.isoformat()
    raw = read_marker(lake, built.day, "raw")
    assert raw is not None and raw.counts["markets"] == 3 and raw.counts["responses_429"] == 0
    gold = read_marker(lake, built.day, "gold")
    assert gold is not None and gold.counts["gold_market_daily"] == 3
    silver = read_marker(lake, built.day, "silver")
    assert silver is not None and silver.counts["silver_candles_1m"] == 3 * 1440


def test_gold_daily_matches_pandas_on_the_rest_candles(built: Built) -> None:
    lake = Path(built.settings.lake.path)
    candles = pd.read_parquet(lake / rest_raw_path("candles_1m", built.day))
    expected = expected_daily(candles, built.day)
    actual = query(
        built.warehouse,
        f"select * from gold_market_daily where trading_date = '{built.day}'",
    )
    assert_gold_matches(actual, expected)
    # the day candle agrees with the minutes (Upbit's own aggregation of the same trades)
    day = query(built.warehouse, "select * from silver_candles_1d order by market")
    joined = day.merge(actual, on="market", suffixes=("_day", ""))
    assert (joined["high_price_day"] == joined["high_price"]).all()
    assert (joined["close_price_day"] == joined["close_price"]).all()


def test_trade_count_and_dedup_on_sequential_id(built: Built) -> None:
    expected = built.trades.groupby("market")["sid"].nunique()
    got = query(
        built.warehouse,
        "select market, trade_count from gold_market_daily order by market",
    ).set_index("market")["trade_count"]
    assert got.to_dict() == expected.to_dict()
    silver = query(built.warehouse, "select * from silver_trades")
    assert len(silver) == len(built.trades)  # the 40 backfilled copies are gone
    assert not silver["is_backfill"].any()  # the live copy wins
    # trades sharing a millisecond are distinct trades and all kept
    same_ms = built.trades.groupby(["market", "ts"]).size()
    assert (same_ms > 1).any()
    kept = silver.groupby(["market", "trade_ts_utc"]).size()
    assert kept.max() == same_ms.max()
    delta = silver["trade_ts_kst"] - silver["trade_ts_utc"]
    assert (delta == pd.Timedelta(hours=9)).all()


def test_completeness_report_counts_stream_minutes(built: Built) -> None:
    report = query(built.warehouse, "select * from gold_data_completeness order by market")
    minutes = built.trades.assign(m=built.trades["ts"] // 60_000).groupby("market")["m"].nunique()
    assert report.set_index("market")["stream_minutes"].to_dict() == minutes.to_dict()
    assert (report["mismatched_minutes"] == 0).all()
    assert (report["missing_in_rest_minutes"] == 0).all()
    assert (report["both_minutes"] == report["stream_minutes"]).all()
    assert (
        report["missing_in_stream_minutes"] == report["rest_minutes"] - report["stream_minutes"]
    ).all()
    pct = 100 * report["both_minutes"] / report["rest_minutes"]
    assert (abs(report["completeness_pct"] - pct) < 1e-9).all()


def test_rank_and_anomalies(built: Built) -> None:
    rank = query(built.warehouse, "select * from gold_market_daily_rank order by market")
    assert rank["history_days"].eq(0).all() and rank["own_percentile"].isna().all()
    ordered = rank.sort_values("realized_vol_annualized")
    assert list(ordered["cross_percentile"]) == [0.0, 50.0, 100.0]
    assert list(ordered["cross_rank"]) == [3, 2, 1]
    anomalies = query(built.warehouse, "select * from gold_anomalies_daily")
    assert len(anomalies) == 1
    row = anomalies.iloc[0]
    assert (row.market, row.alert_count, row.price_move_alerts, row.volume_spike_alerts) == (
        "KRW-BTC",
        2,
        1,
        1,
    )
    assert (row.critical_alerts, row.max_abs_move_pct, row.max_volume_ratio) == (1, 2.5, 12.0)
    assert row.first_alert_kst - row.first_alert_utc == pd.Timedelta(hours=9)


def test_rerun_gives_identical_tables(built: Built) -> None:
    again = run_batch(built.settings, built.day, ("silver", "gold"), dbt_vars=CI_VARS)
    assert again.ok
    assert table_bytes(built.warehouse, TABLES) == built.first_dump
