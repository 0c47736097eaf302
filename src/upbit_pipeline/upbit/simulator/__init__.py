"""A faithful local Upbit (quotation REST + WebSocket) for tests, demos and benchmarks.

Third-party Upbit clients work against it unchanged but for the host name. The tape is a pure
function of (seed, market, simulated time, scenario); see ``tape`` for its design and
docs/upbit-protocol.md for where it is knowingly simpler than Upbit.

    from upbit_pipeline.upbit.simulator import SimConfig, Simulator

    async with Simulator(SimConfig(markets=5, seed=7, speed=50.0)) as sim:
        sim.base_url  # REST at base_url + "/v1/...", WS at sim.ws_url
"""

from __future__ import annotations

from upbit_pipeline.upbit.simulator.config import Anomaly, Faults, Scenario, SimConfig, Window
from upbit_pipeline.upbit.simulator.server import Simulator, run_simulator

__all__ = ["Anomaly", "Faults", "Scenario", "SimConfig", "Simulator", "Window", "run_simulator"]
