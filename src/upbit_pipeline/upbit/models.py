"""Typed Upbit quotation messages, one shape per kind whatever the wire format.

WebSocket DEFAULT, SIMPLE, JSON_LIST and SIMPLE_LIST frames and the REST responses all decode
to these types (see ``upbit_pipeline.upbit.decode``). Field names follow Upbit's DEFAULT (long)
names so that the docs at docs.upbit.com read straight onto the code.

Numbers -- where float, where int, where Decimal, and why:

* Prices, sizes, turnovers and rates are ``float``. Upbit declares them ``double``; its Java
  server spells them as Double or BigDecimal text (``1.16539E8``, ``0E-8``, ``0.00009372``,
  ``19699800600.2538100000000000``), and every such spelling has at most 17 significant digits, so
  the nearest float64 reproduces the value the exchange holds (a test checks every number in the
  real captures round-trips through ``repr``). float keeps the hot path at ~1M frames/s; Decimal
  would halve it and push Decimal arithmetic into every consumer.
* Exactness is never lost: the raw frame bytes travel with every record (Kafka value, lake ``raw``
  column), and the simulator builds its wire text from ``Decimal`` (``upbit.numbers``).
* Timestamps are ``int`` epoch milliseconds (UTC). ``sequential_id`` is ``int``: its 17 digits
  exceed 2**53, so a float (or a JavaScript number) would merge distinct trades.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = [
    "Candle",
    "ErrorFrame",
    "Market",
    "MarketEvent",
    "Orderbook",
    "OrderbookUnit",
    "StatusFrame",
    "Ticker",
    "Trade",
    "UpbitMessage",
]


class Trade(msgspec.Struct, frozen=True, gc=False):
    """One executed trade (WebSocket ``trade`` or REST ``/v1/trades/ticks``).

    ``ask_bid``: ``ASK`` = seller-initiated (hit a bid), ``BID`` = buyer-initiated (lifted an ask).
    ``sequential_id`` is unique per trade but does not order trades (Upbit docs).
    REST trades carry no ``stream_type``, ``change`` or ``best_*`` fields: those stay ``None``.
    """

    code: str
    trade_timestamp: int  # execution time, epoch ms UTC
    trade_price: float  # quote currency (KRW for KRW-* markets)
    trade_volume: float  # base currency
    ask_bid: str
    sequential_id: int
    prev_closing_price: float
    change_price: float
    timestamp: int  # frame time (WS) or trade time (REST), epoch ms UTC
    trade_date: str  # UTC yyyy-MM-dd
    trade_time: str  # UTC HH:mm:ss
    change: str | None = None  # RISE / EVEN / FALL
    best_ask_price: float | None = None
    best_ask_size: float | None = None
    best_bid_price: float | None = None
    best_bid_size: float | None = None
    stream_type: str | None = None  # SNAPSHOT / REALTIME; None for REST


class Ticker(msgspec.Struct, frozen=True, gc=False):
    """Ticker (WebSocket ``ticker`` or REST ``/v1/ticker``). Day fields reset at 00:00 UTC."""

    code: str
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    prev_closing_price: float
    change: str
    change_price: float
    signed_change_price: float
    change_rate: float
    signed_change_rate: float
    trade_volume: float
    acc_trade_volume: float  # base currency since 00:00 UTC
    acc_trade_volume_24h: float
    acc_trade_price: float  # quote currency (KRW) since 00:00 UTC
    acc_trade_price_24h: float
    trade_date: str  # UTC yyyyMMdd
    trade_time: str  # UTC HHmmss
    trade_timestamp: int
    timestamp: int
    highest_52_week_price: float | None = None
    highest_52_week_date: str | None = None
    lowest_52_week_price: float | None = None
    lowest_52_week_date: str | None = None
    ask_bid: str | None = None  # WS only
    acc_ask_volume: float | None = None  # WS only
    acc_bid_volume: float | None = None  # WS only
    market_state: str | None = None  # WS only: PREVIEW / ACTIVE / DELISTED
    is_trading_suspended: bool | None = None  # WS only, deprecated by Upbit
    delisting_date: str | None = None  # WS only
    market_warning: str | None = None  # WS only: NONE / CAUTION, deprecated by Upbit
    stream_type: str | None = None  # WS only


class OrderbookUnit(msgspec.Struct, frozen=True, gc=False, array_like=False):
    """Level i of the book: the i-th best ask and the i-th best bid."""

    ask_price: float
    bid_price: float
    ask_size: float
    bid_size: float


class Orderbook(msgspec.Struct, frozen=True, gc=False):
    """A full order book snapshot (Upbit sends whole books, never deltas).

    ``units`` keeps up to 30 levels best first; zero-padded levels of thin books are dropped.
    ``timestamp`` is the book's last-change time, which can be stale for quiet books.
    """

    code: str
    timestamp: int
    total_ask_size: float
    total_bid_size: float
    units: tuple[OrderbookUnit, ...]
    level: float = 0.0  # price-grouping unit (KRW markets only)
    stream_type: str | None = None  # WS only


class Candle(msgspec.Struct, frozen=True, gc=False):
    """A candle from WebSocket ``candle.*`` or REST ``/v1/candles/*``.

    ``interval`` is canonical: ``1s``; ``1m 3m 5m 10m 15m 30m 60m 240m``; ``1d``; ``1w``; ``1mo``;
    ``1y``. ``start_utc`` is the candle start (aware, UTC). A candle exists only if at least one
    trade happened in it: minutes without trades are absent, not zero-filled.
    """

    code: str
    interval: str
    start_utc: datetime
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float  # close
    candle_acc_trade_price: float  # quote currency (KRW)
    candle_acc_trade_volume: float  # base currency
    timestamp: int  # epoch ms of the last tick in the candle
    prev_closing_price: float | None = None  # days only
    change_price: float | None = None  # days only, signed
    change_rate: float | None = None  # days only, signed
    first_day_of_period: str | None = None  # weeks, months, years
    stream_type: str | None = None  # WS only


class MarketEvent(msgspec.Struct, frozen=True, gc=False):
    """``market_event`` of ``/v1/market/all?is_details=true``.

    ``warning``: investment warning (유의 종목). ``caution``: caution sub-flags (주의 종목), e.g.
    ``PRICE_FLUCTUATIONS``, ``TRADING_VOLUME_SOARING``; unknown future flags are kept.
    """

    warning: bool
    caution: dict[str, bool] = {}


class Market(msgspec.Struct, frozen=True, gc=False):
    """One trading pair of ``/v1/market/all`` (``{QUOTE}-{BASE}``, e.g. ``KRW-BTC``)."""

    market: str
    korean_name: str
    english_name: str
    market_event: MarketEvent | None = None  # only with is_details=true (since 2024-02)
    market_warning: str | None = None  # removed by Upbit on 2024-11-20; old captures have it

    @property
    def quote(self) -> str:
        return self.market.split("-", 1)[0]


class StatusFrame(msgspec.Struct, frozen=True, gc=False):
    """The keepalive answer ``{"status":"UP"}``."""

    status: str


class ErrorFrame(msgspec.Struct, frozen=True, gc=False):
    """A WebSocket error frame; Upbit closes the socket (code 1000) right after it."""

    name: str  # NO_TICKET, NO_TYPE, NO_CODES, WRONG_FORMAT, INVALID_PARAM, INVALID_AUTH, ...
    message: str


UpbitMessage = Trade | Ticker | Orderbook | Candle | StatusFrame | ErrorFrame
