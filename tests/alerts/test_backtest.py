"""Backtest and replay over the real captures in ../shared/data/upbit-real."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from upbit_pipeline.alerts.backtest import run_backtest, run_replay
from upbit_pipeline.alerts.model import encode_alert
from upbit_pipeline.settings import Settings

NXPC = "candles_1m/KRW-NXPC_2025-05-15_listing_1m.csv"
LISTING = datetime(2025, 5, 15, 9, 35, tzinfo=UTC)


def test_nxpc_listing_week_flags_the_listing_minutes(real_data: Path) -> None:
    result = run_backtest(
        Settings(),
        LISTING,
        datetime(2025, 5, 22, 9, 35, tzinfo=UTC),
        ["KRW-NXPC"],
        source=real_data / NXPC,
    )
    first = result.alerts[0]
    assert (first.rule, first.direction, first.window_s) == ("price_move", "up", 60)
    assert first.event_ms < LISTING.timestamp() * 1000 + 60_000  # inside the first minute
    assert first.move_pct is not None and first.move_pct > 10  # 4,352 -> 4,912 KRW: +12.1 %
    assert first.severity == "critical"
    second = result.alerts[1]
    assert (second.rule, second.direction) == ("price_move", "down")  # the slide right after
    assert second.event_ms < LISTING.timestamp() * 1000 + 3 * 60_000
    per_rule = result.per_rule()
    assert set(per_rule) == {"price_move", "volume_spike"}
    # Not a fire hose: a week of a violent new listing gives a few dozen alerts a day at most.
    assert all(n <= 40 for n in result.per_rule_day().values())
    text = str(result)
    assert "per rule:" in text and "KRW-NXPC=" in text


def test_backtest_is_deterministic(real_data: Path) -> None:
    end = datetime(2025, 5, 16, 9, 35, tzinfo=UTC)
    runs = [run_backtest(Settings(), LISTING, end, None, source=real_data / NXPC) for _ in range(2)]
    assert [encode_alert(a) for a in runs[0].alerts] == [encode_alert(a) for a in runs[1].alerts]


def test_every_real_capture_runs_through_the_rules(real_data: Path) -> None:
    captures = {
        "cryptofeed/UPBIT-d78752.0": 672,  # trades in the capture
        "cryptofeed/UPBIT.ws.62.0": 304,
        "ws_ticker/sml1323_upbit_ticker_data_2025-07-14.jsonl": 0,
    }
    for name, trades in captures.items():
        result = run_replay(Settings(), real_data / name)
        assert result.errors == 0, name
        assert result.stats.trades == trades, name
        assert result.stats.invalid == 0, name
    tickers = run_replay(
        Settings(), real_data / "ws_ticker/sml1323_upbit_ticker_data_2025-07-14.jsonl"
    )
    assert tickers.stats.tickers == 456
    # REST candle files (JSON arrays, newest first) backtest too.
    for name in ("smtm/data200.json", "smtm/upbit_1m_20200220_170000-20200220_202000.json"):
        result = run_backtest(
            Settings(),
            datetime(2020, 1, 1, tzinfo=UTC),
            datetime(2022, 1, 1, tzinfo=UTC),
            None,
            source=real_data / name,
        )
        assert result.events == 4 * 200, name
