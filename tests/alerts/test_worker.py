"""The alert worker end to end: simulator WebSocket -> real broker -> worker -> topic, lake, Slack.

The simulator plants a +5 % pump on KRW-BTC and a x60 KRW volume minute on KRW-ETH; the worker,
warmed from the simulator's REST candles, must alert on each within 1 s (processing time) of
receiving the trade that completes it, write the alerts to ``upbit.alerts``, the lake and the
JSONL log, and deliver them to a local Slack-compatible receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from pydantic import SecretStr

from tests.fixtures.simulator import SimFactory
from tests.fixtures.slack import SlackReceiver
from upbit_pipeline.alerts.model import decode_alert
from upbit_pipeline.alerts.sinks import read_jsonl, read_lake_alerts
from upbit_pipeline.alerts.worker import AlertWorker
from upbit_pipeline.settings import AlertSettings, LakeSettings, Settings, UpbitSettings
from upbit_pipeline.streaming.broker import EmbeddedBroker
from upbit_pipeline.streaming.kafka import consumer_config, producer_config
from upbit_pipeline.streaming.records import RecordHeaders
from upbit_pipeline.streaming.topics import TopicNames
from upbit_pipeline.upbit.decode import channel_of, decode_frame
from upbit_pipeline.upbit.models import Trade
from upbit_pipeline.upbit.simulator import Anomaly, Scenario
from upbit_pipeline.upbit.ws.client import UpbitWebSocket

pytestmark = pytest.mark.integration

SPEED = 3.0


async def _feed(ws_url: str, codes: list[str], settings: Settings) -> None:
    """A minimal producer following the record contract (the real one is streaming.producer).

    Runs until cancelled.
    """
    topics = TopicNames.of(settings.broker)
    producer = Producer(producer_config(settings.broker, linger_ms=0))
    try:
        async with UpbitWebSocket(ws_url, ["trade", "ticker"], codes) as ws:
            async for frame in ws.frames():
                for msg in decode_frame(frame.data):
                    channel = channel_of(msg)
                    stamp = msg.trade_timestamp if isinstance(msg, Trade) else msg.timestamp  # type: ignore[union-attr]
                    producer.produce(
                        topics.channel(channel),
                        key=msg.code,  # type: ignore[union-attr]
                        value=frame.data,
                        timestamp=stamp,
                        headers=RecordHeaders(frame.received_ns, frame.conn_id, "SIMPLE").encode(),
                    )
                producer.poll(0)
    finally:
        producer.flush(5)


async def test_worker_alerts_within_a_second_and_writes_topic_lake_log_and_slack(
    sim_factory: SimFactory, broker: EmbeddedBroker, slack_receiver: SlackReceiver, tmp_path: Path
) -> None:
    now_ms = int(time.time() * 1000)
    # Anomalies on the first simulated minute boundary at least 120 simulated seconds away: the
    # worker's group join and REST warm-up (slow on a loaded CI machine) must end, and the feed
    # must start, before the anomaly minute begins, or the worker sees only part of it.
    boundary = (now_ms + 120_000) // 60_000 * 60_000 + 60_000
    offset_s = (boundary - now_ms) / 1000
    # KRW x60 of that minute's own volume (the simulator scales KRW by (1+size)**1.5). The rule
    # compares with the *median* of the previous hour, and a simulated minute can be a third of
    # that median, so x20 of a quiet minute may stay under the 10x threshold: x60 never does.
    size = 60 ** (2 / 3) - 1
    scenario = Scenario(
        anomalies=(
            Anomaly("pump", "KRW-BTC", offset_s, 60.0, 0.05),
            Anomaly("volume_spike", "KRW-ETH", offset_s, 60.0, size),
        )
    )
    sim = await sim_factory(markets=3, seed=3, speed=SPEED, start_ms=now_ms, scenario=scenario)
    settings = Settings(
        upbit=UpbitSettings(url=sim.base_url),
        broker=broker.settings,
        lake=LakeSettings(path=str(tmp_path / "lake")),
        alerts=AlertSettings(
            console=False,
            jsonl_path=tmp_path / "alerts.jsonl",
            slack_webhook=SecretStr(slack_receiver.url),
        ),
    )
    worker = AlertWorker(settings, delivery_options={"interval_s": 0.2})
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    deadline = time.monotonic() + 30
    while not worker.stats.assigned:
        assert time.monotonic() < deadline and not task.done(), "worker never joined its group"
        await asyncio.sleep(0.05)
    assert worker.stats.warmup_source == "REST candles"
    assert worker.stats.warmup_events > 3 * 150 * 4  # ~200 candles x 4 points x 3 markets
    feeder = asyncio.create_task(_feed(sim.ws_url, sim.markets, settings))
    lead_ms = boundary - sim.now_ms()
    assert lead_ms > 15_000, f"warm-up ended only {lead_ms} ms before the anomaly minute"
    try:
        deadline = time.monotonic() + (offset_s + 60) / SPEED + 15
        wanted = {("KRW-BTC", "price_move"), ("KRW-ETH", "volume_spike")}
        while not wanted <= {(a.market, a.rule) for a in read_jsonl(settings.alerts.jsonl_path)[0]}:
            assert time.monotonic() < deadline, read_jsonl(settings.alerts.jsonl_path)[0]
            assert not task.done() and not feeder.done()
            await asyncio.sleep(0.1)
        deadline = time.monotonic() + 10
        while worker.stats.delivery.pending or not worker.stats.delivery.delivered:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        stop.set()
        stats = await task

    alerts, marks = read_jsonl(settings.alerts.jsonl_path)
    pump = next(a for a in alerts if (a.market, a.rule) == ("KRW-BTC", "price_move"))
    spike = next(a for a in alerts if (a.market, a.rule) == ("KRW-ETH", "volume_spike"))
    assert pump.direction == "up"
    for alert in (pump, spike):
        assert boundary <= alert.event_ms < boundary + 60_000  # inside the anomaly minute
    assert stats.alert_latency_ms and max(stats.alert_latency_ms) < 1000.0
    assert stats.percentile(0.99) < 1000.0
    # Topic and lake hold the same alerts.
    consumer = Consumer(consumer_config(broker.settings, "check-alerts"))
    consumer.subscribe([TopicNames.of(broker.settings).alerts])
    on_topic: set[str] = set()
    deadline = time.monotonic() + 15
    while len(on_topic) < len(alerts) and time.monotonic() < deadline:
        for message in consumer.consume(100, 0.2):
            if message.error() is None:
                on_topic.add(decode_alert(message.value() or b"").id)
    consumer.close()
    assert on_topic == {a.id for a in alerts}
    in_lake = read_lake_alerts(settings.lake.path, boundary - 86_400_000, boundary + 86_400_000)
    assert {a.id for a in in_lake} == {a.id for a in alerts}
    # Slack has them, each marked delivered.
    assert slack_receiver.posts
    assert {marks[a.id].status for a in alerts} == {"delivered"}
