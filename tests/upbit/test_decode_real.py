"""Every frame and response in ../shared/data/upbit-real decodes, with counts pinned per file.

Record and replay: the cryptofeed recorder files hold the exact received bytes as Python bytes
literals (``<recv_s>: b'...'``); ``ast.literal_eval`` recovers them here, in tests only.
"""

from __future__ import annotations

import ast
import csv
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from upbit_pipeline.upbit.decode import (
    channel_of,
    decode_candles_rest,
    decode_frame,
    decode_markets,
)
from upbit_pipeline.upbit.models import Candle, Orderbook, Ticker, Trade, UpbitMessage

D78752 = "cryptofeed/UPBIT-d78752.0"
WS62 = "cryptofeed/UPBIT.ws.62.0"
TICKER_JSONL = "ws_ticker/sml1323_upbit_ticker_data_2025-07-14.jsonl"
MARKETS_2021 = "cryptofeed/UPBIT.0"
MARKETS_2025 = "market_all/helenhelen2025_upbit_markets_2025-07-26.json"
DAYS = "candles_days/kims5306_KRW-BTC_2025-09-05_00-00-00_100.json"
NXPC_CSV = "candles_1m/KRW-NXPC_2025-05-15_listing_1m.csv"
SMTM = [  # file, interval, rows
    ("smtm/data200.json", "1m", 200),
    ("smtm/data_2021-01-30_1101-1420.json", "1m", 200),
    ("smtm/test_record_2020-03-10.json", "1m", 100),
    ("smtm/upbit_1m_20200220_170000-20200220_202000.json", "1m", 200),
    ("smtm/upbit_1m_20200220_202000-20200220_210000.json", "1m", 40),
    ("smtm/upbit_3m_20200220_000000-20200220_100000.json", "3m", 200),
    ("smtm/upbit_3m_20200220_100000-20200220_120000.json", "3m", 40),
    ("smtm/upbit_3m_20200220_170000-20200220_200000.json", "3m", 60),
]


def recorder_frames(path: Path) -> list[bytes]:
    """The raw frames of a cryptofeed recorder file, in arrival order."""
    frames = []
    for line in path.read_text(encoding="utf-8").splitlines():
        head, sep, literal = line.partition(": ")
        if sep and head.replace(".", "", 1).isdigit() and literal.startswith("b"):
            frames.append(ast.literal_eval(literal))
    return frames


def ticker_lines(path: Path) -> list[bytes]:
    return [line.encode() for line in path.read_text(encoding="utf-8").splitlines() if line]


def market_all_2021_body(path: Path) -> bytes:
    """Line 1 is ``https://api.upbit.com/v1/market/all -> <ts>: <body>``."""
    return path.read_bytes().split(b"\n", 1)[0].split(b": ", 1)[1]


def csv_candles_body(path: Path) -> bytes:
    """The REST JSON array the CSV export was made from (one object per row, same key names)."""
    ints, texts = {"timestamp", "unit"}, {"market", "candle_date_time_utc", "candle_date_time_kst"}
    with path.open(newline="") as handle:
        rows = [
            {k: v if k in texts else int(v) if k in ints else float(v) for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]
    return json.dumps(rows).encode()


def decode_all(frames: list[bytes]) -> list[UpbitMessage]:
    return [message for frame in frames for message in decode_frame(frame)]


# --- WebSocket captures --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "frames", "per_channel", "per_market"),
    [
        (
            D78752,
            1733,
            {"orderbook": 1061, "trade": 672},
            {("KRW-DAWN", "trade"): 321, ("KRW-DAWN", "orderbook"): 260},
        ),
        (
            WS62,
            449,
            {"trade": 304, "orderbook": 145},
            {("KRW-LAMB", "trade"): 299, ("KRW-LAMB", "orderbook"): 87},
        ),
    ],
)
def test_cryptofeed_simple_captures(
    real_data: Path,
    name: str,
    frames: int,
    per_channel: dict[str, int],
    per_market: dict[tuple[str, str], int],
) -> None:
    raw = recorder_frames(real_data / name)
    messages = decode_all(raw)
    assert len(raw) == frames
    assert len(messages) == frames  # one message per SIMPLE frame
    assert Counter(channel_of(m) for m in messages) == per_channel
    by_market = Counter((m.code, channel_of(m)) for m in messages)  # type: ignore[union-attr]
    assert {key: by_market[key] for key in per_market} == per_market
    for message in messages:
        assert message.stream_type == "REALTIME"  # type: ignore[union-attr]  # isOnlyRealtime
        if isinstance(message, Orderbook):
            assert len(message.units) == 15  # the 2021 depth; no zero padding in these books
            assert "." not in message.code
            asks = [u.ask_price for u in message.units]
            bids = [u.bid_price for u in message.units]
            assert asks == sorted(asks)
            assert bids == sorted(bids, reverse=True)
            assert bids[0] < asks[0]
            assert message.level == 0.0  # 2021 frames have no `lv`
        else:
            assert isinstance(message, Trade)
            assert message.best_ask_price is None  # `best_*` arrived 2024-11-27
            assert message.trade_timestamp % 1000 == 0  # 2021: whole seconds
            # 2021 ids are trade_timestamp followed by a counter (3 digits on KRW, 4 on BTC)
            assert str(message.sequential_id).startswith(str(message.trade_timestamp))


def test_cryptofeed_trade_ids_are_unique_per_market_only(real_data: Path) -> None:
    """``sequential_id`` is unique within a market; two markets can share one (dedupe by both)."""
    for name in (D78752, WS62):
        trades = [m for m in decode_all(recorder_frames(real_data / name)) if isinstance(m, Trade)]
        assert len({(t.code, t.sequential_id) for t in trades}) == len(trades)
    trades = [m for m in decode_all(recorder_frames(real_data / D78752)) if isinstance(m, Trade)]
    assert len({t.sequential_id for t in trades}) == 530 < len(trades) == 672


def test_ws_ticker_jsonl(real_data: Path) -> None:
    tickers = decode_all(ticker_lines(real_data / TICKER_JSONL))
    assert len(tickers) == 456
    assert all(isinstance(t, Ticker) for t in tickers)
    codes = Counter(t.code for t in tickers if isinstance(t, Ticker))
    assert len(codes) == 124
    assert all(code.startswith("KRW-") for code in codes)
    assert codes.most_common(3) == [("KRW-XRP", 53), ("KRW-XLM", 32), ("KRW-DEEP", 26)]
    for t in tickers:
        assert isinstance(t, Ticker)
        assert (t.stream_type, t.market_state, t.delisting_date) == ("REALTIME", "ACTIVE", None)
        assert t.is_trading_suspended is False
        assert t.lowest_52_week_date is not None


# --- REST responses ------------------------------------------------------------------------------


def test_market_all_2021_plain(real_data: Path) -> None:
    markets = decode_markets(market_all_2021_body(real_data / MARKETS_2021))
    assert len(markets) == 294
    assert Counter(m.quote for m in markets) == {"KRW": 117, "BTC": 161, "USDT": 16}
    assert all(m.market_event is None and m.market_warning is None for m in markets)
    assert markets[0].market == "KRW-BTC"


def test_market_all_2025_details(real_data: Path) -> None:
    markets = decode_markets((real_data / MARKETS_2025).read_bytes())
    assert len(markets) == 536
    assert Counter(m.quote for m in markets) == {"KRW": 183, "BTC": 239, "USDT": 114}
    events = [m.market_event for m in markets]
    assert all(e is not None and len(e.caution) == 5 for e in events)
    assert sum(e.warning for e in events if e is not None) == 5


@pytest.mark.parametrize(("name", "interval", "rows"), SMTM)
def test_smtm_minute_candles(real_data: Path, name: str, interval: str, rows: int) -> None:
    candles = decode_candles_rest((real_data / name).read_bytes(), interval)
    assert len(candles) == rows
    assert {c.code for c in candles} == {"KRW-BTC"}
    assert {c.interval for c in candles} == {interval}
    starts = [c.start_utc for c in candles]
    assert starts == sorted(starts, reverse=True)  # response order kept: newest first
    assert len(set(starts)) == rows
    step = int(interval[:-1])
    assert all(s.minute % step == 0 and s.second == 0 and s.tzinfo is UTC for s in starts)
    assert all(c.low_price <= min(c.opening_price, c.trade_price) for c in candles)
    assert all(c.high_price >= max(c.opening_price, c.trade_price) for c in candles)


def test_smtm_two_1m_files_are_240_consecutive_minutes(real_data: Path) -> None:
    first, second = (
        decode_candles_rest((real_data / name).read_bytes(), "1m") for name, _, _ in SMTM[3:5]
    )
    starts = sorted(c.start_utc for c in first + second)
    assert len(starts) == 240
    assert starts[0] == datetime(2020, 2, 20, 8, 0, tzinfo=UTC)  # 17:00 KST
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(starts))


def test_days_candles(real_data: Path) -> None:
    candles = decode_candles_rest((real_data / DAYS).read_bytes(), "1d")
    assert len(candles) == 100
    assert candles[0].start_utc == datetime(2025, 9, 4, tzinfo=UTC)
    assert candles[-1].start_utc == datetime(2025, 5, 28, tzinfo=UTC)
    for c in candles:
        assert (c.interval, c.start_utc.hour, c.first_day_of_period) == ("1d", 0, None)
        assert c.prev_closing_price is not None
        assert c.change_price is not None
        assert c.change_rate is not None
        assert c.change_price == pytest.approx(c.trade_price - c.prev_closing_price)
        assert c.change_rate == pytest.approx(c.change_price / c.prev_closing_price, abs=1e-9)


def test_nxpc_listing_csv(real_data: Path) -> None:
    candles = decode_candles_rest(csv_candles_body(real_data / NXPC_CSV), "1m")
    assert len(candles) == 17550
    assert candles[0].start_utc == datetime(2025, 5, 15, 9, 35, tzinfo=UTC)
    assert candles[-1].start_utc == datetime(2025, 5, 27, 15, 36, tzinfo=UTC)
    assert candles[0].opening_price == 4352.0
    assert candles[-1].trade_price == 2629.0
    assert max(c.high_price for c in candles) == 4912.0
    lowest = min(candles, key=lambda c: c.low_price)
    assert (lowest.low_price, lowest.start_utc) == (2485.0, datetime(2025, 5, 22, 6, tzinfo=UTC))
    gaps = [b.start_utc - a.start_utc for a, b in itertools.pairwise(candles)]
    assert Counter(gaps) == {timedelta(minutes=1): 17549 - 92, timedelta(minutes=2): 92}
    listing_day = [c for c in candles if c.start_utc < datetime(2025, 5, 15, 15, tzinfo=UTC)]
    assert len(listing_day) == 324
    assert (
        listing_day[0].opening_price,
        max(c.high_price for c in listing_day),
        min(c.low_price for c in listing_day),
        listing_day[-1].trade_price,
    ) == (4352.0, 4912.0, 3575.0, 3721.0)
    assert sum(c.candle_acc_trade_volume for c in candles) == pytest.approx(682.4e6, rel=1e-3)


# --- numbers -------------------------------------------------------------------------------------


class _FloatToken(str):
    """A JSON number token with a fraction or exponent, kept as its text."""


def _numbers(value: object, key: str = "") -> Iterator[tuple[str, object]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v, key)
    elif isinstance(value, _FloatToken | int) and not isinstance(value, bool):
        yield key, value


def _capture_texts(real_data: Path) -> Iterator[tuple[str, str]]:
    for name in (D78752, WS62):
        for frame in recorder_frames(real_data / name):
            yield name, frame.decode()
    for line in ticker_lines(real_data / TICKER_JSONL):
        yield TICKER_JSONL, line.decode()
    yield MARKETS_2021, market_all_2021_body(real_data / MARKETS_2021).decode()
    for name in [MARKETS_2025, DAYS] + [name for name, _, _ in SMTM]:
        yield name, (real_data / name).read_text(encoding="utf-8")
    yield NXPC_CSV, csv_candles_body(real_data / NXPC_CSV).decode()


def test_every_number_in_the_captures_survives_float(real_data: Path) -> None:
    """Backs models.py: each float-spelt token round-trips through float; big ints are ids."""
    checked: Counter[str] = Counter()
    for name, text in _capture_texts(real_data):
        for key, token in _numbers(json.loads(text, parse_float=_FloatToken)):
            if isinstance(token, _FloatToken):
                assert Decimal(repr(float(token))) == Decimal(token), (name, key, token)
                checked[name] += 1
            elif isinstance(token, int) and abs(token) > 2**53:
                assert key in {"sid", "sequential_id"}, (name, key, token)
    assert checked[D78752] > 60_000
    assert checked[TICKER_JSONL] > 8_000
    assert checked[NXPC_CSV] == 17550 * 6  # open, high, low, close, turnover, volume
    assert len(checked) == 13  # every file but the two market lists (no numbers) contributed


def test_decoded_floats_equal_the_tokens(real_data: Path) -> None:
    """The decoder's float is the nearest float to the wire text (no lossy path in between)."""
    for frame in recorder_frames(real_data / WS62)[:50]:
        [message] = decode_frame(frame)
        tokens = dict(_numbers(json.loads(frame, parse_float=_FloatToken)))
        if isinstance(message, Trade):
            assert message.trade_price == float(str(tokens["tp"]))
            assert message.trade_volume == float(str(tokens["tv"]))
            assert message.sequential_id == tokens["sid"]


def test_candle_types_for_all_ws_intervals() -> None:
    """Not in the captures (WS candles are new): every ``candle.<unit>`` maps to its interval."""
    template = (
        '{"type":"candle.%s","code":"KRW-BTC","candle_date_time_utc":"2025-05-12T00:00:00",'
        '"candle_date_time_kst":"2025-05-12T09:00:00","opening_price":1,"high_price":1,'
        '"low_price":1,"trade_price":1,"candle_acc_trade_volume":1,"candle_acc_trade_price":1,'
        '"timestamp":1747008000000,"stream_type":"SNAPSHOT"}'
    )
    for unit in ("1s", "1m", "3m", "5m", "10m", "15m", "30m", "60m", "240m"):
        [candle] = decode_frame((template % unit).encode())
        assert isinstance(candle, Candle)
        assert candle.interval == unit
