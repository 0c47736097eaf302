"""Storage on a local disk, gcp-storage-emulator and moto: the same operations, the same answers,
and the sink's crash-and-restart cycle on S3."""

from __future__ import annotations

import os

import pytest

from tests.lake.conftest import (
    assert_exactly_once,
    committed,
    drain,
    lake_settings,
    mixed_records,
    produce,
    read_log,
    spawn_consumer,
)
from tests.lake.consumer_main import CRASH_EXIT
from upbit_pipeline.lake import layout, open_lake, verify_lake


def test_local_write_is_atomic_and_replaces(tmp_path) -> None:
    storage = open_lake(str(tmp_path / "lake"))
    path = "raw/trade/date=2026-09-02/hour=07/" + layout.file_name("upbit.trade", 0, 0)
    storage.write(path, b"first")
    storage.write(path, b"second")
    assert storage.read(path) == b"second"
    folder = tmp_path / "lake" / path.rsplit("/", 1)[0]
    assert os.listdir(folder) == [path.rsplit("/", 1)[-1]]  # no temp file left behind
    (folder / ("." + path.rsplit("/", 1)[-1] + ".tmp")).write_bytes(b"half")  # a crashed write
    assert storage.delete(path) and not os.listdir(folder)
    assert not storage.delete(path)
    assert storage.read(path) is None and storage.find("raw/nothing") == []


@pytest.mark.integration
@pytest.mark.parametrize("lake_fixture", ["gcs_lake", "s3_lake"])
def test_object_store_operations(request, lake_fixture) -> None:
    storage = open_lake(request.getfixturevalue(lake_fixture))
    storage.write("raw/a/x.parquet", b"1")
    storage.write("raw/a/x.parquet", b"2")
    storage.write("raw/b/y.parquet", b"3")
    assert storage.find("raw") == ["raw/a/x.parquet", "raw/b/y.parquet"]
    assert storage.read_many(storage.find("raw")) == {
        "raw/a/x.parquet": b"2",
        "raw/b/y.parquet": b"3",
    }
    assert storage.read("raw/none") is None
    assert storage.delete("raw/a/x.parquet") and not storage.delete("raw/a/x.parquet")
    assert storage.find("raw") == ["raw/b/y.parquet"]


@pytest.mark.integration
def test_s3_crash_after_write_then_exactly_once(broker, tmp_path, s3_lake) -> None:
    records = mixed_records(3000, malformed_every=211)
    produce(broker.settings, records)
    log = read_log(broker.settings, len(records))
    settings = lake_settings(broker.settings, s3_lake, max_records_per_file=250)
    storage = open_lake(s3_lake)
    proc = spawn_consumer(settings, crash="after_write:2", log=tmp_path / "consumer.log")
    assert proc.wait(60) == CRASH_EXIT, (tmp_path / "consumer.log").read_text()
    offsets = committed(broker.settings, settings.lake.consumer_group)
    keys = [(p, layout.parse_file_name(p)) for p in storage.find(layout.RAW)]
    leftovers = [
        p for p, k in keys if k and k.first_offset >= max(offsets[(k.topic, k.partition)], 0)
    ]
    assert leftovers
    stats = drain(settings, storage, log)
    assert stats.leftovers_removed >= len(leftovers)
    assert_exactly_once(storage, log)
    report = verify_lake(s3_lake)
    assert report.ok, report.render()
