"""Robust statistics for the rules: median/MAD baselines and an EWMA volatility.

Why these: minute volumes are heavy-tailed (one whale minute is 50x the median), so a mean
baseline is dragged up by the very spikes it should detect; the median ignores up to half the
window being abnormal. Returns are fat-tailed too, but the volatility only *scales* thresholds that
also have absolute floors, so an EWMA of squared returns (cheap, O(1) per minute, adapts within a
half-life) is enough there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["MAD_TO_SIGMA", "ewma_alpha", "median", "median_mad"]

MAD_TO_SIGMA = 1.4826
"""MAD * 1.4826 estimates the standard deviation of a normal distribution."""


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence (mean of the middle two for an even count)."""
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def median_mad(values: Sequence[float]) -> tuple[float, float]:
    """(median, median absolute deviation) of a non-empty sequence."""
    med = median(values)
    return med, median([abs(v - med) for v in values])


def ewma_alpha(halflife: float) -> float:
    """Weight of the newest observation for an EWMA whose weights halve every ``halflife`` steps."""
    return 1.0 - math.pow(0.5, 1.0 / halflife)
