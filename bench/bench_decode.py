"""decode_frame throughput on one core: trade, ticker and 30-level orderbook frames, DEFAULT and
SIMPLE, each spelt the way Upbit spells it (upbit-api.md 2.11).

Why these frames: trade is the busiest per-market stream and the ingest goal is stated for it
(>= 200k frames/s leaves a 200x margin over the ~1,000 frames/s of a full-market socket);
orderbook is the biggest frame (~2.7 kB at 30 levels) and ~80 % of a full-market socket's
frames. SIMPLE frames are built from the DEFAULT text by swapping quoted keys with the maps of
``upbit.fields``, so the number spellings stay Upbit's.
"""

from __future__ import annotations

from decimal import Decimal

from bench.common import Result, rate_median
from upbit_pipeline.upbit import fields
from upbit_pipeline.upbit.decode import decode_frame

TRADE = b'{"type":"trade","code":"KRW-BTC","timestamp":1788335180423,"trade_date":"2026-09-02","trade_time":"07:46:20","trade_timestamp":1788335180377,"trade_price":106691000.00000000,"trade_volume":0.00009372,"ask_bid":"ASK","prev_closing_price":107005000.00000000,"change":"FALL","change_price":314000.00000000,"sequential_id":17883351803770004,"best_ask_price":106705000,"best_ask_size":0.00906333,"best_bid_price":106691000,"best_bid_size":0.00702247,"stream_type":"SNAPSHOT"}'  # noqa: E501
TICKER = b'{"type":"ticker","code":"KRW-BTC","opening_price":122720000.00000000,"high_price":123135000.00000000,"low_price":122677000.00000000,"trade_price":122902000.00000000,"prev_closing_price":122720000.00000000,"acc_trade_price":19699800600.2538100000000000,"change":"RISE","change_price":182000.00000000,"signed_change_price":182000.00000000,"change_rate":0.0014830508,"signed_change_rate":0.0014830508,"ask_bid":"ASK","trade_volume":0.00020372,"acc_trade_volume":160.18173252,"trade_date":"20250420","trade_time":"063055","trade_timestamp":1745130655618,"acc_ask_volume":80.07639388,"acc_bid_volume":80.10533864,"highest_52_week_price":163325000.00000000,"highest_52_week_date":"2025-01-20","lowest_52_week_price":72100000.00000000,"lowest_52_week_date":"2024-08-05","market_state":"ACTIVE","is_trading_suspended":false,"delisting_date":null,"market_warning":"NONE","timestamp":1745130655652,"acc_trade_price_24h":67648718116.20854000,"acc_trade_volume_24h":549.81614150,"stream_type":"SNAPSHOT"}'  # noqa: E501


def java_double(value: float) -> str:
    """Java's ``Double.toString``: plain in [1e-3, 1e7), else ``1.16539E8`` / ``7.9276E-4``."""
    if 1e-3 <= abs(value) < 1e7:
        return repr(float(value))
    mantissa, exponent = f"{Decimal(repr(float(value))).normalize():E}".split("E")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}E{int(exponent)}"


def _levels(count: int) -> list[tuple[int, int, float, float]]:
    """ask price, bid price, ask size, bid size of a KRW-BTC book, best first."""
    return [
        (116539000 + 3000 * i, 116538000 - 3000 * i, round(0.00079276 * (i + 1), 8), 0.0812 + i)
        for i in range(count)
    ]


def orderbook_default(levels: int = 30) -> bytes:
    """The book as DEFAULT writes it: Java exponent prices, 8-dp sizes (upbit-api.md 2.11)."""
    units = ",".join(
        f'{{"ask_price":{java_double(a)},"bid_price":{java_double(b)},'
        f'"ask_size":{a_size:.8f},"bid_size":{b_size:.8f}}}'
        for a, b, a_size, b_size in _levels(levels)
    )
    return (
        '{"type":"orderbook","code":"KRW-BTC","timestamp":1790134742106,'
        '"total_ask_size":2.51469375,"total_bid_size":1.63815297,'
        f'"orderbook_units":[{units}],"stream_type":"SNAPSHOT","level":0}}'
    ).encode()


def orderbook_simple(levels: int = 30) -> bytes:
    """The same book as SIMPLE writes it: plain integer prices, Java sizes (``7.9276E-4``)."""
    units = ",".join(
        f'{{"ap":{a},"bp":{b},"as":{java_double(a_size)},"bs":{java_double(b_size)}}}'
        for a, b, a_size, b_size in _levels(levels)
    )
    return (
        '{"ty":"orderbook","cd":"KRW-BTC","tms":1790134742106,"tas":2.51469375,'
        f'"tbs":1.63815297,"obu":[{units}],"st":"SNAPSHOT","lv":0}}'
    ).encode()


def to_simple(raw: bytes, mapping: dict[str, str]) -> bytes:
    """Swap each quoted DEFAULT key for its SIMPLE key; values keep their spelling."""
    for long_key, short_key in mapping.items():
        raw = raw.replace(f'"{long_key}":'.encode(), f'"{short_key}":'.encode())
    return raw


def _rate(raw: bytes, count: int) -> float:

    def work() -> int:
        for _ in range(count):
            decode_frame(raw)
        return count

    return rate_median(work, repeats=5)


def run() -> list[Result]:
    if decode_frame(orderbook_default()) != decode_frame(orderbook_simple()):
        raise RuntimeError("the DEFAULT and SIMPLE benchmark books must be the same book")
    cases = [
        ("trade", "DEFAULT", TRADE, 50_000, ">= 200k/s"),
        ("trade", "SIMPLE", to_simple(TRADE, fields.TRADE), 50_000, ">= 200k/s"),
        ("ticker", "DEFAULT", TICKER, 30_000, ""),
        ("ticker", "SIMPLE", to_simple(TICKER, fields.TICKER), 30_000, ""),
        ("orderbook 30 levels", "DEFAULT", orderbook_default(), 10_000, ""),
        ("orderbook 30 levels", "SIMPLE", orderbook_simple(), 10_000, ""),
    ]
    return [
        Result(
            name=f"decode_frame {kind} {fmt}",
            median=_rate(raw, count),
            unit="frames/s",
            goal=goal,
            note=f"{len(raw):,} B/frame, one core, median of 5",
        )
        for kind, fmt, raw, count, goal in cases
    ]
