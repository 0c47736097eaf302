"""Upbit WebSocket field names: DEFAULT (long) -> SIMPLE (short), per message type.

The one place these maps live; the decoders and the simulator's encoders both read them.
Source: docs.upbit.com websocket-ticker / -trade / -orderbook / -candle (see docs/upbit-protocol.md)
and live captures. The dict order is Upbit's wire key order for DEFAULT frames.
"""

from __future__ import annotations

from typing import Final

TICKER: Final[dict[str, str]] = {
    "type": "ty",
    "code": "cd",
    "opening_price": "op",
    "high_price": "hp",
    "low_price": "lp",
    "trade_price": "tp",
    "prev_closing_price": "pcp",
    "acc_trade_price": "atp",
    "change": "c",
    "change_price": "cp",
    "signed_change_price": "scp",
    "change_rate": "cr",
    "signed_change_rate": "scr",
    "ask_bid": "ab",
    "trade_volume": "tv",
    "acc_trade_volume": "atv",
    "trade_date": "tdt",
    "trade_time": "ttm",
    "trade_timestamp": "ttms",
    "acc_ask_volume": "aav",
    "acc_bid_volume": "abv",
    "highest_52_week_price": "h52wp",
    "highest_52_week_date": "h52wdt",
    "lowest_52_week_price": "l52wp",
    "lowest_52_week_date": "l52wdt",
    "market_state": "ms",
    "is_trading_suspended": "its",
    "delisting_date": "dd",
    "market_warning": "mw",
    "timestamp": "tms",
    "acc_trade_price_24h": "atp24h",
    "acc_trade_volume_24h": "atv24h",
    "stream_type": "st",
}

TRADE: Final[dict[str, str]] = {
    "type": "ty",
    "code": "cd",
    "timestamp": "tms",
    "trade_date": "td",
    "trade_time": "ttm",
    "trade_timestamp": "ttms",
    "trade_price": "tp",
    "trade_volume": "tv",
    "ask_bid": "ab",
    "prev_closing_price": "pcp",
    "change": "c",
    "change_price": "cp",
    "sequential_id": "sid",
    "best_ask_price": "bap",
    "best_ask_size": "bas",
    "best_bid_price": "bbp",
    "best_bid_size": "bbs",
    "stream_type": "st",
}

ORDERBOOK: Final[dict[str, str]] = {
    "type": "ty",
    "code": "cd",
    "timestamp": "tms",
    "total_ask_size": "tas",
    "total_bid_size": "tbs",
    "orderbook_units": "obu",
    "stream_type": "st",
    "level": "lv",
}

ORDERBOOK_UNIT: Final[dict[str, str]] = {
    "ask_price": "ap",
    "bid_price": "bp",
    "ask_size": "as",
    "bid_size": "bs",
}

CANDLE: Final[dict[str, str]] = {
    "type": "ty",
    "code": "cd",
    "candle_date_time_utc": "cdttmu",
    "candle_date_time_kst": "cdttmk",
    "opening_price": "op",
    "high_price": "hp",
    "low_price": "lp",
    "trade_price": "tp",
    "candle_acc_trade_volume": "catv",
    "candle_acc_trade_price": "catp",
    "timestamp": "tms",
    "stream_type": "st",
}

LIST_SUBSCRIPTIONS: Final[dict[str, str]] = {
    "method": "mthd",
    "result": "rslt",
    "ticket": "tckt",
    "type": "ty",
    "codes": "cds",
    "level": "lv",
}

BY_TYPE: Final[dict[str, dict[str, str]]] = {
    "ticker": TICKER,
    "trade": TRADE,
    "orderbook": ORDERBOOK,
    "candle": CANDLE,
}

CANDLE_WS_TYPES: Final[tuple[str, ...]] = (
    "candle.1s",
    "candle.1m",
    "candle.3m",
    "candle.5m",
    "candle.10m",
    "candle.15m",
    "candle.30m",
    "candle.60m",
    "candle.240m",
)

REST_MINUTE_UNITS: Final[tuple[int, ...]] = (1, 3, 5, 10, 15, 30, 60, 240)
