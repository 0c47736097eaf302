"""sd_notify end to end: real processes send READY and keep sending WATCHDOG to a test-owned
NOTIFY_SOCKET; a hung main loop stops the pings (what makes systemd kill it)."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.ops.conftest import NotifySocket, Procs, apoll, poll
from upbit_pipeline.streaming.broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.integration

WATCHDOG_USEC = 300_000  # pings every 0.15 s


def _assert_pings_stop(notify: NotifySocket, quiet_s: float) -> None:
    """After the hang: at most one late ping, then silence for ``quiet_s`` (2x the period)."""
    time.sleep(0.2)  # a ping already on its way may still arrive
    before = len(notify.with_key("WATCHDOG"))
    time.sleep(quiet_s)
    assert len(notify.with_key("WATCHDOG")) == before, "a hung loop must not ping"


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_loop_pings_and_a_hung_loop_stops(
    procs: Procs,
    tmp_path: Path,
    notify_socket: NotifySocket,
    abstract_notify_socket: NotifySocket,
    abstract: bool,
) -> None:
    notify = abstract_notify_socket if abstract else notify_socket
    hang = tmp_path / "hang"
    proc = procs.start(
        "loop",
        [sys.executable, "-m", "tests.ops.liveness_main", str(hang)],
        notify.env(WATCHDOG_USEC),
    )
    poll(lambda: notify.with_key("READY"), 10, "READY=1")
    poll(lambda: len(notify.with_key("WATCHDOG")) >= 5, 10, "five WATCHDOG=1 pings")
    stamps = [t for t, _ in notify.with_key("WATCHDOG")]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert max(gaps[1:]) < WATCHDOG_USEC / 1e6, f"pings too far apart for the watchdog: {gaps}"
    assert any(m.get("STATUS", "").endswith("iterations") for _, m in notify.drain())
    hang.touch()
    _assert_pings_stop(notify, 2 * WATCHDOG_USEC / 1e6)
    assert proc.alive(), "hung, not dead: only the watchdog can tell"


async def test_producer_service_pings_serves_metrics_and_stops_pinging_when_hung(
    sim_factory, broker: EmbeddedBroker, procs: Procs, notify_socket: NotifySocket, tmp_path: Path
) -> None:
    sim = await sim_factory(markets=3, speed=5.0)
    metrics_port = free_port()
    config = {
        "settings": {
            "upbit": {"url": sim.base_url},
            "broker": {"bootstrap_servers": broker.bootstrap_servers},
            "producer": {
                "markets": ",".join(sim.markets),
                "spool_dir": str(tmp_path / "spool"),
                "backfill": False,
                "metrics_port": metrics_port,
            },
        },
        "hang_after_s": 4.0,
        "hung_file": str(tmp_path / "hung"),
    }
    python = sys.executable
    producer = procs.start(
        "producer",
        [python, "-m", "tests.ops.producer_main", json.dumps(config)],
        notify_socket.env(WATCHDOG_USEC),
    )
    await apoll(lambda: notify_socket.with_key("READY"), 20, "the producer's READY=1")
    await apoll(lambda: len(notify_socket.with_key("WATCHDOG")) >= 4, 10, "WATCHDOG pings")
    statuses = [m["STATUS"] for _, m in notify_socket.drain() if "STATUS" in m]
    assert any("frames" in s for s in statuses), statuses

    async with httpx.AsyncClient() as client:
        text = ""

        async def scraped() -> bool:
            nonlocal text
            text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            return 'upbit_producer_frames_in_total{channel="trade"}' in text

        deadline = time.monotonic() + 10
        while not await scraped():
            assert time.monotonic() < deadline, text[-2000:]
            await asyncio.sleep(0.2)
    assert "upbit_producer_last_event_timestamp_seconds" in text

    # The event loop is blocked 4 s after start: the supervisor loop can no longer ping.
    await apoll((tmp_path / "hung").exists, 20, "the hang")
    await asyncio.sleep(0.2)  # a datagram already sent may still be read
    before = len(notify_socket.with_key("WATCHDOG"))
    await asyncio.sleep(2 * WATCHDOG_USEC / 1e6 + 0.3)
    assert len(notify_socket.with_key("WATCHDOG")) == before, "a blocked event loop pinged"
    producer.kill()  # what systemd's watchdog does (SIGABRT); SIGTERM cannot reach a blocked loop
