"""What the demo dashboard shows, read the way an operator would: from the broker and the lake.

Nothing here asks the services themselves: records per channel are the topics' high watermarks,
consumer progress is the lake group's committed offsets, files are what is in the lake folder,
alerts are the lines of the alert log. So the dashboard shows what really landed.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition

from upbit_pipeline.alerts.model import Alert
from upbit_pipeline.alerts.sinks import read_jsonl
from upbit_pipeline.settings import Settings
from upbit_pipeline.streaming.kafka import consumer_config
from upbit_pipeline.streaming.topics import CHANNELS, TopicNames

__all__ = ["Monitor", "Snapshot"]

_RATE_WINDOW_S = 5.0  # records/s are averaged over this many seconds of snapshots


@dataclass(frozen=True)
class Snapshot:
    """One look at the pipeline. Counts are records since the demo's broker started."""

    elapsed_s: float
    records: dict[str, int]  # channel -> records in its topic
    rates: dict[str, float]  # channel -> records/s over the last few seconds
    gaps: int
    deadletter: int
    lake_committed: int  # records of the channel topics the lake consumer committed
    files: int  # Parquet files of the streamed channels in the lake
    file_bytes: int
    alerts: list[Alert] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.records.values())

    @property
    def lake_lag(self) -> int:
        return max(0, self.total - self.lake_committed)


class Monitor:
    """Takes :class:`Snapshot` s; owns two never-committing Kafka clients (close it)."""

    def __init__(self, settings: Settings, lake_dir: Path, alerts_file: Path) -> None:
        self._topics = TopicNames.of(settings.broker)
        self._partitions = settings.broker.partitions
        self._lake_dir = lake_dir
        self._alerts_file = alerts_file
        probe_group = f"upbit-pipeline-demo-{uuid.uuid4().hex[:12]}"
        self._reader = Consumer(consumer_config(settings.broker, probe_group))
        # Same group id as the lake consumer, never subscribed: it only reads that group's commits.
        self._commits = Consumer(consumer_config(settings.broker, settings.lake.consumer_group))
        self._started = time.monotonic()
        self._history: deque[tuple[float, dict[str, int]]] = deque()

    def close(self) -> None:
        self._reader.close()
        self._commits.close()

    def _end_offset(self, topic: str) -> int:
        total = 0
        for partition in range(self._partitions):
            _, high = self._reader.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=2.0, cached=False
            )
            total += max(0, high)
        return total

    def _committed(self) -> int:
        parts = [
            TopicPartition(self._topics.channel(c), p)
            for c in CHANNELS
            for p in range(self._partitions)
        ]
        return sum(max(0, tp.offset) for tp in self._commits.committed(parts, timeout=2.0))

    def _lake_files(self) -> tuple[int, int]:
        raw = self._lake_dir / "raw"
        files = [raw / c for c in CHANNELS]
        found = [p for folder in files if folder.is_dir() for p in folder.rglob("*.parquet")]
        return len(found), sum(p.stat().st_size for p in found if p.exists())

    def snapshot(self) -> Snapshot:
        now = time.monotonic()
        try:
            records = {c: self._end_offset(self._topics.channel(c)) for c in CHANNELS}
            gaps = self._end_offset(self._topics.gaps)
            deadletter = self._end_offset(self._topics.deadletter)
            committed = self._committed()
        except KafkaException:  # a broker hiccup: show the previous numbers, try again later
            records = self._history[-1][1] if self._history else dict.fromkeys(CHANNELS, 0)
            gaps = deadletter = committed = 0
        self._history.append((now, records))
        while len(self._history) > 2 and now - self._history[0][0] > _RATE_WINDOW_S:
            self._history.popleft()
        first_at, first = self._history[0]
        span = now - first_at
        rates = {c: (records[c] - first[c]) / span if span > 0 else 0.0 for c in CHANNELS}
        files, size = self._lake_files()
        alerts, _ = read_jsonl(self._alerts_file)
        return Snapshot(
            elapsed_s=now - self._started,
            records=records,
            rates=rates,
            gaps=gaps,
            deadletter=deadletter,
            lake_committed=committed,
            files=files,
            file_bytes=size,
            alerts=alerts,
        )
