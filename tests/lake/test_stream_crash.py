"""Real producer, real simulator (>= 2k frames/s), real broker, consumer processes SIGKILLed at
random moments; afterwards the lake equals the log exactly (by partition and offset, and for
trades by market and sequential_id). Also: the consumer as a separate process group that shares
only the broker address, while the producer stops for a while and comes back.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.lake.conftest import (
    assert_exactly_once,
    drain,
    kill_group,
    lake_count,
    lake_settings,
    read_log,
    spawn_consumer,
)
from upbit_pipeline.lake import open_lake, verify_lake
from upbit_pipeline.settings import ProducerSettings, Settings, UpbitSettings
from upbit_pipeline.streaming.producer import Producer, ProducerStats

pytestmark = pytest.mark.integration

MIN_FRAMES_PER_S = 2000


def _producer(sim, broker, spool: Path) -> Producer:
    settings = Settings(
        upbit=UpbitSettings(url=sim.base_url),
        broker=broker,
        producer=ProducerSettings(
            markets=",".join(sim.markets),
            channels=("trade", "ticker", "orderbook", "candle"),
            spool_dir=spool,
            backfill=False,
        ),
    )
    return Producer(settings)


async def _started(producer: Producer) -> tuple[asyncio.Event, asyncio.Task[ProducerStats]]:
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop))
    deadline = time.monotonic() + 15
    while not producer.started.is_set() and not task.done():
        assert time.monotonic() < deadline, "producer did not start"
        await asyncio.sleep(0.02)
    return stop, task


async def _kill_test(
    broker, sim, tmp_path: Path, lake: str, *, kills: int, seed: int, flush_s: float = 0.2
) -> None:
    settings = lake_settings(
        broker.settings, lake, max_records_per_file=400, flush_interval_s=flush_s
    )
    storage = open_lake(lake)
    producer = _producer(sim, broker.settings, tmp_path / "spool")
    stop, task = await _started(producer)
    rng = random.Random(seed)
    await asyncio.sleep(0.5)
    start, frames0 = time.monotonic(), producer.stats().frames_total
    for i in range(kills):
        proc = spawn_consumer(settings, log=tmp_path / f"consumer-{i}.log")
        await asyncio.sleep(rng.uniform(1.5, 4.0))
        assert proc.poll() is None, (tmp_path / f"consumer-{i}.log").read_text()
        kill_group(proc)
    rate = (producer.stats().frames_total - frames0) / (time.monotonic() - start)
    removed = sum(
        (tmp_path / f"consumer-{i}.log").read_text().count("removed leftover") for i in range(kills)
    )
    print(f"{kills} kills at {rate:.0f} frames/s; restarts removed {removed} leftover files")
    stop.set()
    stats = await task
    assert rate >= MIN_FRAMES_PER_S, f"simulator streamed only {rate:.0f} frames/s"
    assert stats.failed == 0 and stats.deadlettered == 0
    log = await asyncio.to_thread(read_log, broker.settings, stats.published, 60)
    assert len(log) == stats.published
    await asyncio.to_thread(drain, settings, storage, log, 120)
    assert_exactly_once(storage, log)
    report = await asyncio.to_thread(verify_lake, lake)
    assert report.ok, report.render()
    assert sum(p.records for p in report.partitions) == len(log)


@pytest.mark.timeout(240)
async def test_twenty_sigkills_while_streaming_local(broker, sim_factory, tmp_path) -> None:
    sim = await sim_factory(markets=30, speed=60.0, seed=3)
    await _kill_test(broker, sim, tmp_path, str(tmp_path / "lake"), kills=20, seed=20261126)


@pytest.mark.timeout(240)
async def test_sigkills_while_streaming_gcs(broker, sim_factory, tmp_path, gcs_lake) -> None:
    """The pure-Python emulator serves ~100 requests/s: a 1 s flush keeps the consumer ahead."""
    sim = await sim_factory(markets=30, speed=60.0, seed=4)
    await _kill_test(broker, sim, tmp_path, gcs_lake, kills=5, seed=7, flush_s=1.0)


async def test_separate_process_group_producer_down_then_back(
    broker, sim_factory, tmp_path
) -> None:
    sim = await sim_factory(markets=10, speed=20.0, seed=5)
    lake = str(tmp_path / "lake")
    storage = open_lake(lake)
    settings = lake_settings(broker.settings, lake)
    log_file = tmp_path / "consumer.log"
    consumer = spawn_consumer(settings, log=log_file)  # own session: shares only the broker
    try:
        assert os.getpgid(consumer.pid) != os.getpgid(0)
        published = 0
        for _ in range(2):
            producer = _producer(sim, broker.settings, tmp_path / "spool")
            stop, task = await _started(producer)
            await asyncio.sleep(2.0)
            stop.set()
            published += (await task).published
            count = published
            deadline = time.monotonic() + 30
            while lake_count(storage) < count:  # the consumer keeps up, then idles
                assert time.monotonic() < deadline, f"lake has {lake_count(storage)} of {count}"
                await asyncio.sleep(0.1)
            await asyncio.sleep(3.0)  # producer down: the consumer idles, no errors
            assert consumer.poll() is None
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(30) == 0
    finally:
        if consumer.poll() is None:
            kill_group(consumer)
    text = log_file.read_text()
    assert "error" not in text.lower() and "Traceback" not in text, text
    log = await asyncio.to_thread(read_log, broker.settings, published)
    assert_exactly_once(storage, log)
    assert verify_lake(lake).ok
