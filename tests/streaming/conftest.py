"""Helpers for producer tests: settings for a simulator + broker pair, a producer running in the
test's event loop, and a plain confluent-kafka reader of whole topics (no mocks of either side).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from upbit_pipeline.settings import BrokerSettings, ProducerSettings, Settings, UpbitSettings
from upbit_pipeline.streaming.kafka import consumer_config
from upbit_pipeline.streaming.producer import Producer
from upbit_pipeline.streaming.publisher import PublisherTuning
from upbit_pipeline.upbit.ws import SessionConfig, WsConfig

FAST_WS = WsConfig(
    session=SessionConfig(keepalive_s=0.5, ping_timeout_s=2.0, silence_timeout_s=5.0),
    backoff_base_s=0.05,
    backoff_max_s=0.5,
)
FAST_TUNING = PublisherTuning(stall_s=0.5, flush_timeout_s=5.0)


def make_settings(sim: Any, broker: BrokerSettings, spool_dir: Path, **producer: Any) -> Settings:
    options: dict[str, Any] = {
        "markets": ",".join(sim.markets),
        "spool_dir": spool_dir,
        "backfill": False,
        "linger_ms": 5,
    }
    options.update(producer)
    return Settings(
        upbit=UpbitSettings(url=sim.base_url),
        broker=broker,
        producer=ProducerSettings(**options),
    )


async def wait_for(
    condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.02
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def running(producer: Producer) -> AsyncIterator[Producer]:
    """Run ``producer`` as a task; stop it cleanly (and surface its errors) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop))
    try:
        await wait_for(lambda: producer.started.is_set() or task.done(), 15, "producer start")
        if task.done():
            task.result()
        yield producer
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task


async def fault(sim: Any, name: str, **params: float) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url) as admin:
        response = await admin.post(f"/_sim/faults/{name}", params=params)
        response.raise_for_status()


async def truth_trades(sim: Any, market: str, from_ms: int, to_ms: int) -> list[int]:
    async with httpx.AsyncClient(base_url=sim.base_url) as admin:
        response = await admin.get(
            "/_sim/truth/trades", params={"market": market, "from_ms": from_ms, "to_ms": to_ms}
        )
        response.raise_for_status()
        ids: list[int] = response.json()["sequential_ids"]
        return ids


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: list[tuple[str, bytes | None]]


def read_topics(
    broker: BrokerSettings,
    topics: list[str],
    *,
    done: Callable[[list[Rec]], bool],
    timeout_s: float = 20.0,
) -> list[Rec]:
    """Read ``topics`` from the beginning until ``done(records)``; never uses watermarks.

    Raises AssertionError on timeout and on any consumer error.
    """
    consumer = Consumer(consumer_config(broker, f"test-{uuid.uuid4().hex}"))
    try:
        metadata = consumer.list_topics(timeout=10)
        assignment = [
            TopicPartition(topic, p, OFFSET_BEGINNING)
            for topic in topics
            for p in metadata.topics[topic].partitions
        ]
        consumer.assign(assignment)
        records: list[Rec] = []
        deadline = time.monotonic() + timeout_s
        while not done(records):
            if time.monotonic() > deadline:
                raise AssertionError(f"read {len(records)} records; condition not met in time")
            for msg in consumer.consume(1000, timeout=0.2):
                if msg.error() is not None:
                    raise AssertionError(f"consumer error: {msg.error()}")
                records.append(
                    Rec(
                        msg.topic() or "",
                        msg.partition() or 0,
                        msg.offset() or 0,
                        msg.key(),
                        msg.value() or b"",
                        msg.timestamp()[1],
                        list(msg.headers() or []),
                    )
                )
        return records
    finally:
        consumer.close()
