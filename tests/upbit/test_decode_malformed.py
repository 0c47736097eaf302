"""Bad input raises MalformedFrameError with a reason that names the fault, and nothing else.

The explicit cases pin the reasons; the hypothesis properties throw random bytes, random JSON and
mutated real frames at every decoder and accept only a result or a MalformedFrameError.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.upbit.test_decode_real import D78752, TICKER_JSONL, recorder_frames, ticker_lines
from tests.upbit.test_decode_samples import (
    CANDLE_DEFAULT,
    CANDLE_SIMPLE_LIST,
    ORDERBOOK_SIMPLE_LIST,
    ORDERBOOK_SNAPSHOT,
    REST_DAYS,
    REST_MARKETS_DETAILS,
    REST_MINUTES,
    REST_ORDERBOOK,
    REST_TICKER,
    REST_TRADES,
    TICKER_2025_04_20,
    TRADE_2026_09_02,
    TRADE_JSON_LIST_DOC,
)
from upbit_pipeline.upbit import fields
from upbit_pipeline.upbit.decode import (
    decode_candles_rest,
    decode_frame,
    decode_markets,
    decode_orderbooks_rest,
    decode_rest_error,
    decode_tickers_rest,
    decode_trades_rest,
)
from upbit_pipeline.upbit.errors import MalformedFrameError
from upbit_pipeline.upbit.models import (
    Candle,
    ErrorFrame,
    Orderbook,
    StatusFrame,
    Ticker,
    Trade,
)

MESSAGE_TYPES = {Trade, Ticker, Orderbook, Candle, StatusFrame, ErrorFrame}
FUZZ = settings(max_examples=300, deadline=None)


def _replace(raw: bytes, old: bytes, new: bytes) -> bytes:
    assert old in raw
    return raw.replace(old, new, 1)


MALFORMED = [
    (b"", "empty frame"),
    (b"  \n", "empty frame"),
    (TRADE_2026_09_02[:-40], "invalid JSON: Input data was truncated"),
    (b"{'ty':'trade'}", "invalid JSON: JSON is malformed: object keys must be strings"),
    (b"PONG", "invalid JSON"),
    (b'{"type":"trade"}\xff', "invalid JSON"),
    (b"[" * 100_000, "invalid JSON: maximum recursion depth exceeded"),
    (
        _replace(TRADE_2026_09_02, b'"code":"KRW-BTC"', b'"code":5'),
        "trade (DEFAULT): Expected `str`, got `int` - at `$.code`",
    ),
    (
        _replace(TRADE_2026_09_02, b'"code":"KRW-BTC",', b""),
        "trade (DEFAULT): Object missing required field `code`",
    ),
    (
        _replace(ORDERBOOK_SIMPLE_LIST, b'"cd":"KRW-BTC",', b""),
        "item 0: orderbook (SIMPLE): Object missing required field `cd`",
    ),
    (
        _replace(TRADE_2026_09_02, b'"sequential_id":17883351803770004', b'"sequential_id":1.7E16'),
        "trade (DEFAULT): Expected `int`, got `float` - at `$.sequential_id`",
    ),
    (
        _replace(TRADE_2026_09_02, b'"timestamp":1788335180423', b'"timestamp":"1788335180423"'),
        "trade (DEFAULT): Expected `int`, got `str` - at `$.timestamp`",
    ),
    (
        _replace(TICKER_2025_04_20, b'"trade_price":122902000.00000000', b'"trade_price":1e400'),
        "invalid JSON: Number out of range",
    ),
    (
        _replace(TICKER_2025_04_20, b'"is_trading_suspended":false', b'"is_trading_suspended":0'),
        "ticker (DEFAULT): Expected `bool | null`, got `int` - at `$.is_trading_suspended`",
    ),
    (
        _replace(ORDERBOOK_SNAPSHOT, b'"bid_size":0.08120946', b'"bid_size":"0.08120946"'),
        "orderbook (DEFAULT): Expected `float`, got `str` - at `$.orderbook_units[0].bid_size`",
    ),
    (
        _replace(CANDLE_DEFAULT, b"2025-01-02T04:28:05", b"yesterday"),
        "candle.1s (DEFAULT): Invalid RFC3339 encoded datetime - at `$.candle_date_time_utc`",
    ),
    (b'{"type":"nope","code":"KRW-BTC"}', "unknown message type 'nope' in `type`"),
    (b'{"ty":"candle.2m"}', "unknown message type 'candle.2m' in `ty`"),
    (b'{"type":5}', "`type` must be a string, got number"),
    (b'{"code":"KRW-BTC","price":1}', "no `type` or `ty` key (keys: code, price)"),
    (b"null", "expected a JSON object, got null"),
    (b"42", "expected a JSON object, got number"),
    (b'"trade"', "expected a JSON object, got string"),
    (TRADE_JSON_LIST_DOC[:-1] + b",5]", "item 2: expected a JSON object, got number"),
    (TRADE_JSON_LIST_DOC[:-1] + b',"x"]', "item 2: expected a JSON object, got string"),
    (b"[" + TRADE_2026_09_02 + b",[]]", "item 1: expected a JSON object, got array"),
    (b'[{"foo":1}]', "item 0: no `type` or `ty` key (keys: foo)"),
    (
        CANDLE_SIMPLE_LIST[:-1] + b',{"ty":"trade","cd":"KRW-BTC"}]',
        "item 1: trade (SIMPLE): Object missing required field `",
    ),
    (b'{"status":1}', "status frame: Expected `str`, got `int` - at `$.status`"),
    (b'{"error":{"name":"NO_TICKET"}}', "error frame: Object missing required field `message`"),
    (b'{"error":"boom"}', "error frame: Expected `object`, got `str`"),
]


@pytest.mark.parametrize(("raw", "reason"), MALFORMED)
def test_malformed_frames_name_the_fault(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedFrameError) as info:
        decode_frame(raw)
    assert info.value.reason.startswith(reason)
    assert info.value.raw == raw
    assert str(info.value) == info.value.reason


def test_missing_required_ticker_field() -> None:
    raw = _replace(TICKER_2025_04_20, b'"acc_trade_price_24h":67648718116.20854000,', b"")
    with pytest.raises(MalformedFrameError, match="missing required field `acc_trade_price_24h`"):
        decode_frame(raw)


REST_DECODERS: list[tuple[str, Callable[[bytes], list[Any]], bytes]] = [
    ("/v1/trades/ticks", decode_trades_rest, REST_TRADES),
    ("/v1/ticker", decode_tickers_rest, REST_TICKER),
    ("/v1/orderbook", decode_orderbooks_rest, REST_ORDERBOOK),
    ("/v1/market/all", decode_markets, REST_MARKETS_DETAILS),
    ("/v1/candles (1m)", lambda body: decode_candles_rest(body, "1m"), REST_MINUTES),
    ("/v1/candles (1d)", lambda body: decode_candles_rest(body, "1d"), REST_DAYS),
]


@pytest.mark.parametrize(("what", "decode", "body"), REST_DECODERS)
def test_rest_malformed_bodies_name_the_endpoint(
    what: str, decode: Callable[[bytes], list[Any]], body: bytes
) -> None:
    assert decode(body)
    for bad, fault in [
        (b"", "Input data was truncated"),
        (body[:-5], "truncated"),
        (b"{}", "Expected `array`, got `object`"),
        (b"[1]", "Expected `object`, got `int` - at `$[0]`"),
        (body.replace(b'"market":"KRW-BTC"', b'"market":7', 1), "Expected `str`, got `int`"),
    ]:
        with pytest.raises(MalformedFrameError) as info:
            decode(bad)
        assert info.value.reason.startswith(f"{what}: ")
        assert fault in info.value.reason
        assert info.value.raw == bad


# --- properties ----------------------------------------------------------------------------------


def assert_decodes_or_malformed(raw: bytes) -> None:
    try:
        messages = decode_frame(raw)
    except MalformedFrameError as exc:
        assert exc.raw == raw
        assert exc.reason
    else:
        assert all(type(m) in MESSAGE_TYPES for m in messages)


def assert_rest_decodes_or_malformed(body: bytes) -> None:
    for _, decode, _ in REST_DECODERS:
        try:
            decode(body)
        except MalformedFrameError as exc:
            assert exc.raw == body
    result = decode_rest_error(body)
    assert result is None or isinstance(result, tuple)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
ALL_KEYS = sorted(
    {k for m in fields.BY_TYPE.values() for pair in m.items() for k in pair}
    | set(fields.ORDERBOOK_UNIT)
    | {"orderbook_units", "obu", "status", "error", "name", "message"}
)
MESSAGE_TAGS = ["trade", "ticker", "orderbook", *fields.CANDLE_WS_TYPES, "nope"]


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(raw: bytes) -> None:
    assert_decodes_or_malformed(raw)
    assert_rest_decodes_or_malformed(raw)


@FUZZ
@given(JSON_VALUES)
def test_random_json(value: object) -> None:
    raw = json.dumps(value).encode()
    assert_decodes_or_malformed(raw)
    assert_rest_decodes_or_malformed(raw)


@FUZZ
@given(
    st.sampled_from(["type", "ty"]),
    st.sampled_from(MESSAGE_TAGS),
    st.dictionaries(st.sampled_from(ALL_KEYS), JSON_VALUES, max_size=12),
    st.booleans(),
)
def test_random_message_shaped_objects(
    tag_key: str, tag: str, body: dict[str, object], as_list: bool
) -> None:
    obj = {tag_key: tag, **body}
    assert_decodes_or_malformed(json.dumps([obj] if as_list else obj).encode())


def _paths(value: object, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path inside a decoded JSON value."""
    out = [path] if path else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


def _mutate(raw: bytes, data: st.DataObject) -> bytes:
    op = data.draw(st.sampled_from(["truncate", "flip", "delete", "retype"]))
    if op == "truncate":
        return raw[: data.draw(st.integers(0, len(raw) - 1))]
    if op == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        return raw[:i] + bytes([raw[i] ^ data.draw(st.integers(1, 255))]) + raw[i + 1 :]
    value = json.loads(raw)
    path = data.draw(st.sampled_from(_paths(value)))
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    if op == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(
            JSON_VALUES.filter(lambda v: type(v) is not type(parent[path[-1]]))
        )
    return json.dumps(value).encode()


@pytest.fixture(scope="module")
def seed_frames(real_data: Path) -> list[bytes]:
    recorded = recorder_frames(real_data / D78752)
    return [
        TRADE_2026_09_02,
        TICKER_2025_04_20,
        ORDERBOOK_SNAPSHOT,
        ORDERBOOK_SIMPLE_LIST,
        CANDLE_DEFAULT,
        CANDLE_SIMPLE_LIST,
        TRADE_JSON_LIST_DOC,
        b'{"status":"UP"}',
        b'{"error":{"name":"NO_TICKET","message":"x"}}',
        *recorded[:3],
        *[f for f in recorded if b'"ty":"trade"' in f][:3],
        *ticker_lines(real_data / TICKER_JSONL)[:3],
    ]


@FUZZ
@given(data=st.data())
def test_mutated_real_frames(seed_frames: list[bytes], data: st.DataObject) -> None:
    raw = data.draw(st.sampled_from(seed_frames))
    assert_decodes_or_malformed(_mutate(raw, data))


@FUZZ
@given(data=st.data())
def test_mutated_rest_bodies(data: st.DataObject) -> None:
    body = data.draw(st.sampled_from([body for _, _, body in REST_DECODERS]))
    assert_rest_decodes_or_malformed(_mutate(body, data))
