"""WebSocket frame bodies in DEFAULT or SIMPLE keys, Upbit's wire key order and number spelling.

Keys come from ``upbit_pipeline.upbit.fields`` (never retyped). Spelling per upbit-api.md 2.11:
DEFAULT uses BigDecimal text (``106691000.00000000``, 16-dp turnovers, ``0E-8``), orderbook prices
in Java ``Double`` form (``1.16539E8``); SIMPLE uses doubles (``148500000.0``, ``7.9276E-4``) and
plain integer orderbook prices.
"""

from __future__ import annotations

from upbit_pipeline.upbit import fields
from upbit_pipeline.upbit.simulator import encode as E
from upbit_pipeline.upbit.simulator.books import Book
from upbit_pipeline.upbit.simulator.quotes import TickerView
from upbit_pipeline.upbit.simulator.tape import DAY_MS, Row, Trade

__all__ = ["candle_frame", "orderbook_frame", "ticker_frame", "trade_frame", "wrap"]


def _keys(table: dict[str, str], simple: bool) -> dict[str, str]:
    return table if simple else {k: k for k in table}


_T = {s: _keys(fields.TRADE, s) for s in (False, True)}
_K = {s: _keys(fields.TICKER, s) for s in (False, True)}
_O = {s: _keys(fields.ORDERBOOK, s) for s in (False, True)}
_U = {s: _keys(fields.ORDERBOOK_UNIT, s) for s in (False, True)}
_C = {s: _keys(fields.CANDLE, s) for s in (False, True)}


def _change(diff: int) -> str:
    return '"RISE"' if diff > 0 else '"FALL"' if diff < 0 else '"EVEN"'


def trade_frame(
    simple: bool,
    code: str,
    t: Trade,
    *,
    frame_ts: int,
    prev_close: int,
    best: tuple[int, int, int, int],
    stream_type: str,
) -> str:
    k = _T[simple]
    num = E.sdouble if simple else E.fixed8
    price_plain = E.sdouble if simple else E.plain
    diff = t.price - prev_close
    return E.obj(
        [
            (k["type"], '"trade"'),
            (k["code"], E.q(code)),
            (k["timestamp"], str(frame_ts)),
            (k["trade_date"], E.q(E.date_dash(t.ts))),
            (k["trade_time"], E.q(E.time_colon(t.ts))),
            (k["trade_timestamp"], str(t.ts)),
            (k["trade_price"], num(t.price)),
            (k["trade_volume"], num(t.volume)),
            (k["ask_bid"], '"BID"' if t.is_bid else '"ASK"'),
            (k["prev_closing_price"], num(prev_close)),
            (k["change"], _change(diff)),
            (k["change_price"], num(abs(diff))),
            (k["sequential_id"], str(t.sid)),
            (k["best_ask_price"], price_plain(best[0])),
            (k["best_ask_size"], num(best[1])),
            (k["best_bid_price"], price_plain(best[2])),
            (k["best_bid_size"], num(best[3])),
            (k["stream_type"], E.q(stream_type)),
        ]
    )


def ticker_frame(simple: bool, code: str, v: TickerView, frame_ts: int, stream_type: str) -> str:
    k = _K[simple]
    num = E.sdouble if simple else E.fixed8
    diff = v.price - v.prev_close

    def rate(n: int) -> str:
        text = E.rate10(n, v.prev_close)
        return "0.0" if simple and text == "0" else text

    return E.obj(
        [
            (k["type"], '"ticker"'),
            (k["code"], E.q(code)),
            (k["opening_price"], num(v.open)),
            (k["high_price"], num(v.high)),
            (k["low_price"], num(v.low)),
            (k["trade_price"], num(v.price)),
            (k["prev_closing_price"], num(v.prev_close)),
            (k["acc_trade_price"], E.sdouble(v.acc_price) if simple else E.fixed16(v.acc_price)),
            (k["change"], _change(diff)),
            (k["change_price"], num(abs(diff))),
            (k["signed_change_price"], num(diff)),
            (k["change_rate"], rate(abs(diff))),
            (k["signed_change_rate"], rate(diff)),
            (k["ask_bid"], '"BID"' if v.is_bid else '"ASK"'),
            (k["trade_volume"], num(v.trade_volume)),
            (k["acc_trade_volume"], num(v.acc_volume)),
            (k["trade_date"], E.q(E.date_plain(v.trade_ts))),
            (k["trade_time"], E.q(E.time_plain(v.trade_ts))),
            (k["trade_timestamp"], str(v.trade_ts)),
            (k["acc_ask_volume"], num(v.acc_ask)),
            (k["acc_bid_volume"], num(v.acc_bid)),
            (k["highest_52_week_price"], num(v.w52[0])),
            (k["highest_52_week_date"], E.q(E.date_dash(v.w52[1] * DAY_MS))),
            (k["lowest_52_week_price"], num(v.w52[2])),
            (k["lowest_52_week_date"], E.q(E.date_dash(v.w52[3] * DAY_MS))),
            (k["market_state"], '"ACTIVE"'),
            (k["is_trading_suspended"], "false"),
            (k["delisting_date"], "null"),
            (k["market_warning"], '"NONE"'),
            (k["timestamp"], str(frame_ts)),
            (k["acc_trade_price_24h"], E.sdouble(v.price_24h) if simple else E.plain(v.price_24h)),
            (k["acc_trade_volume_24h"], num(v.vol_24h)),
            (k["stream_type"], E.q(stream_type)),
        ]
    )


def orderbook_frame(simple: bool, code: str, book: Book, n: int, stream_type: str) -> str:
    k, u = _O[simple], _U[simple]
    price = E.plain if simple else E.jdouble
    size = E.jdouble if simple else E.fixed8
    asks, bids = book.asks[:n], book.bids[:n]
    units = ",".join(
        E.obj(
            [
                (u["ask_price"], price(ap) if ap else "0"),
                (u["bid_price"], price(bp) if bp else "0"),
                (u["ask_size"], size(az) if az else "0"),
                (u["bid_size"], size(bz) if bz else "0"),
            ]
        )
        for (ap, az), (bp, bz) in zip(asks, bids, strict=True)
    )
    return E.obj(
        [
            (k["type"], '"orderbook"'),
            (k["code"], E.q(code)),
            (k["timestamp"], str(book.ts)),
            (k["total_ask_size"], size(sum(s for _, s in asks))),
            (k["total_bid_size"], size(sum(s for _, s in bids))),
            (k["orderbook_units"], "[" + units + "]"),
            (k["stream_type"], E.q(stream_type)),
            (k["level"], E.plain(book.level)),
        ]
    )


def candle_frame(
    simple: bool,
    code: str,
    type_name: str,
    start: int,
    row: Row,
    *,
    frame_ts: int,
    stream_type: str,
) -> str:
    k = _C[simple]
    num = E.sdouble if simple else E.fixed8
    return E.obj(
        [
            (k["type"], E.q(type_name)),
            (k["code"], E.q(code)),
            (k["candle_date_time_utc"], E.q(E.dt_iso(start))),
            (k["candle_date_time_kst"], E.q(E.dt_iso(start, kst=True))),
            (k["opening_price"], num(row.open)),
            (k["high_price"], num(row.high)),
            (k["low_price"], num(row.low)),
            (k["trade_price"], num(row.close)),
            (k["candle_acc_trade_volume"], num(row.volume)),
            (
                k["candle_acc_trade_price"],
                E.sdouble(row.turnover) if simple else E.fixed16(row.turnover),
            ),
            (k["timestamp"], str(frame_ts)),
            (k["stream_type"], E.q(stream_type)),
        ]
    )


def wrap(fmt: str, text: str) -> bytes:
    """One frame: the object, or a one-element array for the *_LIST formats.

    Simpler than Upbit (UNCONFIRMED there): LIST frames always carry exactly one object.
    """
    if fmt.endswith("_LIST"):
        return ("[" + text + "]").encode()
    return text.encode()
