"""REST: shapes, key order and number spelling against Upbit's recordings; errors; paging."""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime

import httpx
import pytest

pytestmark = pytest.mark.integration

START = 1773240000000  # 2026-03-11T14:40:00Z, the day of the section 5.2 recordings

# Key order of the verbatim recordings in upbit-api.md section 5.2.
KEYS = {
    "minutes": [
        "market",
        "candle_date_time_utc",
        "candle_date_time_kst",
        "opening_price",
        "high_price",
        "low_price",
        "trade_price",
        "timestamp",
        "candle_acc_trade_price",
        "candle_acc_trade_volume",
        "unit",
    ],
    "days": [
        "market",
        "candle_date_time_utc",
        "candle_date_time_kst",
        "opening_price",
        "high_price",
        "low_price",
        "trade_price",
        "timestamp",
        "candle_acc_trade_price",
        "candle_acc_trade_volume",
        "prev_closing_price",
        "change_price",
        "change_rate",
    ],
    "trades": [
        "market",
        "trade_date_utc",
        "trade_time_utc",
        "timestamp",
        "trade_price",
        "trade_volume",
        "prev_closing_price",
        "change_price",
        "ask_bid",
        "sequential_id",
    ],
    "ticker": [
        "market",
        "trade_date",
        "trade_time",
        "trade_date_kst",
        "trade_time_kst",
        "trade_timestamp",
        "opening_price",
        "high_price",
        "low_price",
        "trade_price",
        "prev_closing_price",
        "change",
        "change_price",
        "change_rate",
        "signed_change_price",
        "signed_change_rate",
        "trade_volume",
        "acc_trade_price",
        "acc_trade_price_24h",
        "acc_trade_volume",
        "acc_trade_volume_24h",
        "highest_52_week_price",
        "highest_52_week_date",
        "lowest_52_week_price",
        "lowest_52_week_date",
        "timestamp",
    ],
}
FIXED8 = re.compile(
    r'"(opening_price|high_price|low_price|trade_price|candle_acc_trade_price|candle_acc_trade_volume|trade_volume|prev_closing_price)":(-?\d+\.\d{8})[,}]'
)


@pytest.fixture
async def client(sim_factory):
    sim = await sim_factory(markets=20, seed=3, start_ms=START)
    async with httpx.AsyncClient(base_url=sim.base_url) as c:
        c.sim = sim  # type: ignore[attr-defined]
        yield c


async def test_minute_candle_shape_and_spelling(client) -> None:
    r = await client.get("/v1/candles/minutes/1", params={"market": "KRW-BTC", "count": 3})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    assert r.headers["remaining-req"] == "group=candles; min=600; sec=9"
    assert r.headers["limit-by-ip"] == "Yes"
    rows = r.json()
    assert list(rows[0]) == KEYS["minutes"]
    assert rows[0]["unit"] == 1
    # 8-dp fixed spelling for every price/volume, as recorded
    assert len(FIXED8.findall(r.text)) == 6 * len(rows)
    assert re.search(
        r'"candle_date_time_utc":"2026-03-11T14:\d\d:00","candle_date_time_kst":"2026-03-11T23:',
        r.text,
    )
    starts = [row["candle_date_time_utc"] for row in rows]
    assert starts == sorted(starts, reverse=True)


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/v1/candles/seconds", []),
        ("/v1/candles/days", ["prev_closing_price", "change_price", "change_rate"]),
        ("/v1/candles/weeks", ["first_day_of_period"]),
        ("/v1/candles/months", ["first_day_of_period"]),
        ("/v1/candles/years", ["first_day_of_period"]),
    ],
)
async def test_other_candles(client, path: str, extra: list[str]) -> None:
    r = await client.get(path, params={"market": "KRW-BTC"})
    assert r.status_code == 200, r.text
    (row,) = r.json()
    assert list(row) == KEYS["minutes"][:-1] + extra
    if path.endswith("weeks"):
        assert row["first_day_of_period"] == "2026-03-09"  # a Monday
    if path.endswith("months"):
        assert row["first_day_of_period"] == "2026-03-01"
    if path.endswith("days"):
        assert re.search(r'"change_rate":-?\d\.\d{10}[,}]', r.text)


async def test_days_converting_price_unit(client) -> None:
    r = await client.get(
        "/v1/candles/days", params={"market": "KRW-BTC", "converting_price_unit": "KRW"}
    )
    (row,) = r.json()
    assert list(row)[-1] == "converted_trade_price"


async def test_trades_ticker_orderbook_shapes(client) -> None:
    r = await client.get("/v1/trades/ticks", params={"market": "krw-btc", "count": 5})
    assert r.headers["remaining-req"].startswith("group=crix-trades;")
    rows = r.json()
    assert len(rows) == 5 and list(rows[0]) == KEYS["trades"]
    assert all(row["sequential_id"] // 10_000 == row["timestamp"] for row in rows)
    r = await client.get("/v1/ticker", params={"markets": "KRW-BTC,KRW-ETH"})
    assert [list(row) for row in r.json()] == [KEYS["ticker"]] * 2
    r = await client.get("/v1/ticker/all", params={"quote_currencies": "KRW"})
    assert len(r.json()) == 20
    r = await client.get("/v1/orderbook", params={"markets": "KRW-BTC", "count": 31})
    (book,) = r.json()
    assert list(book) == [
        "market",
        "timestamp",
        "total_ask_size",
        "total_bid_size",
        "orderbook_units",
        "level",
    ]
    assert len(book["orderbook_units"]) == 30
    assert list(book["orderbook_units"][0]) == ["bid_price", "bid_size", "ask_price", "ask_size"]
    assert re.search(r'"bid_price":\d+,', r.text)  # plain integers
    units = book["orderbook_units"]
    assert units[0]["bid_price"] < units[0]["ask_price"]
    assert [u["ask_price"] for u in units] == sorted(u["ask_price"] for u in units)
    r = await client.get(
        "/v1/orderbook", params={"markets": "KRW-BTC", "count": 2, "level": 100000}
    )
    (book,) = r.json()
    assert book["level"] == 100000 and len(book["orderbook_units"]) == 2
    assert book["orderbook_units"][0]["bid_price"] % 100000 == 0
    assert (
        await client.get("/v1/orderbook", params={"markets": "KRW-BTC", "level": 7})
    ).text == "[]"


async def test_instruments_and_market_all(client) -> None:
    r = await client.get("/v1/orderbook/instruments", params={"markets": "KRW-BTC"})
    assert r.text == (
        '[{"market":"KRW-BTC","quote_currency":"KRW","tick_size":"1000","supported_levels":'
        '["0","10000","100000","1000000","10000000","100000000"]}]'
    )
    r = await client.get("/v1/market/all")
    assert r.headers["remaining-req"].startswith("group=market;")
    rows = r.json()
    assert rows[0] == {"market": "KRW-BTC", "korean_name": "비트코인", "english_name": "Bitcoin"}
    assert [x["market"] for x in rows[:3]] == ["KRW-BTC", "KRW-ETH", "KRW-XRP"]
    detailed = (await client.get("/v1/market/all", params={"isDetails": "true"})).json()
    assert list(detailed[0]["market_event"]) == ["warning", "caution"]
    assert list(detailed[0]["market_event"]["caution"]) == [
        "PRICE_FLUCTUATIONS",
        "TRADING_VOLUME_SOARING",
        "DEPOSIT_AMOUNT_SOARING",
        "GLOBAL_PRICE_DIFFERENCES",
        "CONCENTRATION_OF_SMALL_ACCOUNTS",
    ]


@pytest.mark.parametrize(
    ("path", "params", "status", "body"),
    [
        (
            "/v1/ticker",
            {"markets": "KRW-BTC,KRW-NOPE"},
            404,
            '{"error":{"name":404,"message":"Code not found"}}',
        ),
        (
            "/v1/candles/minutes/120",
            {"market": "KRW-BTC"},
            400,
            '{"error":{"name":400,"message":"specified unit is not valid."}}',
        ),
        (
            "/v1/candles/minutes/1",
            {},
            400,
            '{"error":{"name":400,"message":'
            '"Missing request parameter error. Check the required parameters!"}}',
        ),
        (
            "/v1/candles/minutes/1",
            {"market": "KRW-BTC", "count": "abc"},
            400,
            '{"error":{"name":400,"message":"Type mismatch error. Check the parameters type!"}}',
        ),
        (
            "/v1/candles/minutes/1",
            {"market": "KRW-BTC", "to": "2026-03-11T23:00:00 09:00"},
            400,
            '{"error":{"name":400,"message":"Invalid parameter. Check the given value!"}}',
        ),
        (
            "/v1/orderbook",
            {"markets": "KRW-BTC", "count": "x"},
            400,
            '{"error":{"name":400,"message":"Type mismatch error. Check the parameters type!"}}',
        ),
        (
            "/v1/trades/ticks",
            {"market": "KRW-BTC", "days_ago": 9},
            400,
            '{"error":{"name":400,"message":"Invalid parameter. Check the given value!"}}',
        ),
    ],
)
async def test_error_bodies(
    client, path: str, params: dict[str, object], status: int, body: str
) -> None:
    r = await client.get(path, params=params)
    assert (r.status_code, r.text) == (status, body)
    assert "remaining-req" in r.headers


async def test_unknown_route(client) -> None:
    r = await client.get("/v1/nope")
    assert r.status_code == 404
    assert r.text == '{"error":{"name":"not_found","message":"no Route matched with those values"}}'
    assert "remaining-req" not in r.headers


@pytest.mark.parametrize(
    "to",
    [
        "2026-03-11T10:40:00Z",
        "2026-03-11 10:40:00",
        "2026-03-11T19:40:00+09:00",
        "2026-03-11T10:40:00",
    ],
)
async def test_to_is_exclusive_in_every_spelling(client, to: str) -> None:
    r = await client.get(
        "/v1/candles/minutes/5", params={"market": "KRW-BTC", "to": to, "count": 2}
    )
    assert [c["candle_date_time_utc"] for c in r.json()] == [
        "2026-03-11T10:35:00",
        "2026-03-11T10:30:00",
    ]


async def test_count_clamp_and_paging_without_dup_or_hole(client) -> None:
    r = await client.get("/v1/candles/minutes/1", params={"market": "KRW-BTC", "count": 1000})
    first = r.json()
    assert len(first) == 200
    to = first[-1]["candle_date_time_utc"] + "Z"
    second = (
        await client.get(
            "/v1/candles/minutes/1", params={"market": "KRW-BTC", "count": 200, "to": to}
        )
    ).json()
    starts = [c["candle_date_time_utc"] for c in first + second]
    assert len(set(starts)) == 400
    stamps = [datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp() for s in starts]
    assert all(a - b == 60 for a, b in itertools.pairwise(stamps))  # BTC: no empty minute


async def test_quiet_market_has_candle_gaps(client) -> None:
    sim = client.sim
    quiet = min(sim.specs[3:], key=lambda s: s.trades_per_s).code
    rows = (
        await client.get("/v1/candles/minutes/1", params={"market": quiet, "count": 200})
    ).json()
    stamps = [datetime.fromisoformat(c["candle_date_time_utc"]).timestamp() for c in rows]
    assert any(a - b > 60 for a, b in itertools.pairwise(stamps))
    assert all(c["candle_acc_trade_volume"] > 0 for c in rows)


async def test_trades_paging_by_cursor_and_days_ago(client) -> None:
    page1 = (
        await client.get("/v1/trades/ticks", params={"market": "KRW-BTC", "count": 500})
    ).json()
    assert len(page1) == 500
    page2 = (
        await client.get(
            "/v1/trades/ticks",
            params={"market": "KRW-BTC", "count": 500, "cursor": page1[-1]["sequential_id"]},
        )
    ).json()
    ids = [t["sequential_id"] for t in page1 + page2]
    assert len(set(ids)) == 1000 and ids == sorted(ids, reverse=True)
    old = (
        await client.get(
            "/v1/trades/ticks",
            params={"market": "KRW-BTC", "daysAgo": 7, "to": "12:00:00", "count": 3},
        )
    ).json()
    assert [t["trade_date_utc"] for t in old] == ["2026-03-04"] * 3
    assert all(t["trade_time_utc"] < "12:00:00" for t in old)


async def test_history_30_days_back(client) -> None:
    rows = (await client.get("/v1/candles/days", params={"market": "KRW-ETH", "count": 40})).json()
    assert len(rows) == 40
    assert json.dumps(rows).count("KRW-ETH") == 40
