"""The real KRW-NXPC 1-minute candles (listing day 2025-05-15 and after), served through the REST
path, ingested, built, and checked against pandas. The export lost one candle per 200-candle
page (92 single missing minutes): silver must show them as explicit no-trade minutes, and our
own paging must lose nothing of what the server holds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.batch.helpers import assert_gold_matches, batch_settings, expected_daily, query
from tests.batch.servers import CandleServer
from upbit_pipeline.batch import build_layer, run_step

pytestmark = pytest.mark.integration

DAYS = [date(2025, 5, 15), date(2025, 5, 16), date(2025, 5, 17)]


@pytest.fixture(scope="module")
def nxpc(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    csv = real_data / "candles_1m" / "KRW-NXPC_2025-05-15_listing_1m.csv"
    server = CandleServer(csv)
    tmp = tmp_path_factory.mktemp("nxpc")
    with server.serve() as url:
        settings = batch_settings(tmp, url)
        for day in DAYS:
            marker = run_step(settings, day, "raw", progress=False)
            assert marker.counts["markets"] == 1
        build_layer(settings, "silver", DAYS[0], DAYS[-1])
        build_layer(settings, "gold", DAYS[0], DAYS[-1])
    df = server.df.rename(columns={"start": "candle_date_time_utc_ts"})
    df["candle_date_time_utc"] = df["candle_date_time_utc_ts"]
    return Path(settings.warehouse.path), df


@pytest.mark.parametrize("day", DAYS)
def test_gold_matches_pandas(nxpc: tuple[Path, pd.DataFrame], day: date) -> None:
    warehouse, candles = nxpc
    expected = expected_daily(candles, day)
    actual = query(warehouse, f"select * from gold_market_daily where trading_date = '{day}'")
    assert_gold_matches(actual, expected)


def test_every_served_candle_arrives_and_missing_minutes_are_explicit(
    nxpc: tuple[Path, pd.DataFrame],
) -> None:
    warehouse, candles = nxpc
    silver = query(warehouse, "select * from silver_candles_1m order by candle_start_utc")
    traded = silver[silver["has_trades"]]
    start = datetime(2025, 5, 15, tzinfo=UTC)
    served = candles[
        (candles["candle_date_time_utc"] >= start)
        & (candles["candle_date_time_utc"] < start + timedelta(days=3))
    ]
    assert len(traded) == len(served)  # no candle lost by our paging
    assert len(silver) == 3 * 1440
    day2 = silver[silver["trading_date"] == pd.Timestamp(DAYS[1])]
    quiet = day2[~day2["has_trades"]]
    assert len(quiet) == 1440 - len(served[served["candle_date_time_utc"].dt.date == DAYS[1]])
    assert len(quiet) > 0 and (quiet["volume"] == 0).all()
    # a quiet minute repeats the previous minute's close
    prev_close = day2.set_index("candle_start_utc")["close_price"].shift(1)
    np.testing.assert_array_equal(
        quiet["open_price"].to_numpy(), prev_close.loc[quiet["candle_start_utc"]].to_numpy()
    )
    # listing day: nothing before 09:35 UTC (18:35 KST), and no price before the first trade
    day1 = silver[silver["trading_date"] == pd.Timestamp(DAYS[0])]
    before = day1[day1["candle_start_utc"] < pd.Timestamp("2025-05-15 09:35")]
    assert len(before) == 9 * 60 + 35 and before["close_price"].isna().all()


def test_rank_against_own_history_excludes_today(nxpc: tuple[Path, pd.DataFrame]) -> None:
    warehouse, _ = nxpc
    daily = query(warehouse, "select * from gold_market_daily order by trading_date")
    rank = query(warehouse, "select * from gold_market_daily_rank order by trading_date")
    vols = daily["realized_vol_annualized"].to_numpy()
    assert list(rank["history_days"]) == [0, 1, 2]
    for i in (1, 2):
        history = vols[:i]
        expected = 100 * ((history < vols[i]).sum() + 0.5 * (history == vols[i]).sum()) / i
        assert rank["own_percentile"].iloc[i] == pytest.approx(expected)
    hist = vols[:2]
    z = (vols[2] - hist.mean()) / hist.std(ddof=1)
    assert rank["own_zscore"].iloc[2] == pytest.approx(z, rel=1e-9)
    assert rank["own_zscore"].iloc[:2].isna().all()
