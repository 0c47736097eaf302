"""The crash matrix: a real consumer process dies (os._exit) at each point of the write path.

Before the write, during it, after it but before the commit, and after the commit; each time a
fresh consumer of the same group then finishes the job, and the lake holds every record of the
log exactly once. Between the crash and the restart the test looks at what the crash left, so
each case is shown to exercise what it claims (a leftover file, a half-written temp file, ...).
"""

from __future__ import annotations

import pytest

from tests.lake.conftest import (
    CHANNEL_TOPICS,
    assert_exactly_once,
    committed,
    drain,
    lake_settings,
    mixed_records,
    open_local,
    produce,
    read_log,
    spawn_consumer,
)
from tests.lake.consumer_main import CRASH_EXIT
from upbit_pipeline.lake import layout, verify_lake
from upbit_pipeline.lake.intent import read_intent

pytestmark = pytest.mark.integration


def _uncommitted_files(storage, committed) -> list[str]:
    """Lake files at or beyond their partition's committed offset (what a restart must remove)."""
    found = []
    for area in (layout.RAW, layout.DEADLETTER):
        for path in storage.find(area):
            key = layout.parse_file_name(path)
            if key is not None and key.first_offset >= max(
                committed[(key.topic, key.partition)], 0
            ):
                found.append(path)
    return found


def _temp_files(storage) -> list[str]:
    areas = (layout.RAW, layout.DEADLETTER)
    return [p for a in areas for p in storage.find(a) if p.rsplit("/", 1)[-1].startswith(".")]


@pytest.mark.parametrize("point", ["before_write", "during_write", "after_write", "after_commit"])
def test_crash_then_restart_is_exactly_once(broker, tmp_path, point) -> None:
    records = mixed_records(5000, malformed_every=301)
    produce(broker.settings, records)
    log = read_log(broker.settings, len(records))
    lake = tmp_path / "lake"
    settings = lake_settings(broker.settings, str(lake), max_records_per_file=150)
    storage = open_local(lake)

    proc = spawn_consumer(settings, crash=f"{point}:2", log=tmp_path / "consumer.log")
    assert proc.wait(60) == CRASH_EXIT, (tmp_path / "consumer.log").read_text()

    offsets = committed(broker.settings, settings.lake.consumer_group)
    leftovers = _uncommitted_files(storage, offsets)
    temps = _temp_files(storage)
    intents = [
        p for t in CHANNEL_TOPICS for part in range(3) for p in read_intent(storage, t, part)
    ]
    if point == "before_write":
        assert intents and not leftovers and not temps
    elif point == "during_write":  # the 2nd file is half written; files before it are whole
        assert temps and set(leftovers) <= set(intents)
    elif point == "after_write":
        assert leftovers and set(leftovers) <= set(intents)
    else:
        assert not leftovers and any(o > 0 for o in offsets.values())

    stats = drain(settings, storage, log)
    assert stats.leftovers_removed == len(leftovers)
    assert_exactly_once(storage, log)
    assert not _temp_files(storage)
    report = verify_lake(str(lake))
    assert report.ok, report.render()


def test_restart_after_clean_stop_adds_nothing(broker, tmp_path) -> None:
    records = mixed_records(500)
    produce(broker.settings, records)
    lake = tmp_path / "lake"
    storage = open_local(lake)
    settings = lake_settings(broker.settings, str(lake))
    log = read_log(broker.settings, len(records))
    drain(settings, storage, log)
    before = storage.find("raw")
    stats = drain(settings, storage, log, timeout_s=10)
    assert stats.records == 0 and storage.find("raw") == before
    assert_exactly_once(storage, log)
