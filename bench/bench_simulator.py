"""Simulator throughput: WebSocket frames per second delivered to one client.

The simulator runs in its own process (as in the demo, where the pipeline is another process);
one ``websockets`` client subscribes to trade + ticker + orderbook for every market at a high
speed factor and counts binary frames for a fixed wall time. Goal: >= 20k frames/s.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time

import websockets

from bench.common import Result

MARKETS = 60
SPEED = 1000.0
SECONDS = 3.0
REPEATS = 3

_SERVER = (
    "from upbit_pipeline.upbit.simulator import SimConfig, run_simulator\n"
    f"run_simulator(SimConfig(port=0, markets={MARKETS}, seed=1, speed={SPEED}, "
    "rate_limits=False, compress=False, start_ms=1773240000000))\n"
)


async def _count(ws_url: str, markets: list[str]) -> float:
    async with websockets.connect(ws_url, compression=None, max_queue=None) as ws:
        request = [
            {"ticket": "bench"},
            {"type": "trade", "codes": markets},
            {"type": "ticker", "codes": markets},
            {"type": "orderbook", "codes": markets},
            {"format": "SIMPLE"},
        ]
        await ws.send(json.dumps(request))
        for _ in range(len(markets) * 3):  # snapshots are not the stream's rate
            await ws.recv()
        frames = 0
        start = time.perf_counter()
        deadline = start + SECONDS
        while time.perf_counter() < deadline:
            await ws.recv()
            frames += 1
        return frames / (time.perf_counter() - start)


def run() -> list[Result]:
    proc = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        ws_url = base_url.replace("http://", "ws://") + "/websocket/v1"
        markets = _markets(base_url)
        rates = [asyncio.run(_count(ws_url, markets)) for _ in range(REPEATS)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return [
        Result(
            name=f"simulator WS frames to 1 client ({MARKETS} markets, speed {SPEED:g})",
            median=statistics.median(rates),
            unit="frames/s",
            goal=">= 20k frames/s",
            note="trade+ticker+orderbook, SIMPLE, server in its own process",
        )
    ]


def _markets(base_url: str) -> list[str]:
    import httpx

    rows = httpx.get(base_url + "/v1/market/all").json()
    return [row["market"] for row in rows]
