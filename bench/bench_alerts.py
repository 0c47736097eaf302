"""Alert benchmarks: rule-engine throughput, and tick-to-decision latency through a real broker.

* ``alerts engine``: trades/s through :meth:`AlertEngine.on_trade` on one core (100 markets,
  random-walk prices, ~2,000 trades per event-time second). Goal >= 100k trades/s.
* ``alerts latency p50/p99 @ R``: SIMPLE trade frames produced to an embedded Tansu at R trades/s,
  consumed by the real :class:`AlertWorker`; latency = decision time - the record's ``recv_ns``
  header (stamped when the frame is produced, as the producer stamps receive time). Goal
  p99 <= 250 ms.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from confluent_kafka import Producer

from bench.common import Result, rate_median
from upbit_pipeline.alerts.engine import AlertEngine
from upbit_pipeline.alerts.worker import AlertWorker
from upbit_pipeline.settings import AlertSettings, LakeSettings, Settings
from upbit_pipeline.streaming.broker import EmbeddedBroker
from upbit_pipeline.streaming.kafka import producer_config
from upbit_pipeline.streaming.records import RecordHeaders
from upbit_pipeline.streaming.topics import TopicNames

MARKETS = [f"KRW-B{i:03d}" for i in range(100)]


def _trades(n: int, per_s: int = 2000) -> list[tuple[str, int, float, float]]:
    rng = random.Random(7)
    prices = {m: 1000.0 for m in MARKETS}
    t0 = 1_750_000_000_000
    out = []
    for i in range(n):
        market = MARKETS[rng.randrange(len(MARKETS))]
        prices[market] *= 1.0 + rng.gauss(0.0, 0.0005)
        out.append((market, t0 + i * 1000 // per_s, prices[market], rng.expovariate(1.0)))
    return out


def engine_rate(n: int = 300_000, per_s: int = 2000) -> float:
    trades = _trades(n, per_s)

    def work() -> int:
        engine = AlertEngine()
        on_trade = engine.on_trade
        for market, ts, price, volume in trades:
            on_trade(market, ts, price, volume)
        return n

    return rate_median(work, repeats=3)


def _frame(market: str, ts: int, price: float, sid: int) -> bytes:
    return (
        f'{{"ty":"trade","cd":"{market}","tms":{ts},"td":"2025-06-15","ttm":"00:00:00",'
        f'"ttms":{ts},"tp":{price},"tv":0.5,"ab":"BID","pcp":1000.0,"c":"RISE","cp":1.0,'
        f'"sid":{sid},"st":"REALTIME"}}'
    ).encode()


async def _latency(broker: EmbeddedBroker, rate: int, seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            broker=broker.settings,
            lake=LakeSettings(path=str(Path(tmp) / "lake")),
            alerts=AlertSettings(
                console=False,
                jsonl_path=Path(tmp) / "alerts.jsonl",
                consumer_group=f"bench-{rate}",
            ),
        )
        worker = AlertWorker(settings, warmup=timedelta(0))
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        deadline = time.monotonic() + 30
        while not worker.stats.assigned and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        topic = TopicNames.of(settings.broker).channel("trade")
        # As the real producer: 5 ms linger (batches), idempotent, acks=all.
        producer = Producer(producer_config(settings.broker, linger_ms=5))
        rng = random.Random(1)
        start = time.monotonic()
        cleared = False
        sent = 0
        price = 1000.0
        while (elapsed := time.monotonic() - start) < seconds:
            if not cleared and elapsed > 2.0:  # steady state: drop the start-up seconds
                worker.stats.latency_ms.clear()
                cleared = True
            due = int(elapsed * rate)
            while sent < due:
                market = MARKETS[sent % len(MARKETS)]
                price *= 1.0 + rng.gauss(0.0, 0.0002)
                now_ns = time.time_ns()
                producer.produce(
                    topic,
                    key=market,
                    value=_frame(market, now_ns // 1_000_000, round(price, 2), sent),
                    timestamp=now_ns // 1_000_000,
                    headers=list(RecordHeaders(now_ns, "bench", "SIMPLE").encode()),
                )
                sent += 1
            producer.poll(0)
            await asyncio.sleep(0.002)
        producer.flush(10)
        deadline = time.monotonic() + 10
        while worker.stats.records < sent and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        stats = await task
        return stats.percentile(0.5), stats.percentile(0.99)


def latency_rows() -> list[Result]:
    rows = []
    broker = EmbeddedBroker(port=0).start()
    try:
        for rate in (2_000, 20_000):
            p50, p99 = asyncio.run(_latency(broker, rate, 10.0))
            rows.append(Result(f"alerts latency p50 @ {rate:,} trades/s", p50, "ms", "", "Tansu"))
            rows.append(Result(f"alerts latency p99 @ {rate:,} trades/s", p99, "ms", "<= 250 ms"))
    finally:
        broker.stop()
    return rows


def run() -> list[Result]:
    rows = [
        Result("alerts engine", engine_rate(), "trades/s", ">= 100k", "1 core, 100 markets"),
        Result(
            "alerts engine, 1 trade/s/market",
            engine_rate(100_000, 100),
            "trades/s",
            ">= 100k",
            "worst case: every trade opens a new second",
        ),
    ]
    rows.extend(latency_rows())
    return rows


if __name__ == "__main__":
    for row in run():
        print(row.row())
