"""Order books: WebSocket ``orderbook`` (DEFAULT / SIMPLE) and REST ``/v1/orderbook``.

Docs: https://docs.upbit.com/kr/reference/websocket-orderbook and
https://docs.upbit.com/kr/reference/호가orderbook. A real DEFAULT frame (2026-09-23, units trimmed
to 2 of 30 by the source; note the Java exponent prices)::

    {"type":"orderbook","code":"KRW-BTC","timestamp":1790134742106,"total_ask_size":2.51469375,
     "total_bid_size":1.63815297,"orderbook_units":[
       {"ask_price":1.16539E8,"bid_price":1.16538E8,"ask_size":0.02054761,"bid_size":0.08120946},
       {"ask_price":1.16542E8,"bid_price":1.16537E8,"ask_size":0.00077720,"bid_size":0.01129382}],
     "stream_type":"SNAPSHOT","level":0}

Every frame is a whole book (no deltas). What the decoder changes, and why:

* **Zero padding.** A thin book fills the slots past its last order with ``0`` price and ``0``
  size. A level whose *both* sides are all zero is padding and is dropped (such levels only ever
  trail, so they are trimmed from the tail). A level where only one side is zero is kept as sent:
  its other side is real depth, and dropping it would lose that; a consumer reads ``price == 0``
  as "no order on this side at this depth".
* **At most 30 levels**, kept in Upbit's order (best first); the order is not re-checked.
* **No ``.n`` suffix** on ``code``: a subscription to ``KRW-BTC.5`` is still the book of ``KRW-BTC``
  (Upbit already strips it; the decoder makes sure).
* REST units list ``bid_*`` before ``ask_*`` and have no ``stream_type``; key order is irrelevant
  to the decoder.
"""

from __future__ import annotations

import msgspec

from upbit_pipeline.upbit import fields
from upbit_pipeline.upbit.decode._common import (
    decode_rest,
    list_decoder,
    simple_names,
    tuple_of,
    wire_class,
)
from upbit_pipeline.upbit.models import Orderbook, OrderbookUnit

__all__ = ["MAX_LEVELS", "DefaultOrderbook", "SimpleOrderbook", "decode_orderbooks_rest"]

MAX_LEVELS = 30


def best_levels(units: tuple[OrderbookUnit, ...]) -> tuple[OrderbookUnit, ...]:
    """At most :data:`MAX_LEVELS` levels without the trailing all-zero padding, as OrderbookUnit.

    Each side is sorted best first and padded at its end, so an all-zero level can only trail;
    trimming from the tail finds every one of them and leaves a full book (the common case)
    untouched, without a copy.
    """
    end = min(len(units), MAX_LEVELS)
    while end:
        last = units[end - 1]
        if last.ask_price or last.bid_price or last.ask_size or last.bid_size:
            break
        end -= 1
    kept = units if end == len(units) else units[:end]
    if kept and type(kept[0]) is not OrderbookUnit:  # SIMPLE units: same fields, other keys
        return tuple(
            [OrderbookUnit(u.ask_price, u.bid_price, u.ask_size, u.bid_size) for u in kept]
        )
    return kept


class _OrderbookWire(msgspec.Struct, frozen=True, gc=False):
    code: str
    timestamp: int
    total_ask_size: float
    total_bid_size: float
    units: tuple[OrderbookUnit, ...]
    level: float = 0.0
    stream_type: str | None = None

    def to_model(self) -> Orderbook:
        code = self.code
        if "." in code:
            code = code.split(".", 1)[0]
        return Orderbook(
            code=code,
            timestamp=self.timestamp,
            total_ask_size=self.total_ask_size,
            total_bid_size=self.total_bid_size,
            units=best_levels(self.units),
            level=self.level,
            stream_type=self.stream_type,
        )


DefaultOrderbook = wire_class(
    _OrderbookWire,
    "DefaultOrderbook",
    rename={"units": "orderbook_units"},
    tag="orderbook",
    tag_field="type",
)
"""WebSocket DEFAULT ``orderbook`` frame; units decode straight into OrderbookUnit."""

SimpleUnit = wire_class(OrderbookUnit, "SimpleUnit", rename=fields.ORDERBOOK_UNIT)
"""One SIMPLE unit: ``{"ap":..,"bp":..,"as":..,"bs":..}``."""

SimpleOrderbook = wire_class(
    _OrderbookWire,
    "SimpleOrderbook",
    rename=simple_names(fields.ORDERBOOK, units="orderbook_units"),
    tag="orderbook",
    tag_field="ty",
    types={"units": tuple_of(SimpleUnit)},
)
"""WebSocket SIMPLE ``orderbook`` frame (short keys from ``fields.ORDERBOOK``)."""

_RestOrderbook = wire_class(
    _OrderbookWire, "_RestOrderbook", rename={"code": "market", "units": "orderbook_units"}
)

_REST = list_decoder(_RestOrderbook)


def decode_orderbooks_rest(body: bytes) -> list[Orderbook]:
    """``/v1/orderbook`` body -> books, in the response order (one per requested market)."""
    return [book.to_model() for book in decode_rest(_REST, body, "/v1/orderbook")]
