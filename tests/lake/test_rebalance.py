"""Rebalances: a second member joins while the first holds unwritten records, then the first
leaves. Revocation writes and commits what it holds, so no range is written twice."""

from __future__ import annotations

import pytest

from tests.lake.conftest import (
    assert_exactly_once,
    committed,
    consumer_thread,
    lake_settings,
    mixed_records,
    open_local,
    produce,
    read_log,
    wait_until,
)
from upbit_pipeline.lake import verify_lake

pytestmark = pytest.mark.integration


def test_join_and_leave_rebalances_are_exactly_once(broker, tmp_path) -> None:
    lake = tmp_path / "lake"
    storage = open_local(lake)
    # A long flush: whatever a member holds at a rebalance is written by the revocation.
    settings = lake_settings(broker.settings, str(lake), flush_interval_s=30.0)
    batches = [mixed_records(800, start=800 * i) for i in range(3)]
    total = 0
    with consumer_thread(settings, storage) as first:
        produce(broker.settings, batches[0])
        total += len(batches[0])
        wait_until(lambda: first.stats.records == total, 30, "first member reads batch 1")
        assert first.stats.files == 0  # all of it is buffered, nothing written yet
        with consumer_thread(settings, storage) as second:
            wait_until(lambda: second.stats.assignments > 0, 30, "second member joins")
            assert first.stats.revocations >= 1 and first.stats.files > 0
            produce(broker.settings, batches[1])
            total += len(batches[1])
            wait_until(
                lambda: first.stats.records + second.stats.records == total, 30, "batch 2 read"
            )
        # the second member left (its close revoked, wrote and committed); the first gets all
        produce(broker.settings, batches[2])
        total += len(batches[2])
        log = read_log(broker.settings, total)
        ends = {}
        for r in log:
            ends[(r.topic, r.partition)] = max(ends.get((r.topic, r.partition), 0), r.offset + 1)

        def all_committed() -> bool:
            have = committed(broker.settings, settings.lake.consumer_group)
            return all(have[key] >= end for key, end in ends.items())

        wait_until(lambda: first.stats.records + second.stats.records >= total, 30, "batch 3")
    wait_until(all_committed, 30, "everything committed")  # the first member's close wrote it
    assert_exactly_once(storage, log)
    report = verify_lake(str(lake))
    assert report.ok, report.render()
