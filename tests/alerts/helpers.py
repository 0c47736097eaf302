"""Small builders shared by the alert tests."""

from __future__ import annotations

from upbit_pipeline.alerts.engine import AlertEngine
from upbit_pipeline.alerts.model import Alert
from upbit_pipeline.upbit.simulator import SimConfig, Simulator
from upbit_pipeline.upbit.simulator.market import SCALE

T0 = 1_750_000_020_000 // 60_000 * 60_000  # a minute boundary (2025-06-15 UTC)


def sim_trades(
    sim: Simulator, start_ms: int, end_ms: int, markets: int | None = None
) -> list[tuple[int, int, str, float, float]]:
    """(ts, sid, market, price KRW, volume) of the simulator's tape, time-ordered."""
    out = []
    for mi, spec in enumerate(sim.specs[:markets]):
        for t in sim.tape.trades_between(mi, start_ms, end_ms):
            out.append((t.ts, t.sid, spec.code, t.price / SCALE, t.volume / SCALE))
    out.sort()
    return out


def run(
    engine: AlertEngine, trades: list[tuple[int, int, str, float, float]], live_ms: int
) -> list[Alert]:
    """Feed trades; those before ``live_ms`` warm the engine quietly."""
    alerts: list[Alert] = []
    engine.quiet = True
    for ts, _sid, market, price, volume in trades:
        if engine.quiet and ts >= live_ms:
            engine.quiet = False
        alerts.extend(engine.on_trade(market, ts, price, volume))
    engine.quiet = False
    return alerts


def make_sim(**options: object) -> Simulator:
    """A simulator used only as a pure tape (no server)."""
    return Simulator(SimConfig(**options))  # type: ignore[arg-type]
