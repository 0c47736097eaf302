"""REST raw ingestion against the simulator: Upbit's limiter, resume, atomic replacement."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.batch.helpers import batch_settings
from tests.batch.servers import running_simulator
from upbit_pipeline.batch import ingest_raw, rest_raw_path
from upbit_pipeline.batch import raw as raw_module
from upbit_pipeline.lake.layout import batch_marker_path, rest_staging_path

pytestmark = pytest.mark.integration


def test_paths() -> None:
    day = date(2025, 5, 16)
    assert rest_raw_path("candles_1m", day) == "raw/rest/candles_1m/date=2025-05-16/data.parquet"
    assert batch_marker_path(day, "gold") == "_batch/date=2025-05-16/gold.json"
    with pytest.raises(ValueError):
        rest_staging_path("candles_1m", day, "../etc")
    with pytest.raises(ValueError):
        rest_raw_path("ticker", day)


def test_ingest_resume_and_atomic_rerun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_simulator(markets=3, seed=3, rate_limits=True) as sim:
        day = datetime.fromtimestamp(sim.start_ms / 1000, UTC).date() - timedelta(days=1)
        settings = batch_settings(tmp_path, sim.base_url)
        lake = tmp_path / "lake"

        # 1. a run that dies after fetching everything, before committing the partitions
        def crash(self: object, markets: object) -> None:
            raise RuntimeError("killed")

        monkeypatch.setattr(raw_module._Run, "commit", crash)
        with pytest.raises(RuntimeError):
            ingest_raw(settings, day, progress=False)
        monkeypatch.undo()
        assert not (lake / rest_raw_path("candles_1m", day)).exists()
        staged = sorted((lake / "raw/rest/_staging/candles_1m").rglob("*.parquet"))
        assert [p.stem for p in staged] == sim.markets

        # 2. the resumed run fetches nothing again and commits
        resumed = ingest_raw(settings, day, progress=False)
        assert resumed.resumed_markets == 3 and resumed.requests == 0
        assert resumed.candles_1m > 0 and resumed.candles_1d == 3
        assert not list((lake / "raw/rest/_staging").rglob("*.parquet"))
        first = (lake / rest_raw_path("candles_1m", day)).read_bytes()

        # 3. a full re-run replaces the partition with identical bytes, at the ceiling, no 429
        again = ingest_raw(settings, day, progress=False, resume=False)
        assert again.responses_429 == 0
        assert again.requests == 1 + 3 * 9  # market list, then per market 1 day + 8 minute pages
        assert (lake / rest_raw_path("candles_1m", day)).read_bytes() == first
        table = pq.read_table(lake / rest_raw_path("candles_1m", day)).to_pandas()
        assert table["candle_date_time_utc"].min() >= datetime(
            day.year, day.month, day.day, tzinfo=UTC
        )
        assert table["candle_date_time_utc"].max() < datetime(
            day.year, day.month, day.day, tzinfo=UTC
        ) + timedelta(days=1)
        assert not table.duplicated(["market", "candle_date_time_utc"]).any()
        assert len(table) == again.candles_1m
