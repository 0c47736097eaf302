"""Trades: WebSocket ``trade`` (DEFAULT / SIMPLE) and REST ``/v1/trades/ticks``.

Docs: https://docs.upbit.com/kr/reference/websocket-trade and
https://docs.upbit.com/kr/reference/recent-trades-history. A live DEFAULT frame (2026-09-02)::

    {"type":"trade","code":"KRW-BTC","timestamp":1788335180423,"trade_date":"2026-09-02",
     "trade_time":"07:46:20","trade_timestamp":1788335180377,"trade_price":106691000.00000000,
     "trade_volume":0.00009372,"ask_bid":"ASK","prev_closing_price":107005000.00000000,
     "change":"FALL","change_price":314000.00000000,"sequential_id":17883351803770004,
     "best_ask_price":106705000,"best_ask_size":0.00906333,"best_bid_price":106691000,
     "best_bid_size":0.00702247,"stream_type":"SNAPSHOT"}

The wire classes subclass :class:`Trade` so msgspec decodes straight into the model's fields (and
``sequential_id`` straight into an int, never through a float); ``to_model`` copies the fields into
a plain ``Trade`` so a SIMPLE and a DEFAULT frame of the same trade compare equal. REST trades name
the pair ``market``, carry ``_utc`` date/time keys and only one ``timestamp``, which is the trade
time: it fills both ``trade_timestamp`` and ``timestamp``.
"""

from __future__ import annotations

import msgspec
from msgspec.structs import astuple

from upbit_pipeline.upbit import fields
from upbit_pipeline.upbit.decode._common import decode_rest, wire_class
from upbit_pipeline.upbit.models import Trade

__all__ = ["DefaultTrade", "SimpleTrade", "decode_trades_rest"]


class DefaultTrade(Trade, frozen=True, tag="trade", tag_field="type"):
    """WebSocket DEFAULT ``trade`` frame (long keys)."""

    def to_model(self) -> Trade:
        return Trade(*astuple(self))


SimpleTrade = wire_class(
    DefaultTrade, "SimpleTrade", rename=fields.TRADE, tag="trade", tag_field="ty"
)
"""WebSocket SIMPLE ``trade`` frame (short keys from ``fields.TRADE``)."""


class _RestTrade(msgspec.Struct, frozen=True, gc=False):
    market: str
    trade_date_utc: str
    trade_time_utc: str
    timestamp: int  # the trade's execution time
    trade_price: float
    trade_volume: float
    prev_closing_price: float
    change_price: float  # signed
    ask_bid: str
    sequential_id: int


_REST = msgspec.json.Decoder(list[_RestTrade])


def decode_trades_rest(body: bytes) -> list[Trade]:
    """``/v1/trades/ticks`` body -> trades, in the response order (newest first)."""
    return [
        Trade(
            code=t.market,
            trade_timestamp=t.timestamp,
            trade_price=t.trade_price,
            trade_volume=t.trade_volume,
            ask_bid=t.ask_bid,
            sequential_id=t.sequential_id,
            prev_closing_price=t.prev_closing_price,
            change_price=t.change_price,
            timestamp=t.timestamp,
            trade_date=t.trade_date_utc,
            trade_time=t.trade_time_utc,
        )
        for t in decode_rest(_REST, body, "/v1/trades/ticks")
    ]
