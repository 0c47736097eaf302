"""DEFAULT, SIMPLE, JSON_LIST and SIMPLE_LIST frames of the same data decode to equal models; and
the per-channel rules (orderbook padding, level cap and ``.n`` suffix; candle intervals and KST).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.upbit.test_decode_real import D78752, TICKER_JSONL, WS62, recorder_frames, ticker_lines
from tests.upbit.test_decode_samples import (
    CANDLE_DEFAULT,
    ORDERBOOK_REALTIME,
    ORDERBOOK_SNAPSHOT,
    REST_MINUTES,
    REST_ORDERBOOK,
    REST_SECONDS,
    TICKER_2025_04_20,
    TICKER_2025_09_26,
    TRADE_2026_09_02,
)
from upbit_pipeline.upbit import fields
from upbit_pipeline.upbit.decode import (
    decode_candles_rest,
    decode_frame,
    decode_orderbooks_rest,
)
from upbit_pipeline.upbit.errors import MalformedFrameError
from upbit_pipeline.upbit.models import (
    Candle,
    Orderbook,
    OrderbookUnit,
    StatusFrame,
    Ticker,
    Trade,
)

DEFAULT_SAMPLES = [
    TICKER_2025_04_20,
    TICKER_2025_09_26,
    TRADE_2026_09_02,
    ORDERBOOK_SNAPSHOT,
    ORDERBOOK_REALTIME,
    CANDLE_DEFAULT,
]


def _key_map(kind: str) -> dict[str, str]:
    return fields.CANDLE if kind.startswith("candle.") else fields.BY_TYPE[kind]


def to_simple(obj: dict[str, Any]) -> dict[str, Any]:
    """A DEFAULT message object re-keyed to SIMPLE with the maps of ``upbit.fields``."""
    mapping = _key_map(obj["type"])
    out = {mapping.get(k, k): v for k, v in obj.items()}
    if "orderbook_units" in obj:
        out["obu"] = [
            {fields.ORDERBOOK_UNIT[k]: v for k, v in unit.items()}
            for unit in obj["orderbook_units"]
        ]
    return out


def to_default(obj: dict[str, Any]) -> dict[str, Any]:
    """A SIMPLE message object re-keyed to DEFAULT."""
    reverse = {v: k for k, v in _key_map(obj["ty"]).items()}
    out = {reverse.get(k, k): v for k, v in obj.items()}
    if "obu" in obj:
        unit_keys = {v: k for k, v in fields.ORDERBOOK_UNIT.items()}
        out["orderbook_units"] = [{unit_keys[k]: v for k, v in unit.items()} for unit in obj["obu"]]
    return out


def dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# --- one data, four formats ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", DEFAULT_SAMPLES)
def test_four_formats_give_equal_models(raw: bytes) -> None:
    default = json.loads(raw)
    simple = to_simple(default)
    [expected] = decode_frame(raw)
    assert decode_frame(dumps(simple)) == [expected]
    assert decode_frame(dumps([default])) == [expected]
    assert decode_frame(dumps([simple])) == [expected]
    assert decode_frame(dumps([default, default])) == [expected, expected]
    assert decode_frame(dumps([simple, simple, simple])) == [expected] * 3
    assert all(type(m) in {Ticker, Trade, Orderbook, Candle} for m in decode_frame(dumps(simple)))


def test_list_frame_may_mix_channels() -> None:
    objs = [json.loads(raw) for raw in DEFAULT_SAMPLES]
    singles = [m for raw in DEFAULT_SAMPLES for m in decode_frame(raw)]
    assert decode_frame(dumps(objs)) == singles
    assert decode_frame(dumps([to_simple(o) for o in objs])) == singles


@pytest.mark.parametrize("name", [D78752, WS62])
def test_real_simple_frames_equal_their_default_form(real_data: Path, name: str) -> None:
    for raw in recorder_frames(real_data / name):
        assert decode_frame(dumps(to_default(json.loads(raw)))) == decode_frame(raw)


def test_real_default_tickers_equal_their_simple_form(real_data: Path) -> None:
    for raw in ticker_lines(real_data / TICKER_JSONL):
        assert decode_frame(dumps(to_simple(json.loads(raw)))) == decode_frame(raw)


@pytest.mark.parametrize("raw", DEFAULT_SAMPLES)
def test_key_order_whitespace_and_unknown_keys_do_not_matter(raw: bytes) -> None:
    default = json.loads(raw)
    expected = decode_frame(raw)
    reordered = dict(reversed(list(default.items())))  # `type` last
    assert decode_frame(json.dumps(reordered, indent=2).encode()) == expected
    extra = {**default, "new_field": {"nested": [1, 2.5, None]}, "zz": "later"}
    assert decode_frame(dumps(extra)) == expected
    assert decode_frame(dumps({**to_simple(default), "nf": 1})) == expected


def test_status_frame_inside_a_list() -> None:
    assert decode_frame(b'[{"status":"UP"}]') == [StatusFrame("UP")]


def test_empty_list_frame_is_no_messages() -> None:
    assert decode_frame(b"[]") == []


# --- orderbook rules -----------------------------------------------------------------------------


def _book(units: list[tuple[float, float, float, float]], code: str = "KRW-XYZ") -> bytes:
    return dumps(
        {
            "type": "orderbook",
            "code": code,
            "timestamp": 1790134742106,
            "total_ask_size": 1.0,
            "total_bid_size": 2.0,
            "orderbook_units": [
                {"ask_price": a, "bid_price": b, "ask_size": a_s, "bid_size": b_s}
                for a, b, a_s, b_s in units
            ],
            "stream_type": "SNAPSHOT",
            "level": 0,
        }
    )


def _decode_book(raw: bytes) -> Orderbook:
    [book] = decode_frame(raw)
    assert isinstance(book, Orderbook)
    [simple] = decode_frame(dumps(to_simple(json.loads(raw))))
    assert simple == book
    return book


def test_thin_book_padding_levels_are_dropped() -> None:
    real = [(101.0, 99.0, 1.0, 2.0), (102.0, 98.0, 3.0, 4.0), (103.0, 97.0, 5.0, 6.0)]
    book = _decode_book(_book(real + [(0, 0, 0, 0)] * 27))
    assert book.units == tuple(OrderbookUnit(*u) for u in real)


def test_one_sided_levels_are_kept_with_the_empty_side_zero() -> None:
    """Two asks, four bids: levels 3-4 keep their bids; their ask side reads 0 (no order)."""
    units = [(101.0, 99.0, 1.0, 2.0), (102.0, 98.0, 3.0, 4.0), (0, 97.0, 0, 6.0), (0, 96.0, 0, 8.0)]
    book = _decode_book(_book(units + [(0, 0, 0, 0)] * 26))
    assert len(book.units) == 4
    assert book.units[2] == OrderbookUnit(0.0, 97.0, 0.0, 6.0)
    asks_only = [(101.0, 99.0, 1.0, 2.0), (102.0, 0, 3.0, 0)]
    assert _decode_book(_book(asks_only)).units[1] == OrderbookUnit(102.0, 0.0, 3.0, 0.0)


def test_empty_book_has_no_units() -> None:
    assert _decode_book(_book([(0, 0, 0, 0)] * 30)).units == ()


def test_at_most_30_levels_best_first() -> None:
    units = [(100.0 + i, 99.0 - i, 1.0, 1.0) for i in range(40)]
    book = _decode_book(_book(units))
    assert len(book.units) == 30
    assert book.units[0].ask_price == 100.0
    assert book.units[-1].ask_price == 129.0


@pytest.mark.parametrize("code", ["KRW-BTC.5", "KRW-BTC.30", "KRW-BTC"])
def test_code_never_carries_the_level_count_suffix(code: str) -> None:
    assert _decode_book(_book([(2.0, 1.0, 1.0, 1.0)], code=code)).code == "KRW-BTC"


def test_rest_orderbook_padding_dropped() -> None:
    padded = REST_ORDERBOOK.replace(
        b"}],",
        b'},{"bid_price":0,"bid_size":0,"ask_price":0,"ask_size":0},'
        b'{"bid_price":0,"bid_size":0,"ask_price":0,"ask_size":0}],',
    )
    assert padded != REST_ORDERBOOK
    assert decode_orderbooks_rest(padded) == decode_orderbooks_rest(REST_ORDERBOOK)


# --- candle rules --------------------------------------------------------------------------------


def test_candle_kst_must_be_utc_plus_9() -> None:
    bad = CANDLE_DEFAULT.replace(b"13:28:05", b"04:28:05")  # KST written as UTC
    with pytest.raises(MalformedFrameError, match=r"candle_date_time_kst .* is not .* \+ 9 h"):
        decode_frame(bad)
    with pytest.raises(MalformedFrameError, match=r"candle_date_time_kst"):
        decode_candles_rest(REST_MINUTES.replace(b"23:40:00", b"14:40:00"), "1m")


def test_candle_without_kst_and_with_explicit_zone() -> None:
    obj = json.loads(CANDLE_DEFAULT)
    [expected] = decode_frame(CANDLE_DEFAULT)
    del obj["candle_date_time_kst"]
    assert decode_frame(dumps(obj)) == [expected]
    obj["candle_date_time_utc"] = "2025-01-02T13:28:05+09:00"
    assert decode_frame(dumps(obj)) == [expected]
    assert isinstance(expected, Candle)
    assert expected.start_utc == datetime(2025, 1, 2, 4, 28, 5, tzinfo=UTC)


def test_rest_minute_unit_must_match_interval() -> None:
    assert decode_candles_rest(REST_MINUTES, "1m")[0].interval == "1m"
    with pytest.raises(MalformedFrameError, match=r"candle unit 1 does not match interval '3m'"):
        decode_candles_rest(REST_MINUTES, "3m")
    with pytest.raises(MalformedFrameError, match=r"does not match interval '1s'"):
        decode_candles_rest(REST_MINUTES, "1s")


def test_rest_unknown_interval_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="unknown candle interval '2m'"):
        decode_candles_rest(REST_SECONDS, "2m")
    with pytest.raises(ValueError, match="unknown candle interval 'minutes'"):
        decode_candles_rest(REST_SECONDS, "minutes")


def test_rest_candles_keep_response_order() -> None:
    rows = [json.loads(REST_MINUTES)[0] for _ in range(3)]
    for i, row in enumerate(rows):
        row["candle_date_time_utc"] = f"2026-03-11T14:4{2 - i}:00"
        row["candle_date_time_kst"] = f"2026-03-11T23:4{2 - i}:00"
    starts = [c.start_utc.minute for c in decode_candles_rest(dumps(rows), "1m")]
    assert starts == [42, 41, 40]
