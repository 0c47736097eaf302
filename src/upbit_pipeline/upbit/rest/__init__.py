"""Upbit quotation REST: a typed async client with a per-group rate limiter and paging.

``UpbitRestClient`` is the entry point; ``RateLimiter`` and the paging helpers are exposed for
reuse and tests.
"""

from __future__ import annotations

from upbit_pipeline.upbit.rest.client import UpbitRestClient
from upbit_pipeline.upbit.rest.limiter import (
    GROUPS,
    GroupStats,
    RateLimiter,
    SlidingWindow,
    group_for_path,
    parse_ban_seconds,
    parse_remaining_req,
)
from upbit_pipeline.upbit.rest.pagination import (
    ceil_to_boundary,
    format_to,
    interval_path,
    iter_candles_range,
    iter_trades,
)

__all__ = [
    "GROUPS",
    "GroupStats",
    "RateLimiter",
    "SlidingWindow",
    "UpbitRestClient",
    "ceil_to_boundary",
    "format_to",
    "group_for_path",
    "interval_path",
    "iter_candles_range",
    "iter_trades",
    "parse_ban_seconds",
    "parse_remaining_req",
]
