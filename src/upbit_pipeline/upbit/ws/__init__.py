"""Upbit quotation WebSocket: request building and sharding, one connection's session, and the
sharded self-healing client that yields raw frames with receive times.
"""

from __future__ import annotations

from upbit_pipeline.upbit.ws.client import UpbitWebSocket, WsConfig, WsStats
from upbit_pipeline.upbit.ws.connection import (
    TERMINAL_ERROR_NAMES,
    ConnStats,
    RawFrame,
    SessionConfig,
    SilenceError,
    run_session,
)
from upbit_pipeline.upbit.ws.subscription import (
    CHANNELS,
    FORMATS,
    MAX_CODES_PER_CONN,
    MAX_REQUEST_BYTES,
    MessageBudget,
    build_request,
    normalize_codes,
    plan_shards,
    request_size,
)

__all__ = [
    "CHANNELS",
    "FORMATS",
    "MAX_CODES_PER_CONN",
    "MAX_REQUEST_BYTES",
    "TERMINAL_ERROR_NAMES",
    "ConnStats",
    "MessageBudget",
    "RawFrame",
    "SessionConfig",
    "SilenceError",
    "UpbitWebSocket",
    "WsConfig",
    "WsStats",
    "build_request",
    "normalize_codes",
    "plan_shards",
    "request_size",
    "run_session",
]
