"""SIGKILL the producer process (``python -m upbit_pipeline produce``) and start it again: a
consumer reading the topics meanwhile never sees an error, the restart is recorded as a
``producer_restart`` gap per stream, starting at the last record the first process had written,
and the restarted producer's in-process backfill repairs the trade gaps from REST."""

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
from tests.streaming.test_backfill import truth_ids
from upbit_pipeline.streaming.continuity import CHECKPOINT_FILE
from upbit_pipeline.streaming.gaps import GapEvent, decode_gap
from upbit_pipeline.streaming.kafka import consumer_config
from upbit_pipeline.streaming.records import FORMAT_REST, RecordHeaders
from upbit_pipeline.streaming.topics import TopicNames
from upbit_pipeline.upbit.decode import decode_frame, decode_trades_rest
from upbit_pipeline.upbit.models import Trade

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
        self.trades: set[tuple[str, int]] = set()  # (market, sequential_id), live or backfilled
        self.backfilled: set[tuple[str, int]] = set()

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
                        headers = RecordHeaders.decode(msg.headers())
                        if headers.fmt == FORMAT_REST:
                            trades = decode_trades_rest(b"[" + (msg.value() or b"") + b"]")
                            self.backfilled.update((t.code, t.sequential_id) for t in trades)
                        else:
                            self.conn_prefixes.add(headers.conn_id.rsplit("-", 2)[0])
                            trades = [
                                m for m in decode_frame(msg.value() or b"") if isinstance(m, Trade)
                            ]
                        self.trades.update((t.code, t.sequential_id) for t in trades)
        except Exception as exc:  # surfaced by the test
            self.errors.append(repr(exc))
        finally:
            consumer.close()


def start_producer(
    sim, broker, spool: Path, log: Path, *, backfill: bool
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "UPBIT_PIPELINE_PRODUCER__SPOOL_DIR": str(spool),
        "UPBIT_PIPELINE_PRODUCER__BACKFILL": "true" if backfill else "false",
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
    first = start_producer(sim, broker, spool, log, backfill=False)
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

        second = start_producer(sim, broker, spool, log, backfill=True)
        streams = {(m, c) for m in sim.markets for c in ("trade", "ticker")}
        await wait_for(
            lambda: {(g.market, g.channel) for g in reader.gaps} >= streams,
            30,
            "a producer_restart gap per stream",
        )
        await wait_for(lambda: len(reader.conn_prefixes) == 2, 10, "records from both processes")
        # The restarted producer's backfill repairs every trade gap: all ground-truth trades of
        # the gap's range end up in the log (live before the kill, live after, or backfilled).
        wanted: set[tuple[str, int]] = set()
        for gap in reader.gaps:
            if gap.channel == "trade":
                ids = await truth_ids(sim.base_url, gap.market, gap.from_ms, gap.to_ms)
                wanted.update((gap.market, i) for i in ids)
        await wait_for(lambda: wanted <= reader.trades, 60, "backfilled restart gaps")
        # KRW-BTC trades several times a simulated second: the kill did miss trades, and only
        # the backfill can have brought them.
        assert wanted & reader.backfilled
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
