"""An existing third-party Upbit client (pyupbit) works against the simulator unchanged but for
the host name: its own request building, paging, Remaining-Req parsing and JSON handling run as
they do against api.upbit.com.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import pyupbit  # type: ignore[import-untyped]
import pyupbit.request_api  # type: ignore[import-untyped]
import requests

from tests.fixtures.simulator import SimFactory

UPBIT = "https://api.upbit.com"


@pytest.fixture
def upbit_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Point pyupbit's HTTP calls at the simulator: only the host name changes."""
    target: list[str] = []
    real_get = requests.get

    def get(url: str, **kwargs: Any) -> requests.Response:
        assert url.startswith(UPBIT), url
        return real_get(target[0] + url[len(UPBIT) :], **kwargs)

    monkeypatch.setattr(pyupbit.request_api.requests, "get", get)
    yield target


async def test_pyupbit_market_list_prices_orderbook_and_paged_candles(
    sim_factory: SimFactory, upbit_host: list[str]
) -> None:
    sim = await sim_factory(markets=6, seed=11, speed=1.0, rate_limits=True)
    upbit_host.append(sim.base_url)

    tickers = await asyncio.to_thread(pyupbit.get_tickers, fiat="KRW")
    assert sorted(tickers) == sorted(sim.markets)

    price = await asyncio.to_thread(pyupbit.get_current_price, "KRW-BTC")
    assert isinstance(price, float) and price > 1_000_000

    book = await asyncio.to_thread(pyupbit.get_orderbook, "KRW-BTC")
    units = book["orderbook_units"]
    assert len(units) == 30
    assert units[0]["ask_price"] > units[0]["bid_price"]

    # 450 one-minute candles: pyupbit pages by 200 with its own `to` handling.
    frame = await asyncio.to_thread(pyupbit.get_ohlcv, "KRW-BTC", interval="minute1", count=450)
    assert frame is not None and len(frame) == 450  # KRW-BTC trades every minute
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()

    days = await asyncio.to_thread(pyupbit.get_ohlcv, "KRW-ETH", interval="day", count=30)
    assert days is not None and len(days) == 30
