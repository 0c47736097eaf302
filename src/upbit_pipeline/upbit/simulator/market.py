"""The simulated market universe: real KRW market names, tick sizes, per-market character.

Names come from a real ``/v1/market/all?isDetails=true`` response (2025-07-26, copied into
``data/krw_markets.json`` with KRW-BTC, KRW-ETH, KRW-XRP first) so that clients which hard-code
well-known codes work unchanged. Everything numeric is held as an ``int`` in units of 1e-8 (one
"unit" = 0.00000001 KRW or coin): Upbit's wire spells prices and sizes with 8 decimals, and integer
arithmetic makes ``sum(price * volume)`` exact, so a candle's turnover equals the sum over its
trades to the last digit.
"""

from __future__ import annotations

import hashlib
import json
import math
from bisect import bisect_right
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

__all__ = ["SCALE", "MarketSpec", "build_markets", "key", "tick_units", "unit_rng_float"]

SCALE: Final = 10**8
"""Fixed-point scale: every price and size is an int of 1e-8 units."""

# KRW tick table (Upbit policy from 2025-07-31, docs krw-market-info); rows below 100 KRW are the
# pre-2025 table because the new ones are UNCONFIRMED (upbit-api.md section 6).
# (lower bound in units, tick in units), ascending by lower bound.
_TICKS: Final[tuple[tuple[int, int], ...]] = (
    (0, 1),  # < 0.0001 KRW -> 0.00000001
    (10_000, 10),  # 0.0001..0.001 -> 0.0000001
    (100_000, 100),  # 0.001..0.01 -> 0.000001
    (1_000_000, 1_000),  # 0.01..0.1 -> 0.00001
    (10_000_000, 10_000),  # 0.1..1 -> 0.0001
    (100_000_000, 100_000),  # 1..10 -> 0.001
    (1_000_000_000, 1_000_000),  # 10..100 -> 0.01
    (100 * SCALE, 1 * SCALE),  # 100..1,000 -> 1
    (1_000 * SCALE, 1 * SCALE),  # 1,000..5,000 -> 1
    (5_000 * SCALE, 5 * SCALE),
    (10_000 * SCALE, 10 * SCALE),
    (50_000 * SCALE, 50 * SCALE),
    (100_000 * SCALE, 100 * SCALE),
    (500_000 * SCALE, 500 * SCALE),
    (1_000_000 * SCALE, 1_000 * SCALE),
    (2_000_000 * SCALE, 1_000 * SCALE),
)
_TICK_BOUNDS: Final = [lo for lo, _ in _TICKS]

# Realistic start prices (KRW) for the big names; other markets get a seeded log-uniform price.
_KNOWN_PRICES: Final[dict[str, float]] = {
    "KRW-BTC": 140_000_000,
    "KRW-ETH": 5_000_000,
    "KRW-XRP": 4_000,
    "KRW-SOL": 250_000,
    "KRW-DOGE": 300,
    "KRW-ADA": 1_000,
    "KRW-TRX": 400,
    "KRW-LINK": 30_000,
    "KRW-AVAX": 35_000,
    "KRW-DOT": 6_000,
    "KRW-BCH": 700_000,
    "KRW-ETC": 30_000,
    "KRW-AAVE": 400_000,
    "KRW-USDT": 1_390,
    "KRW-USDC": 1_390,
    "KRW-SHIB": 0.02,
    "KRW-PEPE": 0.015,
    "KRW-BONK": 0.03,
    "KRW-SUI": 5_000,
    "KRW-HBAR": 300,
    "KRW-XLM": 500,
    "KRW-UNI": 14_000,
}
# Trades per second at an average hour: the three big ones are busy, the rest spread from lively
# to minutes without a trade (which is what makes candle gaps appear).
_KNOWN_RATES: Final[dict[str, float]] = {"KRW-BTC": 3.0, "KRW-ETH": 2.0, "KRW-XRP": 2.5}


def key(*parts: object) -> int:
    """A 64-bit seed from any tuple: stable across processes (unlike ``hash``)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def unit_rng_float(*parts: object) -> float:
    """A uniform float in [0, 1) that is a pure function of ``parts``."""
    return key(*parts) / 2**64


def tick_units(price_units: int) -> int:
    """Tick size (units) for a price (units) on Upbit's KRW table."""
    return _TICKS[bisect_right(_TICK_BOUNDS, max(price_units, 0)) - 1][1]


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One simulated market: its name, the character of its tape and book."""

    index: int
    code: str
    korean_name: str
    english_name: str
    market_event: dict[str, Any]
    start_price: float  # KRW, typical level; the tape wanders around it
    trades_per_s: float  # average trade rate
    daily_vol: float  # std-dev of log price over a day
    notional_krw: float  # median notional of one trade
    book_depth: int  # real levels per side (< 30 -> zero-padded slots on the wire)
    book_change_p: float  # chance the book changes in a 100 ms slot without a trade
    book_phase_ms: int  # the pair's offset on the 100 ms grid (KRW-BTC's is 6 ms on Upbit)

    @property
    def quote(self) -> str:
        return self.code.split("-", 1)[0]

    def volume_step(self, price_units: int) -> int:
        """Smallest volume step (units) so that price * volume has at most 8 decimals.

        Keeps turnover exact at the 8 decimals REST spells (simplification: Upbit allows 8-dp
        volumes on every pair and rounds turnover).
        """
        tick = tick_units(price_units)
        decimals = 0
        while tick % SCALE != 0 and decimals < 8:
            tick *= 10
            decimals += 1
        return int(10**decimals)


def _load_real() -> list[dict[str, Any]]:
    text = resources.files(__package__).joinpath("data/krw_markets.json").read_text("utf-8")
    rows: list[dict[str, Any]] = json.loads(text)
    return rows


def _synthetic(i: int) -> dict[str, Any]:
    # Clearly made-up names beyond the 183 real KRW markets.
    return {
        "market": f"KRW-SIM{i:03d}",
        "korean_name": f"시뮬{i:03d}",
        "english_name": f"Simulated {i:03d}",
        "market_event": {
            "warning": False,
            "caution": {
                "PRICE_FLUCTUATIONS": False,
                "TRADING_VOLUME_SOARING": False,
                "DEPOSIT_AMOUNT_SOARING": False,
                "GLOBAL_PRICE_DIFFERENCES": False,
                "CONCENTRATION_OF_SMALL_ACCOUNTS": False,
            },
        },
    }


def build_markets(count: int, seed: int) -> list[MarketSpec]:
    """The first ``count`` markets (real names first, then synthetic ones)."""
    real = _load_real()
    rows = real[:count] + [_synthetic(i) for i in range(len(real), count)]
    specs: list[MarketSpec] = []
    for i, row in enumerate(rows):
        code = row["market"]
        u = [unit_rng_float(seed, code, what) for what in range(6)]
        price = _KNOWN_PRICES.get(code) or math.exp(math.log(1.0) + u[0] * math.log(1_000.0))
        if i < 3:
            rate = _KNOWN_RATES.get(code, 1.0)
        elif i < 8:
            rate = 0.2 + u[1] * 0.8  # lively
        else:
            rate = math.exp(math.log(0.003) + u[1] * math.log(0.3 / 0.003))  # 0.003..0.3 /s
        specs.append(
            MarketSpec(
                index=i,
                code=code,
                korean_name=row["korean_name"],
                english_name=row["english_name"],
                market_event=row["market_event"],
                start_price=float(price),
                trades_per_s=rate,
                daily_vol=0.025 if i < 2 else 0.035 + u[2] * 0.06,
                notional_krw=300_000.0 if i < 3 else 30_000.0 + u[3] * 200_000.0,
                book_depth=30 if rate > 0.05 else 12 + int(u[4] * 18),
                book_change_p=min(0.95, 0.02 + rate * 0.3),
                book_phase_ms=6 if i == 0 else int(u[5] * 100),
            )
        )
    return specs
