"""SIGKILL the producer process (``python -m upbit_pipeline produce``) and start it again: a
consumer reading the topics meanwhile never sees an error, and the restart is recorded as a
``producer_restart`` gap per stream, starting at the last record the first process had written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from tests.streaming.conftest import wait_for
from upbit_pipeline.streaming.continuity import CHECKPOINT_FILE
from upbit_pipeline.streaming.gaps import GapEvent, decode_gap
from upbit_pipeline.streaming.kafka import consumer_config
from upbit_pipeline.streaming.records import RecordHeaders
from upbit_pipeline.streaming.topics import TopicNames

pytestmark = pytest.mark.integration

TOPICS = TopicNames()


class Reader(threading.Thread):
    """A group consumer on every data topic + gaps, running the whole time; records errors."""

    def __init__(self, broker) -> None:
        super().__init__(daemon=True)
        self.config = consumer_config(broker, f"reader-{uuid.uuid4().hex}")
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}
        self.conn_prefixes: set[str] = set()
        self.gaps: list[GapEvent] = []

    def run(self) -> None:
        consumer = Consumer(self.config)
        consumer.subscribe([TOPICS.channel("trade"), TOPICS.channel("ticker"), TOPICS.gaps])
        try:
            while not self.stop.is_set():
                for msg in consumer.consume(500, timeout=0.1):
                    if msg.error() is not None:
                        self.errors.append(str(msg.error()))
                        continue
                    topic = msg.topic() or ""
                    self.counts[topic] = self.counts.get(topic, 0) + 1
                    if topic == TOPICS.gaps:
                        self.gaps.append(decode_gap(msg.value() or b""))
                    else:
                        conn = RecordHeaders.decode(msg.headers()).conn_id
                        self.conn_prefixes.add(conn.rsplit("-", 2)[0])
        except Exception as exc:  # surfaced by the test
            self.errors.append(repr(exc))
        finally:
            consumer.close()


def start_producer(sim, broker, spool: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "UPBIT_PIPELINE_PRODUCER__SPOOL_DIR": str(spool),
        "UPBIT_PIPELINE_PRODUCER__BACKFILL": "false",
    }
    command = [
        sys.executable, "-m", "upbit_pipeline", "--log-format", "text", "produce",
        "--upbit-url", sim.base_url,
        "--bootstrap-servers", broker.bootstrap_servers,
        "--markets", ",".join(sim.markets),
        "--channels", "trade,ticker",
    ]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def checkpointed(spool: Path) -> dict[str, dict[str, int]]:
    try:
        data: dict[str, dict[str, int]] = json.loads((spool / CHECKPOINT_FILE).read_text())[
            "last_ms"
        ]
        return data
    except (FileNotFoundError, ValueError, KeyError):
        return {}


async def test_sigkill_and_restart_records_producer_restart_gaps(
    sim_factory, broker, tmp_path: Path
) -> None:
    sim = await sim_factory(markets=3, speed=5.0)
    spool, log = tmp_path / "spool", tmp_path / "producer.log"
    reader = Reader(broker.settings)
    reader.start()
    first = start_producer(sim, broker, spool, log)
    second = None
    try:
        await wait_for(
            lambda: all(
                set(checkpointed(spool).get(m, {})) == {"trade", "ticker"} for m in sim.markets
            ),
            30,
            "a checkpoint covering every stream",
        )
        await wait_for(lambda: reader.counts.get(TOPICS.channel("trade"), 0) >= 20, 20, "trades")
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        killed_at = time.time()
        before = checkpointed(spool)

        second = start_producer(sim, broker, spool, log)
        streams = {(m, c) for m in sim.markets for c in ("trade", "ticker")}
        await wait_for(
            lambda: {(g.market, g.channel) for g in reader.gaps} >= streams,
            30,
            "a producer_restart gap per stream",
        )
        await wait_for(lambda: len(reader.conn_prefixes) == 2, 10, "records from both processes")
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, log.read_text()[-3000:]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.stop.set()
        reader.join(10)
    assert reader.errors == []
    assert not reader.is_alive()
    gaps = {(g.market, g.channel): g for g in reader.gaps}
    assert len(reader.gaps) == len(streams)  # exactly one per stream
    for (market, channel), gap in gaps.items():
        assert gap.reason == "producer_restart"
        assert gap.from_ms == before[market][channel]  # the last record written before the kill
        assert gap.from_ms <= gap.to_ms
        assert gap.detected_ns / 1e9 >= killed_at
    text = log.read_text()
    assert "Traceback" not in text
