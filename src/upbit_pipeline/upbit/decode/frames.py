"""WebSocket frames: format detection and dispatch to the channel decoders.

Docs: https://docs.upbit.com/kr/reference/websocket-request-format (formats) and
https://docs.upbit.com/kr/reference/websocket-guide (errors). One frame is one JSON object
(DEFAULT long keys, SIMPLE short keys) or, with JSON_LIST / SIMPLE_LIST, an array of them::

    {"ty":"trade","cd":"KRW-LAMB","tms":1618678262712,"td":"2021-04-17","ttm":"16:51:02",
     "ttms":1618678262000,"tp":127.0,"tv":46.48838371,"ab":"BID","pcp":123.00000000,"c":"RISE",
     "cp":4.00000000,"sid":1618678262000003,"st":"REALTIME"}

Two paths, because ~1,000 frames/s arrive and almost all are good:

* **Fast path**: guess the format from the bytes (``"ty"`` as a key means SIMPLE, a leading ``[``
  means a LIST format) and decode with one msgspec tagged-union decoder, straight into the wire
  classes, then ``to_model()`` into the models.py types. No intermediate dicts.
* **Slow path**, only when the fast path fails: parse to Python objects and decide per object
  (``type``/``ty``/``status``/``error``), which handles the rare frames (``{"status":"UP"}``, error
  frames, odd whitespace) and turns every failure into a MalformedFrameError whose reason names the
  item, the message type, the format and the msgspec path of the bad field.

An empty LIST frame ``[]`` decodes to no messages. Anything else that is not a known message
raises MalformedFrameError; nothing else escapes (bugs in this package excepted).
"""

from __future__ import annotations

import functools
import operator
from types import GenericAlias
from typing import Any, Protocol

import msgspec

from upbit_pipeline.upbit import fields
from upbit_pipeline.upbit.decode._common import DECODE_ERRORS
from upbit_pipeline.upbit.decode.candle import DEFAULT_CANDLES, SIMPLE_CANDLES
from upbit_pipeline.upbit.decode.orderbook import DefaultOrderbook, SimpleOrderbook
from upbit_pipeline.upbit.decode.ticker import DefaultTicker, SimpleTicker
from upbit_pipeline.upbit.decode.trade import DefaultTrade, SimpleTrade
from upbit_pipeline.upbit.errors import MalformedFrameError
from upbit_pipeline.upbit.models import (
    Candle,
    ErrorFrame,
    Orderbook,
    StatusFrame,
    Ticker,
    Trade,
    UpbitMessage,
)

__all__ = ["channel_of", "decode_frame"]


class _Wire(Protocol):
    def to_model(self) -> UpbitMessage: ...


def _union(types: tuple[type[_Wire], ...]) -> Any:
    """``A | B | ...`` of the wire classes: one tagged union, decoded in a single pass."""
    return functools.reduce(operator.or_, types)


_DEFAULT_TYPES: tuple[type[_Wire], ...] = (
    DefaultTrade,
    DefaultTicker,
    DefaultOrderbook,
    *DEFAULT_CANDLES,
)
_SIMPLE_TYPES: tuple[type[_Wire], ...] = (
    SimpleTrade,
    SimpleTicker,
    SimpleOrderbook,
    *SIMPLE_CANDLES,
)
_DEFAULT = _union(_DEFAULT_TYPES)
_SIMPLE = _union(_SIMPLE_TYPES)

_DEFAULT_ONE: msgspec.json.Decoder[_Wire] = msgspec.json.Decoder(_DEFAULT)
_SIMPLE_ONE: msgspec.json.Decoder[_Wire] = msgspec.json.Decoder(_SIMPLE)
_DEFAULT_LIST: msgspec.json.Decoder[list[_Wire]] = msgspec.json.Decoder(
    GenericAlias(list, _DEFAULT)
)
_SIMPLE_LIST: msgspec.json.Decoder[list[_Wire]] = msgspec.json.Decoder(GenericAlias(list, _SIMPLE))

_MESSAGE_TYPES = ("trade", "ticker", "orderbook", *fields.CANDLE_WS_TYPES)
_UP_FRAME = b'{"status":"UP"}'
_UP = StatusFrame(status="UP")

_CHANNELS: dict[type, str] = {
    Trade: "trade",
    Ticker: "ticker",
    Orderbook: "orderbook",
    Candle: "candle",
}


def decode_frame(raw: bytes) -> list[UpbitMessage]:
    """Decode one WebSocket frame (DEFAULT, SIMPLE, JSON_LIST or SIMPLE_LIST) into messages.

    Raises MalformedFrameError(reason, raw) for anything that is not a well-formed Upbit message.
    """
    simple = b'"ty"' in raw
    try:
        if raw[:1] == b"[":
            wires = (_SIMPLE_LIST if simple else _DEFAULT_LIST).decode(raw)
            return [wire.to_model() for wire in wires]
        return [(_SIMPLE_ONE if simple else _DEFAULT_ONE).decode(raw).to_model()]
    except DECODE_ERRORS:
        pass
    if raw == _UP_FRAME:
        return [_UP]
    return _decode_slow(bytes(raw))


def channel_of(msg: UpbitMessage) -> str:
    """``trade``, ``ticker``, ``orderbook`` or ``candle``: the topic family of a decoded message.

    StatusFrame and ErrorFrame are connection control, not market data: TypeError (a caller bug).
    """
    try:
        return _CHANNELS[type(msg)]
    except KeyError:
        raise TypeError(f"{type(msg).__name__} is not market data and has no channel") from None


def _decode_slow(raw: bytes) -> list[UpbitMessage]:
    if not raw.strip():
        raise MalformedFrameError("empty frame", raw)
    try:
        value = msgspec.json.decode(raw)
    except DECODE_ERRORS as exc:
        raise MalformedFrameError(f"invalid JSON: {exc}", raw) from None
    if isinstance(value, list):
        return [_from_object(item, raw, f"item {i}: ") for i, item in enumerate(value)]
    return [_from_object(value, raw, "")]


def _kind(value: object) -> str:
    """JSON name of a decoded value's type, for reasons."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def _from_object(item: object, raw: bytes, where: str) -> UpbitMessage:
    """One decoded JSON value -> one message, or MalformedFrameError saying what is wrong."""
    if not isinstance(item, dict):
        raise MalformedFrameError(f"{where}expected a JSON object, got {_kind(item)}", raw)
    if "type" in item:
        key, fmt, union = "type", "DEFAULT", _DEFAULT
    elif "ty" in item:
        key, fmt, union = "ty", "SIMPLE", _SIMPLE
    elif "status" in item:
        status: StatusFrame = _convert(item, StatusFrame, raw, f"{where}status frame: ")
        return status
    elif "error" in item:
        error: ErrorFrame = _convert(item["error"], ErrorFrame, raw, f"{where}error frame: ")
        return error
    else:
        keys = ", ".join(sorted(str(k) for k in item)[:8]) or "none"
        raise MalformedFrameError(f"{where}no `type` or `ty` key (keys: {keys})", raw)
    tag = item[key]
    if not isinstance(tag, str):
        raise MalformedFrameError(f"{where}`{key}` must be a string, got {_kind(tag)}", raw)
    if tag not in _MESSAGE_TYPES:
        raise MalformedFrameError(f"{where}unknown message type {tag!r} in `{key}`", raw)
    wire: _Wire = _convert(item, union, raw, f"{where}{tag} ({fmt}): ")
    try:
        return wire.to_model()
    except DECODE_ERRORS as exc:
        raise MalformedFrameError(f"{where}{tag} ({fmt}): {exc}", raw) from None


def _convert(value: object, typ: Any, raw: bytes, what: str) -> Any:
    try:
        return msgspec.convert(value, typ)
    except DECODE_ERRORS as exc:
        raise MalformedFrameError(f"{what}{exc}", raw) from None
