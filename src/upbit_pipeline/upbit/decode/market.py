"""Trading pairs: REST ``/v1/market/all`` with or without ``is_details``.

Docs: https://docs.upbit.com/kr/reference/list-trading-pairs. A real entry with details
(2025-07-26)::

    {"market":"BTC-BERA","korean_name":"베라체인","english_name":"Berachain",
     "market_event":{"warning":false,"caution":{"PRICE_FLUCTUATIONS":false,
     "TRADING_VOLUME_SOARING":false,"DEPOSIT_AMOUNT_SOARING":false,
     "GLOBAL_PRICE_DIFFERENCES":false,"CONCENTRATION_OF_SMALL_ACCOUNTS":false}}}

The wire shape is the model's shape, so the body decodes straight into :class:`Market`: without
details there is no ``market_event``; before 2024-11-20 the details carried ``market_warning``
(``NONE``/``CAUTION``) instead, which the model keeps as an optional field. Unknown future caution
flags stay in ``market_event.caution``.
"""

from __future__ import annotations

import msgspec

from upbit_pipeline.upbit.decode._common import decode_rest
from upbit_pipeline.upbit.models import Market

__all__ = ["decode_markets"]

_MARKETS = msgspec.json.Decoder(list[Market])


def decode_markets(body: bytes) -> list[Market]:
    """``/v1/market/all`` body -> markets, in the response order."""
    return decode_rest(_MARKETS, body, "/v1/market/all")
