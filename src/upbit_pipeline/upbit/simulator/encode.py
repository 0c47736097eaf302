"""Number spelling and JSON text exactly as Upbit's Java server writes it.

All values arrive as ``int`` in 1e-8 units and are spelled with integer arithmetic only, so no
float-formatting accident can change a digit. The spellings (upbit-api.md sections 2.11 and 3.9):

* ``fixed8``  BigDecimal with scale 8: ``103600000.00000000``, ``0.00400000``; zero is ``0E-8``.
* ``fixed16`` scale 16 (WS ``acc_trade_price``, ``candle_acc_trade_price``):
  ``860743.5307100000000000``.
* ``plain``   stripped BigDecimal / long: ``116233000``, ``0.06146``, ``67648718116.20854``.
* ``jdouble`` Java ``Double.toString``: ``1.16539E8``, ``7.9276E-4``, ``0.06288509``, ``5.0E-4``.
* ``sdouble`` the SIMPLE-format doubles seen in Upbit's examples: ``148500000.0``, ``0.0602652``,
  exponent form only below 1e-3 (``7.9276E-4``).
* ``rate10``  rates with 10 decimals, half-up: ``0.0014830508``; zero is ``0``.

JSON objects are built as text in the wire key order (``fields.py``), which is faster than a generic
encoder and keeps the order and spelling under our control.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from functools import lru_cache

from upbit_pipeline.upbit.simulator.market import SCALE

__all__ = [
    "date_dash",
    "date_plain",
    "dt_iso",
    "fixed8",
    "fixed16",
    "jdouble",
    "obj",
    "plain",
    "q",
    "rate10",
    "sdouble",
    "time_colon",
    "time_plain",
]

_KST_MS = 9 * 3_600_000


def fixed8(units: int) -> str:
    if units == 0:
        return "0E-8"
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), SCALE)
    return f"{sign}{whole}.{frac:08d}"


def fixed16(units: int) -> str:
    if units == 0:
        return "0E-16"
    return fixed8(units) + "00000000"


def plain(units: int) -> str:
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), SCALE)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{f'{frac:08d}'.rstrip('0')}"


def _digits(units: int) -> tuple[str, int]:
    """Significant digits and decimal exponent of units*1e-8 (value = 0.d1d2.. * 10**exp)."""
    text = str(abs(units)).rstrip("0")
    zeros = len(str(abs(units))) - len(text)
    # value = int(text) * 10**(zeros - 8)
    exp10 = len(text) + zeros - 8  # position of the decimal point relative to the digits
    return text, exp10


def jdouble(units: int) -> str:
    """Java ``Double.toString`` of an exact 8-dp value (at most 17 significant digits)."""
    if units == 0:
        return "0.0"
    sign = "-" if units < 0 else ""
    mag = abs(units)
    if 100_000 <= mag < 10**7 * SCALE:  # 1e-3 <= v < 1e7 -> plain with at least one decimal
        return sign + _plain_double(mag)
    digits, exp10 = _digits(mag)
    mantissa = digits[0] + "." + (digits[1:] or "0")
    return f"{sign}{mantissa}E{exp10 - 1}"


def sdouble(units: int) -> str:
    """SIMPLE-format double: plain (``148500000.0``) except below 1e-3 (``7.9276E-4``)."""
    if units == 0:
        return "0.0"
    mag = abs(units)
    if mag < 100_000:
        return jdouble(units)
    return ("-" if units < 0 else "") + _plain_double(mag)


def _plain_double(mag: int) -> str:
    whole, frac = divmod(mag, SCALE)
    decimals = f"{frac:08d}".rstrip("0") or "0"
    return f"{whole}.{decimals}"


def rate10(num: int, den: int) -> str:
    """``num/den`` with 10 decimals, half-up, BigDecimal-like (``0`` when zero)."""
    if num == 0 or den == 0:
        return "0"
    sign = "-" if (num < 0) != (den < 0) else ""
    scaled = (abs(num) * 10**11 // abs(den) + 5) // 10
    if scaled == 0:
        return "0E-10"
    whole, frac = divmod(scaled, 10**10)
    return f"{sign}{whole}.{frac:010d}"


def q(text: str) -> str:
    """A JSON string (our strings never need escaping except the Korean names -> UTF-8)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def obj(pairs: Iterable[tuple[str, str]]) -> str:
    """Compact JSON object text from (key, already-encoded value) pairs, in the given order."""
    return "{" + ",".join(f'"{k}":{v}' for k, v in pairs) + "}"


@lru_cache(maxsize=4096)
def _fmt_second(second: int, pattern: str) -> str:
    return time.strftime(pattern, time.gmtime(second))


def date_dash(ms: int) -> str:
    """``yyyy-MM-dd`` UTC."""
    return _fmt_second(ms // 1000, "%Y-%m-%d")


def date_plain(ms: int) -> str:
    """``yyyyMMdd`` UTC."""
    return _fmt_second(ms // 1000, "%Y%m%d")


def time_colon(ms: int) -> str:
    """``HH:mm:ss`` UTC."""
    return _fmt_second(ms // 1000, "%H:%M:%S")


def time_plain(ms: int) -> str:
    """``HHmmss`` UTC."""
    return _fmt_second(ms // 1000, "%H%M%S")


def dt_iso(ms: int, kst: bool = False) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss`` in UTC (or KST = UTC+9), no zone suffix."""
    return _fmt_second((ms + (_KST_MS if kst else 0)) // 1000, "%Y-%m-%dT%H:%M:%S")
