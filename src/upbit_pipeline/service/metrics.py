"""Prometheus metrics of the long-running services, defined in one place.

Why collectors and not counters sprinkled through the code: every service already keeps live
stats objects (``ProducerStats``, ``ConsumerStats``, ``WorkerStats``, ``BackfillStats``). A
custom collector reads them when Prometheus scrapes, so the per-frame hot path stays exactly as
it was and the numbers in ``/metrics``, the logs and the final stats line can never disagree.

The collectors only know the *shape* of those objects (the Protocols below): this package is a
foundation module and may not import the services that use it (``tests/test_layers.py``).

Every metric name is listed in docs/operations.md (Metrics). ``_total`` counters are per process
run: they restart at 0 with the process, which Prometheus' ``rate()`` handles.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Protocol

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

__all__ = [
    "AlertCollector",
    "BackfillCollector",
    "ConsumerCollector",
    "MetricsServer",
    "ProducerCollector",
    "serve_metrics",
]

log = logging.getLogger(__name__)


# -- the shapes of the stats objects ------------------------------------------------------------


class ProducerStatsLike(Protocol):
    frames_in: dict[str, int]
    frames_total: int
    published: int
    delivered: int
    failed: int
    deadlettered: int
    deduped: int
    spooled: int
    spool_bytes: int
    spool_dropped: int
    replayed: int
    gaps_by_reason: dict[str, int]
    reconnects: int
    inflight: int
    markets: int


class BackfillStatsLike(Protocol):
    gaps_seen: int
    gaps_repaired: int
    gaps_truncated: int
    gaps_unrecoverable: int
    gaps_skipped: int
    trades_published: int
    rest_requests: int
    retries: int


class DeliveryStatsLike(Protocol):
    submitted: int
    delivered: int
    undelivered: int
    retries: int

    @property
    def pending(self) -> int: ...


class AlertStatsLike(Protocol):
    records: int
    decode_errors: int
    alerts: int
    lake_files: int

    @property
    def delivery(self) -> DeliveryStatsLike: ...

    def percentile(self, q: float) -> float: ...


class ConsumerStatsLike(Protocol):
    records: int
    rows: dict[str, int]
    deadlettered: int
    files: int
    bytes_written: int
    commits: int
    leftovers_removed: int
    assignments: int
    errors: int


# -- collectors ---------------------------------------------------------------------------------


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _labelled_counter(
    name: str, doc: str, label: str, values: Mapping[str, float]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _event_times(name: str, doc: str, last_ms: Mapping[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["channel"])
    for channel, ms in sorted(last_ms.items()):
        family.add_metric([channel], ms / 1000.0)
    return family


class ProducerCollector(Collector):
    """``upbit_producer_*`` from ``Producer.stats()`` and the last event time per channel."""

    def __init__(
        self,
        stats: Callable[[], ProducerStatsLike],
        last_event_ms: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._stats = stats
        self._last_event_ms = last_event_ms

    def collect(self) -> Iterable[Metric]:
        s = self._stats()
        p = "upbit_producer"
        yield _labelled_counter(
            f"{p}_frames_in", "Decoded frames read from Upbit, per channel.", "channel",
            s.frames_in,
        )  # fmt: skip
        yield _counter(f"{p}_frames_read", "Every frame read from the sockets.", s.frames_total)
        yield _counter(
            f"{p}_records_published", "Records handed to the broker or the spool.", s.published
        )
        yield _counter(f"{p}_records_delivered", "Broker acknowledgements.", s.delivered)
        yield _counter(f"{p}_records_failed", "Permanent delivery failures.", s.failed)
        yield _counter(f"{p}_deadlettered", "Frames that did not decode.", s.deadlettered)
        yield _counter(f"{p}_deduped", "Repeated trades not republished.", s.deduped)
        yield _counter(f"{p}_reconnects", "WebSocket reconnects.", s.reconnects)
        yield _labelled_counter(
            f"{p}_gaps", "Gap events emitted, per reason.", "reason", s.gaps_by_reason
        )
        yield _gauge(f"{p}_spool_bytes", "Bytes in the disk spool now.", s.spool_bytes)
        yield _counter(f"{p}_spooled", "Records written to the spool.", s.spooled)
        yield _counter(f"{p}_spool_dropped", "Frames refused by a full spool.", s.spool_dropped)
        yield _counter(f"{p}_replayed", "Spooled records replayed to the broker.", s.replayed)
        yield _gauge(f"{p}_inflight", "Records handed to librdkafka, not yet acknowledged.",
                     s.inflight)  # fmt: skip
        yield _gauge(f"{p}_markets", "Markets subscribed.", s.markets)
        if self._last_event_ms is not None:
            yield _event_times(
                f"{p}_last_event_timestamp_seconds",
                "Exchange time of the newest record acknowledged or spooled, per channel.",
                self._last_event_ms(),
            )


class BackfillCollector(Collector):
    """``upbit_backfill_*`` from ``BackfillWorker.stats``."""

    def __init__(self, stats: Callable[[], BackfillStatsLike]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        s = self._stats()
        p = "upbit_backfill"
        yield _counter(f"{p}_gaps_seen", "Gap events read.", s.gaps_seen)
        yield _counter(f"{p}_gaps_repaired", "Gap events fully repaired.", s.gaps_repaired)
        yield _counter(
            f"{p}_gaps_truncated", "Gaps repaired except beyond 7 days.", s.gaps_truncated
        )
        yield _counter(
            f"{p}_gaps_unrecoverable", "Gaps that cannot be repaired.", s.gaps_unrecoverable
        )
        yield _counter(f"{p}_gaps_skipped", "Non-trade or unreadable gap events.", s.gaps_skipped)
        yield _counter(f"{p}_trades_published", "Trades repaired over REST.", s.trades_published)
        yield _counter(f"{p}_rest_requests", "REST requests made.", s.rest_requests)
        yield _counter(f"{p}_retries", "Retries after transient errors.", s.retries)


class AlertCollector(Collector):
    """``upbit_alerts_*`` from ``AlertWorker.stats`` (raised, delivered, undelivered, latency)."""

    def __init__(self, stats: Callable[[], AlertStatsLike]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        s = self._stats()
        d = s.delivery
        p = "upbit_alerts"
        yield _counter(f"{p}_records", "Trade and ticker records decided on.", s.records)
        yield _counter(f"{p}_decode_errors", "Records that did not decode.", s.decode_errors)
        yield _counter(f"{p}_raised", "Alerts raised.", s.alerts)
        yield _counter(f"{p}_delivered", "Alerts delivered to Slack.", d.delivered)
        yield _counter(f"{p}_undelivered", "Alerts given up on (Slack).", d.undelivered)
        yield _gauge(f"{p}_pending", "Alerts waiting for Slack.", d.pending)
        yield _counter(f"{p}_slack_retries", "Slack retries.", d.retries)
        yield _counter(f"{p}_lake_files", "Alert files written to the lake.", s.lake_files)
        latency = GaugeMetricFamily(
            f"{p}_decision_latency_ms", "Receive-to-decision latency over recent records.",
            labels=["quantile"],
        )  # fmt: skip
        for q in (0.5, 0.99):
            latency.add_metric([str(q)], s.percentile(q))
        yield latency


class ConsumerCollector(Collector):
    """``upbit_lake_*`` from ``LakeSink.stats`` plus the next offset of each owned partition."""

    def __init__(
        self,
        stats: Callable[[], ConsumerStatsLike],
        positions: Callable[[], Mapping[tuple[str, int], int]] | None = None,
    ) -> None:
        self._stats = stats
        self._positions = positions

    def collect(self) -> Iterable[Metric]:
        s = self._stats()
        p = "upbit_lake"
        yield _counter(f"{p}_records", "Records consumed.", s.records)
        yield _labelled_counter(f"{p}_rows", "Rows written, per channel.", "channel", s.rows)
        yield _counter(f"{p}_deadlettered", "Records written to the dead letter.", s.deadlettered)
        yield _counter(f"{p}_files_written", "Lake files written.", s.files)
        yield _counter(f"{p}_bytes_written", "Bytes of lake files written.", s.bytes_written)
        yield _counter(f"{p}_commits", "Offset commits after durable writes.", s.commits)
        yield _counter(f"{p}_leftovers_removed", "Uncommitted files removed.", s.leftovers_removed)
        yield _counter(f"{p}_assignments", "Partition assignments.", s.assignments)
        yield _counter(f"{p}_client_errors", "Broker/transport errors.", s.errors)
        if self._positions is not None:
            family = GaugeMetricFamily(
                f"{p}_position", "Next offset to consume, per owned partition.",
                labels=["topic", "partition"],
            )  # fmt: skip
            for (topic, partition), offset in sorted(dict(self._positions()).items()):
                family.add_metric([topic, str(partition)], offset)
            yield family


# -- the HTTP endpoint --------------------------------------------------------------------------


class MetricsServer:
    """A running ``/metrics`` endpoint and the collectors it registered; ``close()`` undoes both."""

    def __init__(self, registry: CollectorRegistry, collectors: list[Collector]) -> None:
        self.registry = registry
        self.collectors = collectors
        self.port: int | None = None
        self._server: object | None = None
        self._thread: threading.Thread | None = None

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]
        for collector in self.collectors:
            with contextlib.suppress(KeyError):
                self.registry.unregister(collector)
        self.collectors = []


@contextlib.contextmanager
def serve_metrics(
    port: int | None,
    *collectors: Collector,
    addr: str = "0.0.0.0",  # scraped from the monitoring host: firewall the port
    registry: CollectorRegistry = REGISTRY,
) -> Iterator[MetricsServer]:
    """Register ``collectors`` and serve ``/metrics`` on ``port`` for the ``with`` block.

    ``port=None`` (the default setting) serves nothing and registers nothing: the service runs
    exactly as before. ``port=0`` picks a free port (see ``MetricsServer.port``). The collectors
    are unregistered on exit, so a service can run twice in one process (tests) without
    "Duplicated timeseries" errors.
    """
    server = MetricsServer(registry, [])
    try:
        if port is not None:
            for collector in collectors:
                registry.register(collector)
                server.collectors.append(collector)
            httpd, thread = start_http_server(port, addr=addr, registry=registry)
            server._server, server._thread = httpd, thread
            server.port = int(httpd.server_port)
            log.info("metrics on http://%s:%d/metrics", addr, server.port)
        yield server
    finally:
        server.close()
