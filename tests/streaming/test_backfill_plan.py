"""Backfill pieces without a broker: day planning, ``to``, page splitting, coalescing, offsets."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from upbit_pipeline.streaming.backfill import _Offsets, coalesce_gaps
from upbit_pipeline.streaming.backfill_fetch import DAY_MS, DayQuery, plan_days, split_page
from upbit_pipeline.streaming.gaps import GapEvent

DAY = 20_000  # an arbitrary UTC day number
MIDNIGHT = DAY * DAY_MS


def _gap(market: str, from_ms: int, to_ms: int) -> GapEvent:
    return GapEvent(market, "trade", from_ms, to_ms, "reconnect")


def test_plan_one_day_today_uses_to_just_after_the_gap() -> None:
    queries, truncated = plan_days(MIDNIGHT + 3_600_000, MIDNIGHT + 3_605_500, today=DAY)
    assert queries == [DayQuery(DAY, None, "010006")]  # 01:00:05.500 -> first second after
    assert not truncated


def test_plan_whole_second_end_still_includes_that_millisecond() -> None:
    (query,), _ = plan_days(MIDNIGHT + 1000, MIDNIGHT + 5000, today=DAY + 2)
    assert query == DayQuery(DAY, 2, "000006")  # 00:00:05.000 inclusive -> to=00:00:06


def test_plan_crossing_midnight_asks_both_days_newest_first() -> None:
    queries, truncated = plan_days(MIDNIGHT - 90_000, MIDNIGHT + 60_000, today=DAY)
    assert queries == [DayQuery(DAY, None, "000101"), DayQuery(DAY - 1, 1, None)]
    assert not truncated


def test_plan_last_second_of_a_day_needs_no_to() -> None:
    queries, _ = plan_days(MIDNIGHT - 5000, MIDNIGHT - 1, today=DAY + 1)
    assert queries == [DayQuery(DAY - 1, 2, None)]
    queries, _ = plan_days(MIDNIGHT - 5000, MIDNIGHT - 400, today=DAY + 1)
    assert queries == [DayQuery(DAY - 1, 2, None)]  # 23:59:59.600 rounds up to the day's end


def test_plan_seven_day_window() -> None:
    queries, truncated = plan_days(MIDNIGHT - 7 * DAY_MS, MIDNIGHT - 7 * DAY_MS + 10, today=DAY)
    assert queries == [DayQuery(DAY - 7, 7, "000001")] and not truncated
    queries, truncated = plan_days(MIDNIGHT - 8 * DAY_MS, MIDNIGHT - 8 * DAY_MS + 10, today=DAY)
    assert queries == [] and truncated
    queries, truncated = plan_days(MIDNIGHT - 9 * DAY_MS, MIDNIGHT - 6 * DAY_MS, today=DAY)
    assert [q.day for q in queries] == [DAY - 6, DAY - 7] and truncated


def test_split_page_keeps_each_trade_byte_for_byte() -> None:
    one = (
        b'{"market":"KRW-BTC","trade_date_utc":"2026-03-11","trade_time_utc":"14:40:59",'
        b'"timestamp":1773240059095,"trade_price":103460000.00000000,"trade_volume":0.00400000,'
        b'"prev_closing_price":102417000.00000000,"change_price":1043000.00000000,'
        b'"ask_bid":"ASK","sequential_id":17732400590950000}'
    )
    two = one.replace(b"0.00400000", b"4.0E-3").replace(b"0950000}", b"0950001}")
    page = split_page(b"[" + one + b",\n " + two + b"]")
    assert [item.raw for item in page] == [one, two]
    assert [item.trade.sequential_id for item in page] == [17732400590950000, 17732400590950001]
    assert page[1].trade.trade_volume == 0.004


def test_coalesce_merges_overlaps_of_one_market_only() -> None:
    gaps = [
        ("a", _gap("KRW-BTC", 100, 200)),
        ("b", _gap("KRW-ETH", 150, 160)),
        ("c", _gap("KRW-BTC", 180, 300)),
        ("d", _gap("KRW-BTC", 301, 400)),  # disjoint: seen live in between
        ("e", _gap("KRW-BTC", 120, 130)),  # inside a
    ]
    jobs = coalesce_gaps(gaps)
    assert [(g.market, g.from_ms, g.to_ms, tags) for g, tags in jobs] == [
        ("KRW-BTC", 100, 300, ["a", "e", "c"]),
        ("KRW-ETH", 150, 160, ["b"]),
        ("KRW-BTC", 301, 400, ["d"]),
    ]


class _Msg:
    def __init__(self, partition: int, offset: int) -> None:
        self._p, self._o = partition, offset

    def topic(self) -> str:
        return "upbit.gaps"

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o


def _tps(items: list[TopicPartition]) -> list[tuple[int, int]]:
    return sorted((tp.partition, tp.offset) for tp in items)


def test_offsets_commit_only_a_done_prefix() -> None:
    msgs = [_Msg(0, 5), _Msg(0, 6), _Msg(0, 7), _Msg(1, 2)]
    offsets = _Offsets(msgs)  # type: ignore[arg-type]
    offsets.mark(msgs[1])  # type: ignore[arg-type]
    assert offsets.ready() == []  # 5 is not done: committing 7 would skip it
    offsets.mark(msgs[0])  # type: ignore[arg-type]
    offsets.mark(msgs[3])  # type: ignore[arg-type]
    assert _tps(offsets.ready()) == [(0, 7), (1, 3)]
    assert offsets.ready() == []  # nothing new
    offsets.mark(msgs[2])  # type: ignore[arg-type]
    assert _tps(offsets.ready()) == [(0, 8)]
