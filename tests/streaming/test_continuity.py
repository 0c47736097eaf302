"""Gap detection rules: connection change (reason from the ws client's event), resubscribe,
spool overflow, producer restart through the checkpoint file."""

from __future__ import annotations

import json
from pathlib import Path

from upbit_pipeline.streaming.continuity import Continuity
from upbit_pipeline.upbit.ws.client import ConnEvent


def test_first_event_ever_is_no_gap(tmp_path: Path) -> None:
    c = Continuity(tmp_path / "cp.json")
    assert c.load() == 0
    assert c.observe("KRW-BTC", "trade", 1000, "p-0-0", snapshot=True) is None
    assert c.observe("KRW-BTC", "trade", 1001, "p-0-0", snapshot=False) is None


def test_new_connection_closes_a_gap_with_the_reason_of_the_old_one(tmp_path: Path) -> None:
    c = Continuity(tmp_path / "cp.json")
    c.observe("KRW-BTC", "trade", 1000, "p-0-0", snapshot=False)
    c.observe("KRW-ETH", "ticker", 1100, "p-0-0", snapshot=False)
    c.on_conn_event(ConnEvent("silence", "p-0-0", 0, ("KRW-BTC", "KRW-ETH"), "quiet"))
    gap = c.observe("KRW-BTC", "trade", 5000, "p-0-1", snapshot=True)
    assert gap is not None
    assert (gap.market, gap.channel, gap.from_ms, gap.to_ms) == ("KRW-BTC", "trade", 1000, 5000)
    assert gap.reason == "silence"
    assert gap.conn_id == "p-0-0"
    assert c.observe("KRW-BTC", "trade", 5001, "p-0-1", snapshot=False) is None
    other = c.observe("KRW-ETH", "ticker", 900, "p-0-1", snapshot=True)  # older snapshot time
    assert other is not None
    assert (other.from_ms, other.to_ms, other.reason) == (1100, 1100, "silence")


def test_unknown_end_reason_defaults_to_reconnect(tmp_path: Path) -> None:
    c = Continuity(tmp_path / "cp.json")
    c.observe("KRW-BTC", "orderbook", 1000, "a-0-0", snapshot=False)
    gap = c.observe("KRW-BTC", "orderbook", 2000, "a-0-1", snapshot=True)
    assert gap is not None
    assert gap.reason == "reconnect"


def test_resubscribe_gap_is_closed_by_the_next_snapshot_on_that_connection(tmp_path: Path) -> None:
    c = Continuity(tmp_path / "cp.json")
    c.observe("KRW-BTC", "trade", 1000, "p-0-0", snapshot=False)
    c.observe("KRW-XRP", "trade", 1000, "p-0-0", snapshot=False)
    c.on_conn_event(ConnEvent("resubscribe", "p-0-0", 0, ("KRW-BTC",), "codes changed"))
    assert c.observe("KRW-BTC", "trade", 1010, "p-0-0", snapshot=False) is None  # old stream
    gap = c.observe("KRW-BTC", "trade", 1500, "p-0-0", snapshot=True)
    assert gap is not None
    assert (gap.from_ms, gap.to_ms, gap.reason) == (1010, 1500, "resubscribe")
    assert c.observe("KRW-XRP", "trade", 1600, "p-0-0", snapshot=True) is None  # not carried


def test_dropped_events_yield_a_spool_overflow_gap(tmp_path: Path) -> None:
    c = Continuity(tmp_path / "cp.json")
    c.observe("KRW-BTC", "trade", 1000, "p-0-0", snapshot=False)
    c.dropped("KRW-BTC", "trade")
    c.dropped("KRW-BTC", "trade")
    gap = c.observe("KRW-BTC", "trade", 9000, "p-0-0", snapshot=False)
    assert gap is not None
    assert (gap.from_ms, gap.to_ms, gap.reason) == (1000, 9000, "spool_overflow")


def test_checkpoint_round_trip_gives_producer_restart_gaps(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    first = Continuity(path)
    first.save({("KRW-BTC", "trade"): 1000, ("KRW-BTC", "ticker"): 1200})
    assert json.loads(path.read_text())["last_ms"]["KRW-BTC"] == {"trade": 1000, "ticker": 1200}

    second = Continuity(path)
    assert second.load() == 2
    gap = second.observe("KRW-BTC", "trade", 4000, "q-0-0", snapshot=True)
    assert gap is not None
    assert (gap.from_ms, gap.to_ms, gap.reason) == (1000, 4000, "producer_restart")
    assert second.observe("KRW-BTC", "trade", 4001, "q-0-0", snapshot=False) is None
    # an unresolved entry survives a second restart; a resolved one is replaced by new data
    second.save({("KRW-BTC", "trade"): 4001})
    third = Continuity(path)
    third.load()
    assert json.loads(path.read_text())["last_ms"]["KRW-BTC"] == {"trade": 4001, "ticker": 1200}
