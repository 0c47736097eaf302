"""The consumer against a real broker: exactly-once content, dead letters, idling, verify."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from tests.lake.conftest import (
    assert_exactly_once,
    consumer_thread,
    drain,
    lake_count,
    lake_settings,
    mixed_records,
    open_local,
    produce,
    read_log,
    wait_until,
)
from upbit_pipeline.lake import layout, verify_lake

pytestmark = pytest.mark.integration


def test_every_record_once_with_dead_letters_and_rotation(broker, tmp_path) -> None:
    records = mixed_records(3000, malformed_every=97)
    produce(broker.settings, records)
    log = read_log(broker.settings, len(records))
    settings = lake_settings(broker.settings, str(tmp_path / "lake"), max_records_per_file=300)
    storage = open_local(tmp_path / "lake")
    stats = drain(settings, storage, log)
    assert_exactly_once(storage, log)
    assert stats.deadlettered == 3000 // 97
    assert stats.rows["trade"] == 3000 - 3000 // 97
    report = verify_lake(str(tmp_path / "lake"))
    assert report.ok, report.render()
    assert sum(p.deadletter for p in report.partitions) == 3000 // 97
    dead = storage.find(layout.DEADLETTER)
    assert dead and all(p.startswith("deadletter/trade/date=2026-09-02/hour=07/") for p in dead)
    day = verify_lake(str(tmp_path / "lake"), dt.date(2026, 9, 2))
    assert day.ok and sum(p.records for p in day.partitions) == sum(
        p.records for p in report.partitions
    )
    assert verify_lake(str(tmp_path / "lake"), dt.date(2026, 9, 3)).partitions == []


def test_idles_without_records_then_resumes(broker, tmp_path) -> None:
    settings = lake_settings(broker.settings, str(tmp_path / "lake"))
    storage = open_local(tmp_path / "lake")
    with consumer_thread(settings, storage) as sink:
        wait_until(lambda: sink.stats.assignments > 0, 20, "partition assignment")
        idle_until = sink.stats.errors
        records = mixed_records(200)
        produce(broker.settings, records)
        wait_until(lambda: lake_count(storage) == len(records), 20, "records in the lake")
    assert sink.stats.errors == idle_until == 0
    assert_exactly_once(storage, read_log(broker.settings, len(records)))


def test_verify_reports_planted_duplicates_and_holes(broker, tmp_path) -> None:
    records = mixed_records(600)
    produce(broker.settings, records)
    lake = tmp_path / "lake"
    storage = open_local(lake)
    log = read_log(broker.settings, len(records))
    drain(lake_settings(broker.settings, str(lake), max_records_per_file=50), storage, log)
    assert verify_lake(str(lake)).ok
    trade_files = [p for p in storage.find("raw/trade") if "+0+" in p]
    assert len(trade_files) >= 3
    # a duplicate: the same file copied under a different hour (same name, same offsets)
    copy = trade_files[0].replace("hour=07", "hour=08")
    (lake / copy).parent.mkdir(parents=True)
    shutil.copy(lake / trade_files[0], lake / copy)
    dup = verify_lake(str(lake))
    assert not dup.ok
    bad = [p for p in dup.partitions if not p.ok]
    assert [(p.topic, p.partition) for p in bad] == [("upbit.trade", 0)]
    assert bad[0].duplicate_offsets > 0 and bad[0].duplicate_trades > 0
    assert "NOT OK" in dup.render() and '"ok": false' in dup.to_json()
    (lake / copy).unlink()
    # a hole: a middle file removed
    (lake / trade_files[1]).unlink()
    hole = verify_lake(str(lake))
    assert not hole.ok
    (row,) = [p for p in hole.partitions if not p.ok]
    assert row.missing_offsets > 0 and row.duplicate_offsets == 0
    # a stray file that is not a lake file
    (lake / trade_files[0]).with_name("part-0.parquet").write_bytes(b"x")
    assert any("not a lake file" in p for p in verify_lake(str(lake)).problems)
