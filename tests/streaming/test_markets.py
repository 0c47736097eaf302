"""Market refresh: new listings subscribed, delisted dropped, failures keep the list."""

from __future__ import annotations

from collections.abc import Sequence

from upbit_pipeline.streaming.markets import MarketRefresher, is_all
from upbit_pipeline.upbit.errors import UpbitServerError


async def test_refresh_applies_listings_and_delistings_and_survives_failures() -> None:
    answers: list[list[str] | Exception] = [
        ["KRW-BTC", "KRW-ETH"],  # unchanged
        ["KRW-BTC", "KRW-ETH", "KRW-NEW"],  # a new listing
        UpbitServerError("503"),  # REST down: keep the list
        [],  # an empty answer is not "everything delisted"
        ["KRW-BTC", "KRW-NEW"],  # KRW-ETH delisted
    ]
    updates: list[list[str]] = []

    async def fetch() -> list[str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def update(codes: Sequence[str]) -> None:
        updates.append(list(codes))

    refresher = MarketRefresher(fetch, update, ["KRW-BTC", "KRW-ETH"], interval_s=60)
    assert await refresher.refresh_once() == ([], [])
    assert await refresher.refresh_once() == (["KRW-NEW"], [])
    assert await refresher.refresh_once() == ([], [])
    assert await refresher.refresh_once() == ([], [])
    assert await refresher.refresh_once() == ([], ["KRW-ETH"])
    assert updates == [["KRW-BTC", "KRW-ETH", "KRW-NEW"], ["KRW-BTC", "KRW-NEW"]]
    assert refresher.failures == 2
    assert is_all(" ALL ") and not is_all("KRW-BTC")


async def test_refresh_against_the_simulator_lists_its_krw_markets(sim_factory) -> None:
    from upbit_pipeline.settings import UpbitSettings

    sim = await sim_factory(markets=4)
    updates: list[list[str]] = []
    refresher = MarketRefresher.for_upbit(
        UpbitSettings(url=sim.base_url), lambda c: updates.append(list(c)), ["KRW-GONE"], 60
    )
    added, removed = await refresher.refresh_once()
    assert removed == ["KRW-GONE"]
    assert set(added) == {m for m in sim.markets if m.startswith("KRW-")}
