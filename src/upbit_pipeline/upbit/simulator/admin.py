"""``/_sim/...``: the simulator's own API, outside Upbit's namespace.

Tests and the demo ask it for the ground truth (which trades exist, which anomalies were planted)
and use it to inject faults at run time. Run-time faults are in wall seconds; scenario faults are in
simulated time.

    GET  /_sim/status
    GET  /_sim/truth/trades?market=KRW-BTC&from_ms=..&to_ms=..   (from inclusive, to exclusive)
    GET  /_sim/truth/anomalies
    POST /_sim/faults/drop                      abort every WebSocket now (clients see 1006)
    POST /_sim/faults/silence?seconds=N         no WebSocket data for N s
    POST /_sim/faults/malformed?fraction=F      replace a fraction F of data frames by broken JSON
    POST /_sim/faults/rest_5xx?seconds=N        every REST call answers 500 for N s
    POST /_sim/faults/rest_429?seconds=N        every REST call answers 429 for N s
    POST /_sim/faults/clear                     end all run-time faults
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING

from aiohttp import web

from upbit_pipeline.upbit.simulator.rest import SIM_KEY

if TYPE_CHECKING:
    from upbit_pipeline.upbit.simulator.server import Simulator

__all__ = ["add_admin_routes"]

_MAX_IDS = 200_000


def _sim(request: web.Request) -> Simulator:
    sim: Simulator = request.app[SIM_KEY]
    return sim


def _reply(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _float(request: web.Request, name: str, default: float) -> float:
    try:
        return float(request.query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be a number") from None


async def status(request: web.Request) -> web.Response:
    sim = _sim(request)
    cfg = sim.config
    return _reply(
        {
            "base_url": sim.base_url,
            "now_ms": sim.now_ms(),
            "start_ms": sim.start_ms,
            "speed": cfg.speed,
            "seed": cfg.seed,
            "markets": sim.markets,
            "history_from_ms": sim.tape.first_day * 86_400_000,
            "connections": len(sim.hub.conns),
            "frames_sent": sim.hub.frames_sent,
            "faults": sim.faults.describe(),
        }
    )


async def truth_trades(request: web.Request) -> web.Response:
    """Sequential ids of the tape's trades in ``[from_ms, to_ms)`` (capped at now), ascending."""
    sim = _sim(request)
    code = request.query.get("market", "").upper()
    mi = sim.index.get(code)
    if mi is None:
        raise web.HTTPNotFound(text=f"unknown market {code!r}")
    now = sim.now_ms()
    try:
        to_ms = min(int(request.query.get("to_ms", now + 1)), now + 1)
        from_ms = int(request.query.get("from_ms", to_ms - 60_000))
    except ValueError:
        raise web.HTTPBadRequest(text="from_ms/to_ms must be integers") from None
    trades = sim.tape.trades_between(mi, from_ms - 1, to_ms - 1) if to_ms > from_ms else []
    ids = [t.sid for t in trades]
    digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()
    body: dict[str, object] = {
        "market": code,
        "from_ms": from_ms,
        "to_ms": to_ms,
        "count": len(ids),
        "digest": digest,
        "volume": sum(t.volume for t in trades) / 1e8,
    }
    if len(ids) <= _MAX_IDS:
        body["sequential_ids"] = ids
    return _reply(body)


async def truth_anomalies(request: web.Request) -> web.Response:
    sim = _sim(request)
    rows = []
    for a in sim.scenario.anomalies:
        start, end = a.window(sim.start_ms)
        rows.append(
            {"kind": a.kind, "market": a.market, "start_ms": start, "end_ms": end, "size": a.size}
        )
    return _reply(rows)


async def fault(request: web.Request) -> web.Response:
    sim = _sim(request)
    name = request.match_info["name"]
    faults = sim.faults
    now = time.monotonic()
    if name == "drop":
        return _reply({"dropped": sim.hub.drop_all()})
    if name == "silence":
        sim.hub.silent_until_mono = now + _float(request, "seconds", 5.0)
    elif name == "malformed":
        sim.hub.malformed_fraction = min(1.0, max(0.0, _float(request, "fraction", 0.1)))
    elif name == "rest_5xx":
        faults.rest_5xx_until = now + _float(request, "seconds", 5.0)
    elif name == "rest_429":
        faults.rest_429_until = now + _float(request, "seconds", 5.0)
    elif name == "clear":
        sim.hub.silent_until_mono = 0.0
        sim.hub.malformed_fraction = 0.0
        faults.rest_5xx_until = faults.rest_429_until = 0.0
    else:
        raise web.HTTPNotFound(text=json.dumps({"unknown fault": name}))
    return _reply({"ok": True, "faults": faults.describe()})


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/_sim/status", status)
    app.router.add_get("/_sim/truth/trades", truth_trades)
    app.router.add_get("/_sim/truth/anomalies", truth_anomalies)
    app.router.add_post("/_sim/faults/{name}", fault)
