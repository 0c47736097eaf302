"""service.metrics: collectors read the services' live stats objects at scrape time."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from prometheus_client import CollectorRegistry

from upbit_pipeline.alerts.worker import WorkerStats
from upbit_pipeline.lake.sink import ConsumerStats
from upbit_pipeline.service import (
    AlertCollector,
    ConsumerCollector,
    ProducerCollector,
    serve_metrics,
)
from upbit_pipeline.streaming.producer import ProducerStats


@dataclass
class Holder:
    producer: ProducerStats = field(default_factory=ProducerStats)


def test_endpoint_serves_live_values_and_unregisters() -> None:
    registry = CollectorRegistry()
    held = Holder()
    held.producer.frames_in = {"trade": 3}
    held.producer.gaps_by_reason = {"reconnect": 2}
    consumer = ConsumerStats(records=7, files=2, rows={"trade": 5})
    alerts = WorkerStats(records=9, alerts=1)
    alerts.delivery.delivered = 1
    with serve_metrics(
        0,
        ProducerCollector(lambda: held.producer, lambda: {"trade": 1_700_000_000_000}),
        ConsumerCollector(lambda: consumer, lambda: {("upbit.trade", 0): 42}),
        AlertCollector(lambda: alerts),
        addr="127.0.0.1",
        registry=registry,
    ) as server:
        assert server.port
        url = f"http://127.0.0.1:{server.port}/metrics"
        text = httpx.get(url).text
        assert 'upbit_producer_frames_in_total{channel="trade"} 3.0' in text
        assert 'upbit_producer_gaps_total{reason="reconnect"} 2.0' in text
        assert 'upbit_producer_last_event_timestamp_seconds{channel="trade"} 1.7e+09' in text
        assert 'upbit_lake_position{partition="0",topic="upbit.trade"} 42.0' in text
        assert "upbit_lake_files_written_total 2.0" in text
        assert "upbit_alerts_delivered_total 1.0" in text
        held.producer.frames_in = {"trade": 5}  # read at scrape time: no increments anywhere
        assert 'upbit_producer_frames_in_total{channel="trade"} 5.0' in httpx.get(url).text
    assert list(registry.collect()) == []


def test_no_port_serves_and_registers_nothing() -> None:
    registry = CollectorRegistry()
    with serve_metrics(None, AlertCollector(WorkerStats), registry=registry) as server:
        assert server.port is None
        assert list(registry.collect()) == []
