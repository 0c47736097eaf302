"""Helpers for lake tests: produce real records, run the consumer (thread or separate process),
read the whole log back without watermarks, and compare it with the lake row by row."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from tests.lake import frames as f
from tests.lake.consumer_main import FAST_GROUP
from upbit_pipeline.lake import layout
from upbit_pipeline.lake.sink import ConsumerStats, LakeSink
from upbit_pipeline.lake.storage import LakeStorage, open_lake
from upbit_pipeline.settings import BrokerSettings, LakeSettings, Settings
from upbit_pipeline.streaming.broker import free_port, wait_for_port
from upbit_pipeline.streaming.kafka import consumer_config, producer_config
from upbit_pipeline.streaming.topics import CHANNELS, TopicNames

ROOT = Path(__file__).resolve().parents[2]
CHANNEL_TOPICS = [TopicNames().channel(c) for c in CHANNELS]


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    value: bytes


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def lake_settings(broker: BrokerSettings, lake: str, **options: Any) -> Settings:
    options.setdefault("flush_interval_s", 0.3)
    return Settings(
        broker=broker,
        lake=LakeSettings(path=lake, consumer_group=f"lake-{uuid.uuid4().hex}", **options),
    )


def mixed_records(
    n_trades: int, *, malformed_every: int = 0, start: int = 0
) -> list[tuple[str, bytes, bytes, int, Any]]:
    """(topic, key, value, ts, headers): trades of 12 markets plus the other channels;
    trade ``i`` (from ``start``) has sequential_id 1,000,000 + i."""
    out = []
    markets = [f"KRW-M{i:02d}" for i in range(12)]
    for i in range(start, start + n_trades):
        ts = f.T0 + i * 3
        market = markets[i % len(markets)]
        value = f.trade(market, 1_000_000 + i, ts)
        if malformed_every and i % malformed_every == malformed_every - 1:
            value = value[:40]
        out.append(("upbit.trade", market.encode(), value, ts, f.headers(ts * 1_000_000)))
        if i % 4 == 0:
            out.append(("upbit.ticker", market.encode(), f.ticker(ts), ts, f.headers(ts)))
        if i % 5 == 0:
            out.append(("upbit.orderbook", market.encode(), f.orderbook(ts), ts, f.headers(ts)))
        if i % 50 == 0:
            out.append(("upbit.candle", market.encode(), f.candle(ts), ts, f.headers(ts)))
    return out


def produce(broker: BrokerSettings, records: list[tuple[str, bytes, bytes, int, Any]]) -> None:
    producer = Producer(producer_config(broker))
    for topic, key, value, ts, headers in records:
        while True:
            try:
                producer.produce(topic, value, key, timestamp=ts, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(30) == 0


def read_log(broker: BrokerSettings, count: int, timeout_s: float = 30.0) -> list[Rec]:
    """Every record of the channel topics from offset 0 until ``count`` are read (no watermarks)."""
    consumer = Consumer(consumer_config(broker, f"reader-{uuid.uuid4().hex}"))
    try:
        meta = consumer.list_topics(timeout=10)
        consumer.assign(
            [
                TopicPartition(t, p, OFFSET_BEGINNING)
                for t in CHANNEL_TOPICS
                for p in meta.topics[t].partitions
            ]
        )
        out: list[Rec] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < count:
            assert time.monotonic() < deadline, f"read {len(out)} of {count} records"
            for msg in consumer.consume(5000, timeout=0.2):
                assert msg.error() is None, msg.error()
                out.append(
                    Rec(
                        msg.topic() or "",
                        msg.partition() or 0,
                        msg.offset() or 0,
                        msg.value() or b"",
                    )
                )
        return out
    finally:
        consumer.close()


def lake_records(storage: LakeStorage) -> list[Rec]:
    """(topic, partition, offset, raw) of every row and dead letter (LIST items once)."""
    out: list[Rec] = []
    paths = [p for area in (layout.RAW, layout.DEADLETTER) for p in storage.find(area)]
    paths = [p for p in paths if layout.parse_file_name(p) is not None]
    for path, data in storage.read_many(paths).items():
        table = pq.read_table(
            pa.BufferReader(data),
            columns=["kafka_topic", "kafka_partition", "kafka_offset", "raw"]
            + (["frame_item"] if path.startswith(layout.RAW) else []),
        )
        for row in table.to_pylist():
            if row.get("frame_item", 0) == 0:
                out.append(
                    Rec(row["kafka_topic"], row["kafka_partition"], row["kafka_offset"], row["raw"])
                )
    return out


def assert_exactly_once(storage: LakeStorage, log: list[Rec]) -> None:
    lake = lake_records(storage)
    keys = [(r.topic, r.partition, r.offset) for r in lake]
    dupes = len(keys) - len(set(keys))
    assert dupes == 0, f"{dupes} records are in the lake more than once"
    want = {(r.topic, r.partition, r.offset): r.value for r in log}
    have = {(r.topic, r.partition, r.offset): r.value for r in lake}
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    assert not missing, f"{len(missing)} records missing from the lake, e.g. {missing[:5]}"
    assert not extra, f"{len(extra)} lake rows not in the log, e.g. {extra[:5]}"
    assert have == want, "raw bytes differ"


def lake_count(storage: LakeStorage) -> int:
    with contextlib.suppress(Exception):
        return len(lake_records(storage))
    return -1


@contextlib.contextmanager
def consumer_thread(settings: Settings, storage: LakeStorage | None = None) -> Iterator[LakeSink]:
    """The sink in a thread of this process, stopped (and its errors raised) on exit."""
    sink = LakeSink(settings, storage=storage, kafka_overrides=FAST_GROUP)
    stop = threading.Event()
    result: list[ConsumerStats | BaseException] = []

    def run() -> None:
        try:
            result.append(sink.run(stop))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run, name="lake-sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "consumer did not stop"
        if result and isinstance(result[0], BaseException):
            raise result[0]


def committed(broker: BrokerSettings, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets of every channel-topic partition (-1001: none)."""
    consumer = Consumer(consumer_config(broker, group))
    try:
        meta = consumer.list_topics(timeout=10)
        tps = [TopicPartition(t, p) for t in CHANNEL_TOPICS for p in meta.topics[t].partitions]
        return {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(tps, timeout=10)}
    finally:
        consumer.close()


def drain(
    settings: Settings, storage: LakeStorage, log: list[Rec], timeout_s: float = 60.0
) -> ConsumerStats:
    """Run a consumer until it has committed every record of ``log``; return its stats."""
    ends: dict[tuple[str, int], int] = {}
    for r in log:
        ends[(r.topic, r.partition)] = max(ends.get((r.topic, r.partition), 0), r.offset + 1)

    def done() -> bool:
        have = committed(settings.broker, settings.lake.consumer_group)
        return all(have.get(key, -1) >= end for key, end in ends.items())

    with consumer_thread(settings, storage) as sink:
        wait_until(done, timeout_s, f"{len(log)} records committed")
    return sink.stats


def spawn_consumer(
    settings: Settings, crash: str | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """The consumer as its own process in its own process group (``start_new_session``)."""
    config = {
        "broker": {"bootstrap_servers": settings.broker.bootstrap_servers},
        "lake": settings.lake.model_dump(mode="json"),
        "crash": crash,
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "tests.lake.consumer_main", json.dumps(config)],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=out,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def open_local(path: Path) -> LakeStorage:
    return open_lake(str(path))


@pytest.fixture
def gcs_lake(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A gs:// lake on gcp-storage-emulator (in-memory, its own process), stopped at teardown."""
    port = free_port()
    binary = Path(sys.executable).with_name("gcp-storage-emulator")
    proc = subprocess.Popen(
        [str(binary), "start", "-H", "127.0.0.1", "--port", str(port), "-M", "-q",
         "--default-bucket", "lake"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port("127.0.0.1", port, 20)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        yield "gs://lake/upbit"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3_lake(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An s3:// lake on moto's ThreadedMotoServer (in-process), bucket created."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        }.items():
            monkeypatch.setenv(name, value)
        bucket = f"lake-{uuid.uuid4().hex[:12]}"  # moto's state outlives one server in-process
        open_lake(f"s3://{bucket}").fs.mkdir(bucket)
        yield f"s3://{bucket}/upbit"
    finally:
        server.stop()
