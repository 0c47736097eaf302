"""Request building, sharding and per-connection message pacing (pure, no socket)."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from upbit_pipeline.upbit.ws import (
    MessageBudget,
    build_request,
    normalize_codes,
    plan_shards,
    request_size,
)


def test_request_has_ticket_types_and_format_last() -> None:
    raw = build_request(["trade", "ticker", "candle.1m"], ["KRW-BTC", "KRW-ETH"], fmt="SIMPLE")
    message = json.loads(raw)
    assert list(message[0]) == ["ticket"]
    assert len(message[0]["ticket"]) == 36  # a UUID
    assert message[1:-1] == [
        {"type": "trade", "codes": ["KRW-BTC", "KRW-ETH"], "is_only_realtime": False},
        {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"], "is_only_realtime": False},
        {"type": "candle.1m", "codes": ["KRW-BTC", "KRW-ETH"], "is_only_realtime": False},
    ]
    assert message[-1] == {"format": "SIMPLE"}
    assert b" " not in raw  # compact


def test_realtime_only_per_channel_and_fresh_tickets() -> None:
    a = json.loads(build_request(["trade", "orderbook"], ["KRW-BTC"], realtime_only={"trade"}))
    b = json.loads(build_request(["trade", "orderbook"], ["KRW-BTC"]))
    assert a[1]["is_only_realtime"] is True
    assert a[2]["is_only_realtime"] is False
    assert a[0]["ticket"] != b[0]["ticket"]


@pytest.mark.parametrize(
    ("channels", "codes", "fmt"),
    [
        (["nope"], ["KRW-BTC"], "SIMPLE"),
        ([], ["KRW-BTC"], "SIMPLE"),
        (["trade"], [], "SIMPLE"),
        (["trade"], ["KRW-BTC"], "XML"),
    ],
)
def test_bad_requests_are_refused_locally(channels, codes, fmt) -> None:
    with pytest.raises(ValueError):
        build_request(channels, codes, fmt=fmt)


def test_normalize_codes() -> None:
    assert normalize_codes(["krw-btc", "KRW-BTC", " KRW-ETH ", ""]) == ["KRW-BTC", "KRW-ETH"]


def test_shard_by_count() -> None:
    codes = [f"KRW-C{i}" for i in range(7)]
    shards = plan_shards(codes, ["trade"], max_codes=3)
    assert shards == [codes[0:3], codes[3:6], codes[6:7]]


def test_sharding_is_sticky() -> None:
    codes = [f"KRW-C{i}" for i in range(7)]
    before = plan_shards(codes, ["trade"], max_codes=3)
    # C1 delisted, two new listings: only shard 0 (room) and shard 2 change
    after = plan_shards(
        [*codes[:1], *codes[2:], "KRW-N1", "KRW-N2"], ["trade"], max_codes=3, previous=before
    )
    assert after[0] == ["KRW-C0", "KRW-C2", "KRW-N1"]
    assert after[1] == before[1]
    assert after[2] == ["KRW-C6", "KRW-N2"]
    # everything of shard 1 delisted: the slot stays, empty (its connection closes)
    gone = plan_shards(["KRW-C0"], ["trade"], max_codes=3, previous=before)
    assert gone == [["KRW-C0"], [], []]


@given(
    codes=st.lists(st.from_regex(r"KRW-[A-Z0-9]{1,10}", fullmatch=True), max_size=120),
    max_codes=st.integers(1, 50),
    max_bytes=st.integers(300, 3000),
)
def test_shards_respect_both_limits_and_cover_every_code(codes, max_codes, max_bytes) -> None:
    channels = ["trade", "ticker", "orderbook"]
    shards = plan_shards(codes, channels, max_codes=max_codes, max_bytes=max_bytes)
    flat = [c for shard in shards for c in shard]
    assert flat == normalize_codes(codes) or sorted(flat) == sorted(normalize_codes(codes))
    assert len(flat) == len(set(flat))
    for shard in shards:
        assert 1 <= len(shard) <= max_codes
        assert len(build_request(channels, shard)) <= max_bytes
        assert request_size(channels, shard, "SIMPLE") <= max_bytes


def test_default_shard_holds_100_krw_codes_with_four_channels() -> None:
    codes = [f"KRW-COIN{i}" for i in range(290)]
    shards = plan_shards(codes, ["trade", "ticker", "orderbook", "candle.1m"])
    assert [len(s) for s in shards] == [100, 100, 90]


async def test_message_budget_paces_five_per_second() -> None:
    budget = MessageBudget(margin_s=0.0)
    started = time.monotonic()
    for _ in range(11):
        await budget.acquire()
    assert time.monotonic() - started >= 1.95  # 5 now, 5 after 1 s, 1 after 2 s


async def test_message_budget_minute_limit() -> None:
    now = [0.0]
    budget = MessageBudget(per_s=1000, per_min=3, margin_s=0.0, clock=lambda: now[0])
    for _ in range(3):
        await budget.acquire()
    assert budget._minute.delay() == pytest.approx(60.0)
