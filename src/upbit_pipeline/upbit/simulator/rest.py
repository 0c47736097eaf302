"""REST quotation routes (``/v1/...``) with Upbit's key order, number spelling and error bodies.

Every body is built as compact JSON text (see ``encode``): REST candles and trades spell numbers
with 8 decimals and rates with 10, orderbook prices are plain integers. Errors are
``{"error":{"name":<int>,"message":...}}`` exactly as recorded (upbit-api.md section 3.8).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import web

from upbit_pipeline.upbit.fields import REST_MINUTE_UNITS
from upbit_pipeline.upbit.simulator import encode as E
from upbit_pipeline.upbit.simulator.books import supported_levels
from upbit_pipeline.upbit.simulator.market import SCALE, tick_units
from upbit_pipeline.upbit.simulator.quotes import candles, ticker_at
from upbit_pipeline.upbit.simulator.tape import DAY_MS

if TYPE_CHECKING:
    from upbit_pipeline.upbit.simulator.server import Simulator

__all__ = ["SIM_KEY", "ApiError", "add_routes", "group_of"]

SIM_KEY: web.AppKey[Simulator] = web.AppKey("upbit_simulator")

MISSING = "Missing request parameter error. Check the required parameters!"
MISMATCH = "Type mismatch error. Check the parameters type!"
INVALID = "Invalid parameter. Check the given value!"


class ApiError(Exception):
    """An Upbit error response."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> bytes:
        return E.obj(
            [("error", E.obj([("name", str(self.status)), ("message", E.q(self.message))]))]
        ).encode()


def group_of(path: str) -> str | None:
    """Upbit's wire rate-limit group for a REST path (None outside the quotation API)."""
    if path == "/v1/market/all":
        return "market"
    if path.startswith("/v1/candles/"):
        return "candles"
    if path == "/v1/trades/ticks":
        return "crix-trades"
    if path in ("/v1/ticker", "/v1/ticker/all"):
        return "ticker"
    if path in ("/v1/orderbook", "/v1/orderbook/instruments"):
        return "orderbook"
    return None


def _sim(request: web.Request) -> Simulator:
    sim: Simulator = request.app[SIM_KEY]
    return sim


def _json(body: str) -> web.Response:
    return web.Response(
        body=body.encode(), headers={"Content-Type": "application/json;charset=UTF-8"}
    )


def _param(request: web.Request, *names: str, required: bool = False) -> str | None:
    for name in names:
        value = request.query.get(name)
        if value is not None and value != "":
            return value
    if required:
        raise ApiError(400, MISSING)
    return None


def _int(value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, MISMATCH) from None


def _markets(sim: Simulator, raw: str) -> list[int]:
    out = []
    for code in raw.split(","):
        mi = sim.index.get(code.strip().upper())
        if mi is None:
            raise ApiError(404, "Code not found")
        out.append(mi)
    return out


def _to_ms(raw: str | None, now: int) -> int:
    """``to`` as epoch ms (exclusive); naive means UTC. Unparseable -> 400 invalid parameter."""
    if raw is None:
        return now + 1
    try:
        when = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, INVALID) from None
    if " " in raw.strip()[19:]:  # an un-encoded "+09:00" arrives as " 09:00"
        raise ApiError(400, INVALID)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


async def market_all(request: web.Request) -> web.Response:
    sim = _sim(request)
    details = (_param(request, "is_details", "isDetails") or "false").lower() == "true"
    rows = []
    for spec in sim.specs:
        row: dict[str, object] = {
            "market": spec.code,
            "korean_name": spec.korean_name,
            "english_name": spec.english_name,
        }
        if details:
            row["market_event"] = spec.market_event
        rows.append(row)
    return _json(json.dumps(rows, ensure_ascii=False, separators=(",", ":")))


def _candle_common(code: str, start: int, row: object) -> list[tuple[str, str]]:
    from upbit_pipeline.upbit.simulator.tape import Row

    assert isinstance(row, Row)
    return [
        ("market", E.q(code)),
        ("candle_date_time_utc", E.q(E.dt_iso(start))),
        ("candle_date_time_kst", E.q(E.dt_iso(start, kst=True))),
        ("opening_price", E.fixed8(row.open)),
        ("high_price", E.fixed8(row.high)),
        ("low_price", E.fixed8(row.low)),
        ("trade_price", E.fixed8(row.close)),
        ("timestamp", str(row.last_ts)),
        ("candle_acc_trade_price", E.fixed8(row.turnover)),
        ("candle_acc_trade_volume", E.fixed8(row.volume)),
    ]


async def candles_route(request: web.Request) -> web.Response:
    sim = _sim(request)
    kind = request.match_info["kind"]
    unit = 0
    if kind == "minutes":
        unit = _int(request.match_info.get("unit"), 0)
        if unit not in REST_MINUTE_UNITS:
            raise ApiError(400, "specified unit is not valid.")
    elif kind not in ("seconds", "days", "weeks", "months", "years"):
        raise web.HTTPNotFound()
    raw_market = _param(request, "market", required=True)
    assert raw_market is not None
    count = _int(_param(request, "count"), 1)
    if count < 1:
        raise ApiError(400, INVALID)
    now = sim.now_ms()
    to_ms = _to_ms(_param(request, "to"), now)
    convert = _param(request, "converting_price_unit", "convertingPriceUnit")
    (mi,) = _markets(sim, raw_market)
    code = sim.specs[mi].code
    items = []
    for start, row in candles(
        sim.tape, mi, kind, unit, to_ms=to_ms, count=min(count, 200), now=now
    ):
        pairs = _candle_common(code, start, row)
        if kind == "minutes":
            pairs.append(("unit", str(unit)))
        elif kind == "days":
            prev = sim.tape.prev_close(mi, start // DAY_MS, now)
            pairs += [
                ("prev_closing_price", E.fixed8(prev)),
                ("change_price", E.fixed8(row.close - prev)),
                ("change_rate", E.rate10(row.close - prev, prev)),
            ]
            if convert is not None:
                pairs.append(("converted_trade_price", E.fixed8(row.close)))
        elif kind != "seconds":
            pairs.append(("first_day_of_period", E.q(E.date_dash(start))))
        items.append(E.obj(pairs))
    return _json("[" + ",".join(items) + "]")


def _trade_to(raw: str | None) -> int | None:
    """``to`` of /trades/ticks: ``HHmmss`` or ``HH:mm:ss`` -> ms into the day."""
    if raw is None:
        return None
    text = raw.replace(":", "")
    if len(text) != 6 or not text.isdigit():
        raise ApiError(400, INVALID)
    h, m, s = int(text[:2]), int(text[2:4]), int(text[4:])
    if h > 23 or m > 59 or s > 59:
        raise ApiError(400, INVALID)
    return ((h * 60 + m) * 60 + s) * 1000


async def trades_ticks(request: web.Request) -> web.Response:
    """Trades newest first within one UTC day (today or ``days_ago`` 1..7 back).

    Our choices where Upbit is UNCONFIRMED: ``to`` is exclusive; ``cursor`` returns trades with a
    smaller ``sequential_id`` (older); results never cross into the previous day.
    """
    sim = _sim(request)
    raw_market = _param(request, "market", required=True)
    assert raw_market is not None
    count = min(_int(_param(request, "count"), 1), 500)
    days_ago = _int(_param(request, "days_ago", "daysAgo"), 0)
    cursor = _int(_param(request, "cursor"), 0)
    to_off = _trade_to(_param(request, "to"))
    if (
        count < 1
        or not 0 <= days_ago <= 7
        or (_param(request, "days_ago", "daysAgo") and days_ago == 0)
    ):
        raise ApiError(400, INVALID)
    (mi,) = _markets(sim, raw_market)
    now = sim.now_ms()
    day_start = (now // DAY_MS - days_ago) * DAY_MS
    upper = min(now + 1, day_start + DAY_MS)
    if to_off is not None:
        upper = min(upper, day_start + to_off)
    code = sim.specs[mi].code
    items: list[str] = []
    prev_cache: dict[int, int] = {}
    for trade in sim.tape.trades_desc(mi, upper):
        if trade.ts < day_start or len(items) >= count:
            break
        if cursor and trade.sid >= cursor:
            continue
        day = trade.ts // DAY_MS
        if day not in prev_cache:
            prev_cache[day] = sim.tape.prev_close(mi, day, now)
        prev = prev_cache[day]
        items.append(
            E.obj(
                [
                    ("market", E.q(code)),
                    ("trade_date_utc", E.q(E.date_dash(trade.ts))),
                    ("trade_time_utc", E.q(E.time_colon(trade.ts))),
                    ("timestamp", str(trade.ts)),
                    ("trade_price", E.fixed8(trade.price)),
                    ("trade_volume", E.fixed8(trade.volume)),
                    ("prev_closing_price", E.fixed8(prev)),
                    ("change_price", E.fixed8(trade.price - prev)),
                    ("ask_bid", '"BID"' if trade.is_bid else '"ASK"'),
                    ("sequential_id", str(trade.sid)),
                ]
            )
        )
    return _json("[" + ",".join(items) + "]")


def _ticker_row(sim: Simulator, mi: int, now: int) -> str:
    """REST ticker. Spelling: as WS DEFAULT (UNCONFIRMED; matches the recorded length +-2 B)."""
    v = ticker_at(sim.tape, mi, now)
    change = v.price - v.prev_close
    word = "RISE" if change > 0 else "FALL" if change < 0 else "EVEN"
    return E.obj(
        [
            ("market", E.q(sim.specs[mi].code)),
            ("trade_date", E.q(E.date_plain(v.trade_ts))),
            ("trade_time", E.q(E.time_plain(v.trade_ts))),
            ("trade_date_kst", E.q(E.date_plain(v.trade_ts + 9 * 3_600_000))),
            ("trade_time_kst", E.q(E.time_plain(v.trade_ts + 9 * 3_600_000))),
            ("trade_timestamp", str(v.trade_ts)),
            ("opening_price", E.fixed8(v.open)),
            ("high_price", E.fixed8(v.high)),
            ("low_price", E.fixed8(v.low)),
            ("trade_price", E.fixed8(v.price)),
            ("prev_closing_price", E.fixed8(v.prev_close)),
            ("change", E.q(word)),
            ("change_price", E.fixed8(abs(change))),
            ("change_rate", E.rate10(abs(change), v.prev_close)),
            ("signed_change_price", E.fixed8(change)),
            ("signed_change_rate", E.rate10(change, v.prev_close)),
            ("trade_volume", E.fixed8(v.trade_volume)),
            ("acc_trade_price", E.fixed16(v.acc_price)),
            ("acc_trade_price_24h", E.plain(v.price_24h)),
            ("acc_trade_volume", E.fixed8(v.acc_volume)),
            ("acc_trade_volume_24h", E.fixed8(v.vol_24h)),
            ("highest_52_week_price", E.fixed8(v.w52[0])),
            ("highest_52_week_date", E.q(E.date_dash(v.w52[1] * DAY_MS))),
            ("lowest_52_week_price", E.fixed8(v.w52[2])),
            ("lowest_52_week_date", E.q(E.date_dash(v.w52[3] * DAY_MS))),
            ("timestamp", str(now)),
        ]
    )


async def ticker(request: web.Request) -> web.Response:
    sim = _sim(request)
    raw = _param(request, "markets", required=True)
    assert raw is not None
    now = sim.now_ms()
    return _json("[" + ",".join(_ticker_row(sim, mi, now) for mi in _markets(sim, raw)) + "]")


async def ticker_all(request: web.Request) -> web.Response:
    sim = _sim(request)
    raw = _param(request, "quote_currencies", required=True)
    assert raw is not None
    quotes = {q.strip().upper() for q in raw.split(",")}
    now = sim.now_ms()
    rows = [_ticker_row(sim, s.index, now) for s in sim.specs if s.quote in quotes]
    return _json("[" + ",".join(rows) + "]")


async def orderbook(request: web.Request) -> web.Response:
    sim = _sim(request)
    raw = _param(request, "markets", required=True)
    assert raw is not None
    level_raw = _param(request, "level") or "0"
    try:
        level = int(float(level_raw) * SCALE)
    except ValueError:
        raise ApiError(400, MISMATCH) from None
    count = max(1, min(_int(_param(request, "count"), 30), 30))
    mis = _markets(sim, raw)
    now = sim.now_ms()
    items = []
    for mi in mis:
        book = sim.books.at(mi, now)
        price = book.asks[0][0] or book.bids[0][0]
        if level not in supported_levels(price):
            return _json("[]")
        book = book.grouped(level)
        asks, bids = book.asks[:count], book.bids[:count]
        units = [
            E.obj(
                [
                    ("bid_price", E.plain(bp)),
                    ("bid_size", E.plain(bs)),
                    ("ask_price", E.plain(ap)),
                    ("ask_size", E.plain(az)),
                ]
            )
            for (ap, az), (bp, bs) in zip(asks, bids, strict=True)
        ]
        items.append(
            E.obj(
                [
                    ("market", E.q(sim.specs[mi].code)),
                    ("timestamp", str(book.ts)),
                    ("total_ask_size", E.plain(sum(s for _, s in asks))),
                    ("total_bid_size", E.plain(sum(s for _, s in bids))),
                    ("orderbook_units", "[" + ",".join(units) + "]"),
                    ("level", E.plain(level)),
                ]
            )
        )
    return _json("[" + ",".join(items) + "]")


async def instruments(request: web.Request) -> web.Response:
    sim = _sim(request)
    raw = _param(request, "markets", required=True)
    assert raw is not None
    now = sim.now_ms()
    items = []
    for mi in _markets(sim, raw):
        book = sim.books.at(mi, now)
        price = book.asks[0][0] or book.bids[0][0]
        levels = ",".join(E.q(E.plain(lv)) for lv in supported_levels(price))
        items.append(
            E.obj(
                [
                    ("market", E.q(sim.specs[mi].code)),
                    ("quote_currency", E.q(sim.specs[mi].quote)),
                    ("tick_size", E.q(E.plain(tick_units(price)))),
                    ("supported_levels", "[" + levels + "]"),
                ]
            )
        )
    return _json("[" + ",".join(items) + "]")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/market/all", market_all)
    app.router.add_get("/v1/candles/{kind}", candles_route)
    app.router.add_get("/v1/candles/{kind:minutes}/{unit}", candles_route)
    app.router.add_get("/v1/trades/ticks", trades_ticks)
    app.router.add_get("/v1/ticker", ticker)
    app.router.add_get("/v1/ticker/all", ticker_all)
    app.router.add_get("/v1/orderbook", orderbook)
    app.router.add_get("/v1/orderbook/instruments", instruments)
