"""Candles: WebSocket ``candle.1s`` ... ``candle.240m`` and REST ``/v1/candles/*``.

Docs: https://docs.upbit.com/kr/reference/websocket-candle and
https://docs.upbit.com/kr/reference/list-candles-minutes (seconds, days, weeks, months, years
alike). A real REST minute candle (2026-03-11)::

    [{"market":"KRW-BTC","candle_date_time_utc":"2026-03-11T14:40:00",
      "candle_date_time_kst":"2026-03-11T23:40:00","opening_price":103600000.00000000,
      "high_price":103600000.00000000,"low_price":103425000.00000000,
      "trade_price":103460000.00000000,"timestamp":1773240059132,
      "candle_acc_trade_price":164899503.14206000,"candle_acc_trade_volume":1.59335120,"unit":1}]

``interval`` is canonical (:data:`INTERVALS`): the WS type ``candle.3m`` gives ``3m``; REST has no
interval on the wire, so the caller passes the one it asked for, and a minute candle's ``unit``
must agree with it (``unit: 3`` is ``3m``) -- a mismatch means the caller mixed up responses.

``start_utc`` is ``candle_date_time_utc`` (naive on the wire, UTC by definition) made aware.
``candle_date_time_kst`` is validated when present: it must be exactly UTC + 9 h. That costs one
subtraction and catches a simulator or a hand-built fixture that confuses the two; it is not
required, because the model does not carry it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar

import msgspec

from upbit_pipeline.upbit import fields
from upbit_pipeline.upbit.decode._common import decode_rest, wire_class
from upbit_pipeline.upbit.errors import MalformedFrameError
from upbit_pipeline.upbit.models import Candle

__all__ = ["DEFAULT_CANDLES", "INTERVALS", "SIMPLE_CANDLES", "decode_candles_rest"]

INTERVALS: tuple[str, ...] = (
    "1s",
    *(f"{unit}m" for unit in fields.REST_MINUTE_UNITS),
    "1d",
    "1w",
    "1mo",
    "1y",
)
"""Canonical candle intervals, shortest first."""

_KST_OFFSET = timedelta(hours=9)


def start_utc(utc: datetime, kst: datetime | None) -> datetime:
    """Aware UTC start from the wire's naive UTC date-time, checking the KST twin if naive too."""
    if utc.tzinfo is not None:
        return utc.astimezone(UTC)
    if kst is not None and kst.tzinfo is None and kst - utc != _KST_OFFSET:
        raise ValueError(
            f"candle_date_time_kst {kst.isoformat()} is not candle_date_time_utc "
            f"{utc.isoformat()} + 9 h"
        )
    return utc.replace(tzinfo=UTC)


class _WsCandle(msgspec.Struct, frozen=True, gc=False):
    interval: ClassVar[str] = ""

    code: str
    candle_date_time_utc: datetime
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    candle_acc_trade_volume: float
    candle_acc_trade_price: float
    timestamp: int
    candle_date_time_kst: datetime | None = None
    stream_type: str | None = None

    def to_model(self) -> Candle:
        return Candle(
            code=self.code,
            interval=self.interval,
            start_utc=start_utc(self.candle_date_time_utc, self.candle_date_time_kst),
            opening_price=self.opening_price,
            high_price=self.high_price,
            low_price=self.low_price,
            trade_price=self.trade_price,
            candle_acc_trade_price=self.candle_acc_trade_price,
            candle_acc_trade_volume=self.candle_acc_trade_volume,
            timestamp=self.timestamp,
            stream_type=self.stream_type,
        )


def _tagged(
    tag_field: str, rename: dict[str, str] | None, prefix: str
) -> tuple[type[_WsCandle], ...]:
    """One class per WS type (msgspec tags are one value per class), knowing its interval."""
    return tuple(
        wire_class(
            _WsCandle,
            f"{prefix}Candle_{ws_type.removeprefix('candle.')}",
            rename=rename,
            tag=ws_type,
            tag_field=tag_field,
            namespace={"interval": ws_type.removeprefix("candle.")},
        )
        for ws_type in fields.CANDLE_WS_TYPES
    )


DEFAULT_CANDLES = _tagged("type", None, "Default")
SIMPLE_CANDLES = _tagged("ty", fields.CANDLE, "Simple")


class _RestCandle(msgspec.Struct, frozen=True, gc=False, rename={"code": "market"}):
    code: str
    candle_date_time_utc: datetime
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    timestamp: int
    candle_acc_trade_price: float
    candle_acc_trade_volume: float
    candle_date_time_kst: datetime | None = None
    unit: int | None = None  # minutes only
    prev_closing_price: float | None = None  # days only
    change_price: float | None = None  # days only
    change_rate: float | None = None  # days only
    first_day_of_period: str | None = None  # weeks, months, years

    def to_model(self, interval: str) -> Candle:
        if self.unit is not None and f"{self.unit}m" != interval:
            raise ValueError(f"candle unit {self.unit} does not match interval {interval!r}")
        return Candle(
            code=self.code,
            interval=interval,
            start_utc=start_utc(self.candle_date_time_utc, self.candle_date_time_kst),
            opening_price=self.opening_price,
            high_price=self.high_price,
            low_price=self.low_price,
            trade_price=self.trade_price,
            candle_acc_trade_price=self.candle_acc_trade_price,
            candle_acc_trade_volume=self.candle_acc_trade_volume,
            timestamp=self.timestamp,
            prev_closing_price=self.prev_closing_price,
            change_price=self.change_price,
            change_rate=self.change_rate,
            first_day_of_period=self.first_day_of_period,
        )


_REST = msgspec.json.Decoder(list[_RestCandle])


def decode_candles_rest(body: bytes, interval: str) -> list[Candle]:
    """``/v1/candles/*`` body -> candles of ``interval``, in the response order (newest first).

    An ``interval`` outside :data:`INTERVALS` is a caller bug and raises ValueError; a body that
    does not decode (or whose ``unit`` disagrees with ``interval``) raises MalformedFrameError.
    """
    if interval not in INTERVALS:
        raise ValueError(f"unknown candle interval {interval!r}; expected one of {INTERVALS}")
    what = f"/v1/candles ({interval})"
    rows = decode_rest(_REST, body, what)
    try:
        return [row.to_model(interval) for row in rows]
    except (ValueError, OverflowError) as exc:
        raise MalformedFrameError(f"{what}: {exc}", bytes(body)) from None
