"""Lake paths: UTC event-time folders, deterministic offset-sortable names, one module."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from upbit_pipeline.lake import layout


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_path_is_utc_event_hour_and_zero_padded_first_offset() -> None:
    hour = layout.hour_of_ms(_ms("2026-09-02T07:46:20.377"))
    path = layout.unit_path(
        layout.RAW, "trade", hour, topic="upbit.trade", partition=2, first_offset=1234
    )
    assert path == ("raw/trade/date=2026-09-02/hour=07/upbit.trade+2+00000000000000001234.parquet")


def test_upbit_trading_day_starts_at_0900_kst() -> None:
    # 08:59:59.999 KST on Sep 3 is still Sep 2 (UTC 23:59:59.999); 09:00 KST starts Sep 3.
    before = layout.partition_dir(
        layout.RAW, "trade", layout.hour_of_ms(_ms("2026-09-02T23:59:59.999"))
    )
    after = layout.partition_dir(layout.RAW, "trade", layout.hour_of_ms(_ms("2026-09-03T00:00:00")))
    assert before == "raw/trade/date=2026-09-02/hour=23"
    assert after == "raw/trade/date=2026-09-03/hour=00"


def test_names_parse_back_and_sort_by_offset() -> None:
    names = [layout.file_name("upbit.ticker", 0, o) for o in (10, 9, 100_000_000_000)]
    assert [layout.parse_file_name(n) for n in sorted(names)] == [
        layout.FileKey("upbit.ticker", 0, 9),
        layout.FileKey("upbit.ticker", 0, 10),
        layout.FileKey("upbit.ticker", 0, 100_000_000_000),
    ]
    assert layout.parse_file_name("raw/x/date=2026-01-01/hour=00/" + names[0]) is not None


@pytest.mark.parametrize(
    "name", [".upbit.trade+0+00000000000000000001.parquet.tmp", "part-0.parquet", "x+1+12.parquet"]
)
def test_foreign_names_are_not_lake_files(name: str) -> None:
    assert layout.parse_file_name(name) is None


def test_temp_and_state_paths() -> None:
    path = "raw/trade/date=2026-09-02/hour=07/upbit.trade+0+00000000000000000000.parquet"
    assert layout.temp_name(path) == (
        "raw/trade/date=2026-09-02/hour=07/.upbit.trade+0+00000000000000000000.parquet.tmp"
    )
    assert layout.pending_path("upbit.trade", 3) == "_state/pending/upbit.trade+3.json"
    with pytest.raises(ValueError, match="first_offset"):
        layout.file_name("upbit.trade", 0, -1)
