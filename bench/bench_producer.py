"""Producer benchmarks against a real broker (embedded Tansu) and the simulator in its own process.

1. **Live throughput**: the simulator streams trade + ticker + orderbook of 60 markets at speed
   1000 (its maximum) into one producer; frames/s accepted and CPU seconds of the producer
   process per million frames (librdkafka's threads included; the broker's CPU is reported in the
   note). Goal: >= 50k frames/s on this 2-core machine, shared with the simulator and broker.
2. **Publish path alone**: frames recorded from the simulator beforehand are fed to
   ``Producer.handle`` (decode, continuity, dedup, headers, produce) as fast as it takes them;
   the clock stops when the broker has acknowledged the last one. This is the producer's own
   ceiling, independent of how fast the simulator can feed it.
3. **Latency and memory at 2k frames/s**: exchange timestamp -> broker acknowledgement, p50 and
   p99 (goal p99 <= 50 ms). The simulator runs faster than real time to reach 2k frames/s, so each
   exchange time is mapped to the wall clock through ``/_sim/status``. The simulator's own delivery
   (20 ms pump tick, then the socket: 25-65 ms measured) is part of that number, so receive -> ack,
   the producer's own share, is a row of its own. RSS is sampled every
   second; the row is the growth over the second half of the run. ``BENCH_PRODUCER_LONG_S``
   (default 20) sets that run's length; 600 gives the 10-minute soak.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import httpx
from confluent_kafka import KafkaError, Message

from bench.common import Result
from upbit_pipeline.settings import ProducerSettings, Settings, UpbitSettings
from upbit_pipeline.streaming.broker import EmbeddedBroker
from upbit_pipeline.streaming.producer import Producer, ProducerStats
from upbit_pipeline.streaming.publisher import Publisher
from upbit_pipeline.streaming.spool import SpoolRecord
from upbit_pipeline.upbit.ws import RawFrame, UpbitWebSocket

MAX_MARKETS, MAX_SPEED = 60, 1000.0
LAT_MARKETS, LAT_SPEED = 32, 40.0  # about 2k frames/s with the simulator not CPU-bound
WINDOW_S, WINDOWS = 4.0, 3
RECORDED = 100_000
LONG_S = float(os.environ.get("BENCH_PRODUCER_LONG_S", "20"))
CHANNELS: tuple[Literal["trade", "ticker", "orderbook"], ...] = ("trade", "ticker", "orderbook")


@dataclass
class SimProcess:
    proc: subprocess.Popen[str]
    base_url: str

    @classmethod
    def start(cls, markets: int, speed: float) -> SimProcess:
        code = (
            "from upbit_pipeline.upbit.simulator import SimConfig, run_simulator\n"
            f"run_simulator(SimConfig(port=0, markets={markets}, seed=1, speed={speed}, "
            "rate_limits=False, compress=False))\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        return cls(proc, proc.stdout.readline().strip())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _settings(sim: SimProcess, broker: EmbeddedBroker, spool: Path) -> Settings:
    return Settings(
        upbit=UpbitSettings(url=sim.base_url),
        broker=broker.settings,
        producer=ProducerSettings(
            markets="all", channels=CHANNELS, spool_dir=spool, backfill=False, linger_ms=5
        ),
    )


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _until(condition: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not met")
        await asyncio.sleep(0.05)


# -- 1. live throughput -------------------------------------------------------------------------


async def _live(broker: EmbeddedBroker, spool: Path) -> tuple[list[float], list[float], float]:
    sim = SimProcess.start(MAX_MARKETS, MAX_SPEED)
    try:
        producer = Producer(_settings(sim, broker, spool))
        stop = asyncio.Event()
        task = asyncio.create_task(producer.run(stop))
        await _until(lambda: producer.stats().delivered > 5_000, 30)
        rates, cpu = [], []
        assert broker.process is not None
        broker_cpu0 = _proc_cpu_s(broker.process.pid)
        frames0 = producer.stats().frames_total
        for _ in range(WINDOWS):
            n0, c0, t0 = producer.stats().frames_total, _cpu_s(), time.perf_counter()
            await asyncio.sleep(WINDOW_S)
            n1, c1, t1 = producer.stats().frames_total, _cpu_s(), time.perf_counter()
            rates.append((n1 - n0) / (t1 - t0))
            cpu.append((c1 - c0) / max(1, n1 - n0) * 1e6)
        frames = producer.stats().frames_total - frames0
        broker_cpu = (_proc_cpu_s(broker.process.pid) - broker_cpu0) / max(1, frames) * 1e6
        stop.set()
        stats = await task
        assert stats.failed == 0 and stats.deadlettered == 0, stats
        return rates, cpu, broker_cpu
    finally:
        sim.stop()


# -- 2. publish path alone ----------------------------------------------------------------------


async def _record(count: int) -> list[RawFrame]:
    sim = SimProcess.start(MAX_MARKETS, MAX_SPEED)
    try:
        markets = [m["market"] for m in httpx.get(sim.base_url + "/v1/market/all").json()]
        frames: list[RawFrame] = []
        ws_url = sim.base_url.replace("http://", "ws://") + "/websocket/v1"
        async with UpbitWebSocket(ws_url, list(CHANNELS), markets) as ws:
            async for frame in ws.frames():
                frames.append(frame)
                if len(frames) >= count:
                    break
        return frames
    finally:
        sim.stop()


async def _publish_alone(
    broker: EmbeddedBroker, spool: Path, frames: list[RawFrame]
) -> tuple[float, float]:
    settings = Settings(
        broker=broker.settings,
        producer=ProducerSettings(spool_dir=spool, backfill=False, linger_ms=5),
    )
    producer = Producer(settings)
    publisher = producer.open()
    # warm-up: connection, producer id, partition leaders
    for frame in frames[:1000]:
        producer.handle(frame)
    deadline = time.monotonic() + 30
    while publisher.inflight and time.monotonic() < deadline:
        publisher.step()
        await asyncio.sleep(0.01)
    c0, t0 = _cpu_s(), time.perf_counter()
    handle, step = producer.handle, publisher.step
    for i, frame in enumerate(frames[1000:]):
        handle(frame)
        if i % 2000 == 0:
            step()
    while publisher.inflight or publisher.spooling:
        step()
        await asyncio.sleep(0.001)
    elapsed, cpu = time.perf_counter() - t0, _cpu_s() - c0
    await publisher.close()
    stats = producer.stats()
    assert stats.failed == 0 and stats.spooled == 0, stats
    n = len(frames) - 1000
    return n / elapsed, cpu / n * 1e6


# -- 3. latency and memory ----------------------------------------------------------------------


class TimedPublisher(Publisher):
    """Maps each record's exchange time to the wall clock of a faster-than-real-time simulator."""

    wall_ms_at_sync = 0.0
    sim_ms_at_sync = 0
    speed = 1.0
    samples: ClassVar[deque[float]] = deque(maxlen=1_000_000)

    def _on_direct(
        self, record: SpoolRecord, recv_ns: int, err: KafkaError | None, msg: Message
    ) -> None:
        super()._on_direct(record, recv_ns, err, msg)
        if err is None and record.topic.endswith((".trade", ".ticker", ".orderbook")):
            wall = self.wall_ms_at_sync + (record.timestamp_ms - self.sim_ms_at_sync) / self.speed
            self.samples.append(time.time() * 1000 - wall)


def _sync_clock(base_url: str, speed: float) -> None:
    before = time.time() * 1000
    now_ms = int(httpx.get(base_url + "/_sim/status").json()["now_ms"])
    after = time.time() * 1000
    TimedPublisher.wall_ms_at_sync = (before + after) / 2
    TimedPublisher.sim_ms_at_sync = now_ms
    TimedPublisher.speed = speed


async def _latency_and_memory(
    broker: EmbeddedBroker, spool: Path
) -> tuple[float, float, float, float, float, list[float], ProducerStats]:
    sim = SimProcess.start(LAT_MARKETS, LAT_SPEED)
    try:
        _sync_clock(sim.base_url, LAT_SPEED)
        producer = Producer(_settings(sim, broker, spool))
        producer.publisher_class = TimedPublisher
        stop = asyncio.Event()
        task = asyncio.create_task(producer.run(stop))
        await _until(lambda: producer.stats().delivered > 2_000, 30)
        TimedPublisher.samples.clear()
        publisher = producer.publisher
        assert publisher is not None
        publisher.recv_latency_ms.clear()
        n0, t0 = producer.stats().frames_total, time.perf_counter()
        rss: list[float] = []
        while time.perf_counter() - t0 < LONG_S:
            rss.append(_rss_mb())
            await asyncio.sleep(1.0)
        rate = (producer.stats().frames_total - n0) / (time.perf_counter() - t0)
        samples = sorted(TimedPublisher.samples)
        recv = sorted(publisher.recv_latency_ms)
        stop.set()
        stats = await task
        p50, p99 = _pct(samples, 50), _pct(samples, 99)
        return rate, p50, p99, _pct(recv, 50), _pct(recv, 99), rss, stats
    finally:
        sim.stop()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * q / 100))]


# -- entry point --------------------------------------------------------------------------------


def run() -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with EmbeddedBroker(port=0) as broker:
            rates, cpu, broker_cpu = asyncio.run(_live(broker, root / "live"))
        frames = asyncio.run(_record(RECORDED))
        with EmbeddedBroker(port=0) as broker:
            alone = [
                asyncio.run(_publish_alone(broker, root / f"alone{i}", frames)) for i in (1, 2, 3)
            ]
        with EmbeddedBroker(port=0) as broker:
            rate, p50, p99, r50, r99, rss, _stats = asyncio.run(
                _latency_and_memory(broker, root / "latency")
            )
    half = rss[len(rss) // 2 :] or rss
    growth = half[-1] - half[0] if half else float("nan")
    return [
        Result(
            name=f"producer live from simulator ({MAX_MARKETS} markets, speed {MAX_SPEED:g})",
            median=statistics.median(rates),
            unit="frames/s",
            goal=">= 50k frames/s",
            note=f"sim, producer and Tansu share 2 cores; median of {WINDOWS}x{WINDOW_S:g} s",
        ),
        Result(
            name="producer live: CPU per million frames (producer process)",
            median=statistics.median(cpu),
            unit="CPU s/M frames",
            note=f"broker (Tansu) adds {broker_cpu:.1f} CPU s/M frames",
        ),
        Result(
            name=f"producer publish path alone ({RECORDED // 1000}k recorded frames, to ack)",
            median=statistics.median(r for r, _ in alone),
            unit="frames/s",
            goal=">= 50k frames/s",
            note=f"{statistics.median(c for _, c in alone):.1f} CPU s/M frames; median of 3",
        ),
        Result(
            name=f"latency exchange ts -> broker ack p50 (~{rate:,.0f} frames/s)",
            median=p50,
            unit="ms",
            note="includes the simulator's 20 ms pump tick",
        ),
        Result(
            name=f"latency exchange ts -> broker ack p99 (~{rate:,.0f} frames/s)",
            median=p99,
            unit="ms",
            goal="<= 50 ms",
            note="includes the simulator's own 25-65 ms from event to socket",
        ),
        Result(
            name="latency receive -> broker ack p99 (the producer's share)",
            median=r99,
            unit="ms",
            goal="<= 50 ms",
            note=f"p50 {r50:.1f} ms; linger.ms 5, Tansu acks=all",
        ),
        Result(
            name=f"producer RSS growth, 2nd half of a {LONG_S:g} s run",
            median=growth,
            unit="MB",
            goal="steady",
            note=f"RSS {min(rss):.0f}-{max(rss):.0f} MB; BENCH_PRODUCER_LONG_S=600 for 10 min",
        ),
    ]
