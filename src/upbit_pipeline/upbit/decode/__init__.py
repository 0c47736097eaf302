"""Decoders: pure functions from Upbit's bytes to the typed models of ``upbit.models``.

One module per channel (trade, ticker, orderbook, candle, market) plus ``frames`` for WebSocket
format detection. Every decoder raises :class:`~upbit_pipeline.upbit.errors.MalformedFrameError`
for bytes that do not decode, so callers can dead-letter them without guessing.
"""

from __future__ import annotations

from upbit_pipeline.upbit.decode._common import decode_rest_error
from upbit_pipeline.upbit.decode.candle import INTERVALS, decode_candles_rest
from upbit_pipeline.upbit.decode.frames import channel_of, decode_frame
from upbit_pipeline.upbit.decode.market import decode_markets
from upbit_pipeline.upbit.decode.orderbook import MAX_LEVELS, decode_orderbooks_rest
from upbit_pipeline.upbit.decode.ticker import decode_tickers_rest
from upbit_pipeline.upbit.decode.trade import decode_trades_rest

__all__ = [
    "INTERVALS",
    "MAX_LEVELS",
    "channel_of",
    "decode_candles_rest",
    "decode_frame",
    "decode_markets",
    "decode_orderbooks_rest",
    "decode_rest_error",
    "decode_tickers_rest",
    "decode_trades_rest",
]
