"""Real-looking record values for lake tests, spelt as Upbit spells them (SIMPLE and DEFAULT)."""

from __future__ import annotations

from upbit_pipeline.streaming.records import RecordHeaders

T0 = 1_788_335_180_377  # 2026-09-02T07:46:20.377Z


def trade(market: str, seq: int, ts_ms: int, price: float = 106_691_000.0) -> bytes:
    """A SIMPLE trade frame (the format the producer subscribes with by default)."""
    return (
        f'{{"ty":"trade","cd":"{market}","tms":{ts_ms + 46},"td":"2026-09-02","ttm":"07:46:20",'
        f'"ttms":{ts_ms},"tp":{price},"tv":0.00009372,"ab":"ASK","pcp":107005000.0,"c":"FALL",'
        f'"cp":314000.0,"sid":{seq},"bap":106705000,"bas":0.00906333,"bbp":106691000,'
        f'"bbs":0.00702247,"st":"REALTIME"}}'
    ).encode()


def rest_trade(market: str, seq: int, ts_ms: int) -> bytes:
    """ONE REST /v1/trades/ticks object (backfilled trades, format header REST)."""
    return (
        f'{{"market":"{market}","trade_date_utc":"2026-09-02","trade_time_utc":"07:46:20",'
        f'"timestamp":{ts_ms},"trade_price":106691000.0,"trade_volume":0.00009372,'
        f'"prev_closing_price":107005000.0,"change_price":-314000.0,"ask_bid":"ASK",'
        f'"sequential_id":{seq}}}'
    ).encode()


def ticker(ts_ms: int) -> bytes:
    return (
        b'{"type":"ticker","code":"KRW-BTC","opening_price":122720000.00000000,'
        b'"high_price":123135000.00000000,"low_price":122677000.00000000,'
        b'"trade_price":122902000.00000000,"prev_closing_price":122720000.00000000,'
        b'"acc_trade_price":19699800600.2538100000000000,"change":"RISE",'
        b'"change_price":182000.00000000,"signed_change_price":182000.00000000,'
        b'"change_rate":0.0014830508,"signed_change_rate":0.0014830508,"ask_bid":"ASK",'
        b'"trade_volume":0.00020372,"acc_trade_volume":160.18173252,"trade_date":"20250420",'
        b'"trade_time":"063055","trade_timestamp":1745130655618,"acc_ask_volume":80.07639388,'
        b'"acc_bid_volume":80.10533864,"highest_52_week_price":163325000.00000000,'
        b'"highest_52_week_date":"2025-01-20","lowest_52_week_price":72100000.00000000,'
        b'"lowest_52_week_date":"2024-08-05","market_state":"ACTIVE",'
        b'"is_trading_suspended":false,"delisting_date":null,"market_warning":"NONE",'
        b'"timestamp":' + str(ts_ms).encode() + b',"acc_trade_price_24h":67648718116.20854000,'
        b'"acc_trade_volume_24h":549.81614150,"stream_type":"REALTIME"}'
    )


def orderbook(ts_ms: int) -> bytes:
    return (
        b'{"ty":"orderbook","cd":"KRW-BTC","tms":' + str(ts_ms).encode() + b',"tas":0.48514983,'
        b'"tbs":2.2403413,"obu":[{"ap":116606000,"bp":116534000,"as":0.06288509,"bs":7.9276E-4},'
        b'{"ap":116609000,"bp":116521000,"as":5.0E-4,"bs":0.01624318}],"st":"SNAPSHOT","lv":0}'
    )


def candle(ts_ms: int) -> bytes:
    return (
        b'{"type":"candle.1m","code":"KRW-BTC","candle_date_time_utc":"2026-09-02T07:46:00",'
        b'"candle_date_time_kst":"2026-09-02T16:46:00","opening_price":142009000.00000000,'
        b'"high_price":142009000.00000000,"low_price":142009000.00000000,'
        b'"trade_price":142009000.00000000,"candle_acc_trade_volume":0.00606119,'
        b'"candle_acc_trade_price":860743.5307100000000000,"timestamp":'
        + str(ts_ms).encode()
        + b',"stream_type":"REALTIME"}'
    )


def headers(recv_ns: int, fmt: str = "SIMPLE", *, backfill: bool = False, snapshot: bool = False):
    conn = "rest" if fmt == "REST" else "t-0-1"
    return RecordHeaders(recv_ns, conn, fmt, snapshot=snapshot, backfill=backfill).encode()
