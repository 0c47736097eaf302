"""Tickers: WebSocket ``ticker`` (DEFAULT / SIMPLE) and REST ``/v1/ticker``, ``/v1/ticker/all``.

Docs: https://docs.upbit.com/kr/reference/websocket-ticker and
https://docs.upbit.com/kr/reference/ticker (REST). A real DEFAULT frame (2025-09-26, note the
Java spellings ``0E-8`` and ``0``)::

    {"type":"ticker","code":"KRW-BTC","opening_price":158219000.00000000,
     "high_price":159278000.00000000,"low_price":157588000.00000000,
     "trade_price":158200000.00000000,"prev_closing_price":158200000.00000000,
     "acc_trade_price":95088751392.9099200000000000,"change":"EVEN","change_price":0E-8,
     "signed_change_price":0E-8,"change_rate":0,"signed_change_rate":0,"ask_bid":"ASK",
     "trade_volume":0.00011188,"acc_trade_volume":600.09226312,"trade_date":"20250926",
     "trade_time":"082646","trade_timestamp":1758875206936,"acc_ask_volume":341.67996226,
     "acc_bid_volume":258.41230086,"highest_52_week_price":169900000.00000000,
     "highest_52_week_date":"2025-08-14","lowest_52_week_price":80635000.00000000,
     "lowest_52_week_date":"2024-10-10","market_state":"ACTIVE","is_trading_suspended":false,
     "delisting_date":null,"market_warning":"NONE","timestamp":1758875206974,
     "acc_trade_price_24h":331188513477.17233,"acc_trade_volume_24h":2083.83396972,
     "stream_type":"REALTIME"}

Which fields are required is the model's business (:class:`Ticker`): what Upbit has always sent
on both paths (prices, day and 24 h accumulations, trade date/time, both timestamps) is required;
the WS-only fields (``ask_bid``, ``acc_*_volume``, ``market_state`` ...) and the 52-week fields
are optional. REST adds ``trade_date_kst``/``trade_time_kst``, which are dropped.
"""

from __future__ import annotations

from msgspec.structs import astuple

from upbit_pipeline.upbit import fields
from upbit_pipeline.upbit.decode._common import decode_rest, list_decoder, wire_class
from upbit_pipeline.upbit.models import Ticker

__all__ = ["DefaultTicker", "SimpleTicker", "decode_tickers_rest"]


class DefaultTicker(Ticker, frozen=True, tag="ticker", tag_field="type"):
    """WebSocket DEFAULT ``ticker`` frame (long keys)."""

    def to_model(self) -> Ticker:
        return Ticker(*astuple(self))


SimpleTicker = wire_class(
    DefaultTicker, "SimpleTicker", rename=fields.TICKER, tag="ticker", tag_field="ty"
)
"""WebSocket SIMPLE ``ticker`` frame (short keys from ``fields.TICKER``)."""

_RestTicker = wire_class(Ticker, "_RestTicker", rename={"code": "market"})

_REST = list_decoder(_RestTicker)


def decode_tickers_rest(body: bytes) -> list[Ticker]:
    """``/v1/ticker`` or ``/v1/ticker/all`` body -> tickers, in the response order."""
    return [Ticker(*astuple(t)) for t in decode_rest(_REST, body, "/v1/ticker")]
