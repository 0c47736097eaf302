"""Trade de-duplication window."""

from __future__ import annotations

import pytest

from upbit_pipeline.streaming.dedup import TradeDedup


def test_repeat_within_window_is_dropped_per_market() -> None:
    dedup = TradeDedup(window=1000)
    assert dedup.first_time("KRW-BTC", 17)
    assert not dedup.first_time("KRW-BTC", 17)
    assert dedup.first_time("KRW-ETH", 17)  # same id, other market: a different trade


def test_window_forgets_oldest_and_stays_bounded() -> None:
    dedup = TradeDedup(window=3)
    for sid in (1, 2, 3, 4):
        assert dedup.first_time("KRW-BTC", sid)
    assert len(dedup) == 3
    assert dedup.first_time("KRW-BTC", 1)  # fell out of the window
    assert not dedup.first_time("KRW-BTC", 4)


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        TradeDedup(0)
