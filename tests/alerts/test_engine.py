"""The rule engine on synthetic trades and on the simulator's tape (pure, no servers)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.alerts.helpers import T0, make_sim, run, sim_trades
from upbit_pipeline.alerts.config import RulesConfig
from upbit_pipeline.alerts.engine import AlertEngine
from upbit_pipeline.alerts.model import encode_alert
from upbit_pipeline.upbit.models import Market, MarketEvent
from upbit_pipeline.upbit.simulator import Anomaly, Scenario

MIN = 60_000


def _rules(**volume: object) -> RulesConfig:
    return RulesConfig.model_validate({"defaults": {"volume": volume}})


def test_a_bar_five_times_the_previous_ones_is_five_times() -> None:
    """Seed bug: its mean included the current bar, so 5x read as 2.8x (and 4.5x meant 36x)."""
    engine = AlertEngine(_rules(k=5.0, min_krw=0, baseline_floor_krw=0, min_baseline_min=10))
    price = 1000.0
    for m in range(30):  # 30 minutes of 10,000,000 KRW each, one trade at :30
        assert engine.on_trade("KRW-X", T0 + m * MIN + 30_000, price, 10_000.0) == []
    alerts = engine.on_trade("KRW-X", T0 + 30 * MIN + 30_000, price, 50_000.0)
    assert [a.rule for a in alerts] == ["volume_spike"]
    assert alerts[0].baseline_krw == 10_000_000.0
    assert alerts[0].krw_60s == 50_000_000.0
    assert alerts[0].ratio == pytest.approx(5.0)

    # 5x exactly is not 5.01x: the threshold means what it says.
    strict = AlertEngine(_rules(k=5.01, min_krw=0, baseline_floor_krw=0))
    for m in range(30):
        strict.on_trade("KRW-X", T0 + m * MIN + 30_000, price, 10_000.0)
    assert strict.on_trade("KRW-X", T0 + 30 * MIN + 30_000, price, 50_000.0) == []


def test_price_and_volume_have_their_own_cooldowns_and_one_event_alerts_once() -> None:
    engine = AlertEngine(_rules(min_krw=0))
    alerts = []
    for m in range(60):  # flat market, 1M KRW a minute
        alerts += engine.on_trade("KRW-X", T0 + m * MIN + 1_000, 1000.0, 1_000.0)
    assert alerts == []
    # One trade: +5 % and 20x the volume -> both rules, independently.
    found = engine.on_trade("KRW-X", T0 + 60 * MIN + 1_000, 1051.3, 19_000.0)
    assert sorted(a.rule for a in found) == ["price_move", "volume_spike"]
    price = next(a for a in found if a.rule == "price_move")
    assert price.direction == "up" and price.window_s == 60
    assert price.move_pct == pytest.approx(100 * math.log(1.0513), abs=1e-3)
    # The price stays up for 20 minutes (past the 10-minute cooldown): the same event, no repeat.
    later = []
    for m in range(61, 81):
        later += engine.on_trade("KRW-X", T0 + m * MIN + 1_000, 1051.3, 1_000.0)
    assert later == []
    # Back to calm, then a new pump after the cooldown: a new event, a new alert.
    for m in range(81, 100):
        later += engine.on_trade("KRW-X", T0 + m * MIN + 1_000, 1000.0, 1_000.0)
    assert [a.direction for a in later if a.rule == "price_move"] == ["down"]
    again = engine.on_trade("KRW-X", T0 + 100 * MIN + 1_000, 1060.0, 1_000.0)
    assert [a.rule for a in again] == ["price_move"]


def test_cooldown_is_event_time_and_per_direction() -> None:
    rules = RulesConfig.model_validate(
        {"defaults": {"cooldown_s": 600, "price": {"rearm_fraction": 1.0}}}
    )
    engine = AlertEngine(rules)
    for s in range(0, 120, 10):
        engine.on_trade("KRW-X", T0 + s * 1000, 100.0, 1.0)
    up = engine.on_trade("KRW-X", T0 + 130_000, 103.0, 1.0)
    assert [a.direction for a in up] == ["up"]
    down = engine.on_trade("KRW-X", T0 + 200_000, 99.0, 1.0)
    assert [a.direction for a in down] == ["down"]  # the other direction is not cooled down
    # Re-armed (back at 100), up again 5 minutes later: still inside the up cooldown.
    engine.on_trade("KRW-X", T0 + 300_000, 100.0, 1.0)
    assert engine.on_trade("KRW-X", T0 + 400_000, 103.0, 1.0) == []


def test_trades_later_than_the_allowed_lateness_are_counted_and_ignored() -> None:
    engine = AlertEngine()
    engine.on_trade("KRW-X", T0 + 10_000, 100.0, 1.0)
    engine.on_trade("KRW-X", T0 + 9_000, 100.0, 1.0)  # 1 s late: within the 2 s default
    engine.on_trade("KRW-X", T0 + 5_000, 100.0, 1.0)  # 5 s late: ignored
    bars = engine.bars("KRW-X")
    assert bars is not None
    assert engine.stats.late == 1
    assert bars.roll_krw == pytest.approx(200.0)


def test_upbit_flags_alert_when_they_turn_on() -> None:
    engine = AlertEngine()
    assert engine.on_ticker("KRW-X", T0, "CAUTION") == []  # first value seen: the state
    assert engine.on_ticker("KRW-Y", T0, "NONE") == []
    found = engine.on_ticker("KRW-Y", T0 + 1000, "CAUTION")
    assert [(a.rule, a.flag) for a in found] == [("market_warning", "CAUTION")]
    assert engine.on_ticker("KRW-Y", T0 + 2000, "CAUTION") == []

    def listing(**caution: bool) -> list[Market]:
        event = MarketEvent(warning=False, caution=caution)
        return [Market("KRW-Z", "제트", "Zed", market_event=event)]

    assert engine.on_markets(listing(PRICE_FLUCTUATIONS=False), T0) == []
    found = engine.on_markets(listing(PRICE_FLUCTUATIONS=True), T0 + 60_000)
    assert [(a.rule, a.flag, a.korean_name) for a in found] == [
        ("market_caution", "PRICE_FLUCTUATIONS", "제트")
    ]


def _scenario_sim(*anomalies: Anomaly):
    return make_sim(markets=3, seed=3, start_ms=T0, scenario=Scenario(anomalies=anomalies))


def test_a_pump_of_five_percent_in_60_s_alerts_on_the_trade_that_completes_it() -> None:
    live = T0 + 120 * MIN
    sim = _scenario_sim(Anomaly("pump", "KRW-BTC", 7200, 60.0, 0.05))
    trades = sim_trades(sim, T0, live + 3 * MIN)
    engine = AlertEngine()
    alerts = [a for a in run(engine, trades, live) if a.market == "KRW-BTC"]
    pumps = [a for a in alerts if a.rule == "price_move"]
    assert pumps, alerts
    alert = pumps[0]
    assert alert.direction == "up" and alert.window_s == 60
    assert live <= alert.event_ms < live + MIN
    # Independently: the first trade whose price is threshold above the price 60 s earlier.
    btc = [t for t in trades if t[2] == "KRW-BTC"]
    thr = alert.threshold_pct / 100  # type: ignore[operator]

    def price_before(s: int) -> float:
        return [t[3] for t in btc if t[0] // 1000 <= s][-1]

    completing = next(
        t for t in btc if t[0] >= live and math.log(t[3] / price_before(t[0] // 1000 - 60)) >= thr
    )
    assert 0 <= alert.event_ms - completing[0] <= 1000


def test_a_volume_minute_twenty_times_the_usual_alerts_within_a_second() -> None:
    live = T0 + 120 * MIN
    size = 20 ** (2 / 3) - 1  # the simulator scales trades by (1+size), KRW by (1+size)**1.5
    sim = _scenario_sim(Anomaly("volume_spike", "KRW-ETH", 7200, 60.0, size))
    trades = sim_trades(sim, T0, live + 3 * MIN)
    engine = AlertEngine()
    alerts = [a for a in run(engine, trades, live) if a.market == "KRW-ETH"]
    spikes = [a for a in alerts if a.rule == "volume_spike"]
    assert spikes, alerts
    alert = spikes[0]
    assert live <= alert.event_ms < live + MIN
    assert alert.ratio is not None and alert.ratio >= 10.0
    # Independently: KRW of the whole seconds [s-59, s] vs k x the median of earlier minutes.
    eth = [t for t in trades if t[2] == "KRW-ETH"]
    per_min: dict[int, float] = {}
    for ts, _, _, p, v in eth:
        per_min[ts // MIN] = per_min.get(ts // MIN, 0.0) + p * v
    m = live // MIN
    base = sorted(per_min.get(x, 0.0) for x in range(m - 61, m - 1))
    median = (base[29] + base[30]) / 2
    assert alert.baseline_krw == pytest.approx(median, rel=1e-9)
    trigger = max(10 * median, 50_000_000)

    def roll(s: int) -> float:
        return sum(p * v for ts, _, _, p, v in eth if s - 59 <= ts // 1000 <= s)

    completing = next(t for t in eth if t[0] >= live and roll(t[0] // 1000) >= trigger)
    assert 0 <= alert.event_ms - completing[0] <= 1000


def test_no_price_alert_on_a_quiet_random_walk_of_30_markets_for_30_minutes() -> None:
    live = T0 + 180 * MIN
    sim = make_sim(markets=30, seed=1, start_ms=T0)
    trades = sim_trades(sim, T0, live + 30 * MIN)
    engine = AlertEngine()
    alerts = run(engine, trades, live)
    assert len({t[2] for t in trades if t[0] >= live}) >= 25
    assert [a.summary() for a in alerts if a.rule == "price_move"] == []


def test_same_input_same_alerts() -> None:
    sim = _scenario_sim(Anomaly("pump", "KRW-BTC", 1800, 60.0, 0.05))
    trades = sim_trades(sim, T0, T0 + 40 * MIN)
    first = [encode_alert(a) for a in run(AlertEngine(), trades, T0 + 10 * MIN)]
    second = [encode_alert(a) for a in run(AlertEngine(), trades, T0 + 10 * MIN)]
    assert first and first == second


def test_remembered_alerts_are_never_raised_again() -> None:
    sim = _scenario_sim(Anomaly("pump", "KRW-BTC", 1800, 60.0, 0.05))
    trades = sim_trades(sim, T0, T0 + 40 * MIN)
    alerts = run(AlertEngine(), trades, T0 + 10 * MIN)
    assert alerts
    engine = AlertEngine()
    engine.remember(alerts)
    assert run(engine, trades, T0 + 10 * MIN) == []


_WINDOW_SETS = ((1, 5, 15), (1,), (2, 10), (1, 3, 30, 60))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    windows=st.sampled_from(_WINDOW_SETS),
    floor=st.sampled_from((0.05, 0.5, 1.5, 5.0)),
    vol_multiple=st.sampled_from((0.0, 2.0, 6.0)),
    rearm=st.sampled_from((0.1, 0.5, 1.0)),
    cooldown_s=st.sampled_from((0, 30, 600)),
    start_price=st.floats(1e-4, 1e8),
    steps=st.lists(
        st.tuples(
            st.sampled_from((0, 1, 250, 1_000, 7_000, 45_000, 200_000, 1_200_000)),
            st.floats(-0.3, 0.3),  # log-return of the step
            st.sampled_from((0, 0, 0, 500, 1_900)),  # how late the trade arrives (ms)
            st.sampled_from(("KRW-X", "KRW-Y")),
        ),
        min_size=2,
        max_size=300,
    ),
)
def test_price_move_direction_always_matches_the_sign_of_the_move(
    *,
    windows: tuple[int, ...],
    floor: float,
    vol_multiple: float,
    rearm: float,
    cooldown_s: int,
    start_price: float,
    steps: list[tuple[int, float, int, str]],
) -> None:
    """CI once saw "up" with price < ref_price: direction, move % and prices must agree, always,
    including when a trade crosses the upper bound of one window and the lower of another."""
    rules = RulesConfig.model_validate(
        {
            "defaults": {
                "cooldown_s": cooldown_s,
                "price": {
                    "windows_min": list(windows),
                    "floors_pct": [floor * (i + 1) for i in range(len(windows))],
                    "vol_multiple": vol_multiple,
                    "rearm_fraction": rearm,
                    "min_vol_minutes": 0,
                },
            }
        }
    )
    engine = AlertEngine(rules)
    ts, price = T0, start_price
    seen = 0
    for dt, ret, late, market in steps:
        ts += dt
        price *= math.exp(ret)
        for alert in engine.on_trade(market, ts - late, price, 1.0):
            if alert.rule != "price_move":
                continue
            seen += 1
            assert alert.price is not None and alert.ref_price is not None
            assert alert.move_pct is not None and alert.threshold_pct is not None
            assert alert.direction == ("up" if alert.price > alert.ref_price else "down"), alert
            assert alert.move_pct == pytest.approx(
                100 * math.log(alert.price / alert.ref_price), abs=1e-4
            )
            assert (alert.move_pct > 0) == (alert.direction == "up"), alert
            assert abs(alert.move_pct) >= alert.threshold_pct - 1e-3, alert
            assert alert.id.split(":")[2] == alert.direction
