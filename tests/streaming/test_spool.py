"""The disk spool: order across segments and restarts, the byte bound, commit/free, torn tails,
records put in front at shutdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from upbit_pipeline.streaming.spool import Spool, SpoolRecord


def rec(i: int, topic: str = "upbit.trade", size: int = 100) -> SpoolRecord:
    key = f"KRW-M{i % 3}".encode()
    value = (f"frame-{i:08d}-".encode() + b"x" * size)[: max(size, 16)]
    return SpoolRecord(topic, key, value, 1_700_000_000_000 + i, [("recv_ns", str(i).encode())])


def drain(spool: Spool, batch: int = 7) -> list[SpoolRecord]:
    out: list[SpoolRecord] = []
    while not spool.empty:
        got = spool.read_batch(max_records=batch)
        out.extend(got)
        spool.commit()
        if not got:
            break
    return out


def test_replays_in_append_order_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1024 * 1024, segment_bytes=4096)
    spool.open()
    records = [rec(i) for i in range(300)]
    assert all(spool.append(r) for r in records)
    assert len(list(tmp_path.glob("seg-*.log"))) > 3  # several segments
    assert spool.pending == 300
    assert drain(spool) == records
    assert spool.empty
    assert spool.bytes == 0
    assert len(list(tmp_path.glob("seg-*.log"))) == 1  # a fresh, empty write segment


def test_bound_refuses_and_commit_frees_space(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=64 * 1024, segment_bytes=8 * 1024)
    spool.open()
    accepted = 0
    while spool.append(rec(accepted, size=500)):
        accepted += 1
    assert spool.bytes <= 64 * 1024
    assert not spool.has_room(500)
    assert not spool.append(rec(999_999, size=500))  # still refused: nothing was written
    first = spool.read_batch(max_records=40)
    spool.commit()  # whole segments before the read position are deleted
    assert spool.bytes < 64 * 1024 - 500
    assert spool.append(rec(accepted, size=500))
    rest = drain(spool)
    assert [r.timestamp_ms for r in first + rest] == [
        1_700_000_000_000 + i for i in range(accepted + 1)
    ]


def test_survives_restart_and_resumes_at_the_committed_cursor(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1024 * 1024, segment_bytes=2048)
    spool.open()
    records = [rec(i) for i in range(100)]
    for r in records:
        spool.append(r)
    assert spool.read_batch(max_records=30) == records[:30]
    spool.commit()
    spool.read_batch(max_records=10)  # handed out, never acknowledged: must come back
    spool.close()

    again = Spool(tmp_path, max_bytes=1024 * 1024, segment_bytes=2048)
    again.open()
    assert again.pending == 70
    assert not again.empty
    assert drain(again) == records[30:]


def test_torn_tail_is_truncated_at_open(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1024 * 1024)
    spool.open()
    for i in range(5):
        spool.append(rec(i))
    spool.close()
    segment = next(tmp_path.glob("seg-*.log"))
    with segment.open("ab") as fh:
        fh.write(b"\x50\x00\x00\x00garbage")  # a length prefix and half a record (a crash)
    again = Spool(tmp_path, max_bytes=1024 * 1024)
    again.open()
    assert drain(again) == [rec(i) for i in range(5)]


def test_prepend_puts_older_records_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1024 * 1024)
    spool.open()
    newer = [rec(i) for i in range(10, 20)]
    for r in newer:
        spool.append(r)
    older = [rec(i) for i in range(10)]
    spool.prepend(older)
    spool.close()
    again = Spool(tmp_path, max_bytes=1024 * 1024)
    again.open()
    assert drain(again) == older + newer


def test_large_record_bigger_than_a_read_chunk(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=8 * 1024 * 1024)
    spool.open()
    big = rec(1, size=300_000)
    spool.append(rec(0))
    spool.append(big)
    assert spool.read_batch(max_records=10, max_bytes=1024) + spool.read_batch() == [rec(0), big]


@pytest.mark.parametrize("batch", [1, 5000])
def test_empty_spool_reads_nothing(tmp_path: Path, batch: int) -> None:
    spool = Spool(tmp_path, max_bytes=1024 * 1024)
    spool.open()
    assert spool.empty
    assert spool.read_batch(max_records=batch) == []
