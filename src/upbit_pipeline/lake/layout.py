"""Lake layout: the one place that knows paths and file names.

Everything under the lake root (a local folder, ``gs://bucket/prefix`` or ``s3://bucket/prefix``)::

    raw/{channel}/date=YYYY-MM-DD/hour=HH/{topic}+{partition}+{first_offset:020d}.parquet
    deadletter/{channel}/date=YYYY-MM-DD/hour=HH/{topic}+{partition}+{first_offset:020d}.parquet
    _state/pending/{topic}+{partition}.json     (the sink's intent record, see sink.py)
    alerts/...  reports/...                      (later layers)

Date and hour are the **UTC event time** of the records (exchange time, not the consumer's
clock), so Upbit's trading day (00:00 UTC = 09:00 KST) is exactly one ``date=`` folder. The file
name is a pure function of (topic, partition, first offset): a rewrite of the same range lands on
the same name and replaces the object instead of adding one. The offset is zero-padded to 20
digits so that lexical order is offset order.

Paths here are *relative* to the lake root (``/``-separated); :mod:`storage` joins them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

__all__ = [
    "ALERTS",
    "DEADLETTER",
    "HOUR_MS",
    "RAW",
    "REPORTS",
    "FileKey",
    "date_dir",
    "file_name",
    "hour_of_ms",
    "parse_file_name",
    "partition_dir",
    "pending_path",
    "temp_name",
    "unit_path",
]

RAW: Final = "raw"
DEADLETTER: Final = "deadletter"
ALERTS: Final = "alerts"
REPORTS: Final = "reports"
STATE: Final = "_state"
HOUR_MS: Final = 3_600_000

_NAME = re.compile(r"^(?P<topic>[A-Za-z0-9._-]+)\+(?P<partition>\d+)\+(?P<offset>\d{20})\.parquet$")


@dataclass(frozen=True, order=True)
class FileKey:
    """What a lake file name says: which partition and where its offset range starts."""

    topic: str
    partition: int
    first_offset: int


def hour_of_ms(epoch_ms: int) -> int:
    """Event-time hour bucket: hours since the epoch (UTC). Rotation compares these ints."""
    return epoch_ms // HOUR_MS


def _hour_parts(hour: int) -> tuple[str, str]:
    start = datetime.fromtimestamp(hour * 3600, tz=UTC)
    return start.strftime("%Y-%m-%d"), f"{start.hour:02d}"


def date_dir(area: str, channel: str, day: date) -> str:
    """``{area}/{channel}/date=YYYY-MM-DD`` (area is RAW or DEADLETTER)."""
    return f"{area}/{channel}/date={day.isoformat()}"


def partition_dir(area: str, channel: str, hour: int) -> str:
    """``{area}/{channel}/date=YYYY-MM-DD/hour=HH`` for an event-time hour bucket."""
    day, hh = _hour_parts(hour)
    return f"{area}/{channel}/date={day}/hour={hh}"


def file_name(topic: str, partition: int, first_offset: int) -> str:
    """``{topic}+{partition}+{first_offset:020d}.parquet``: deterministic, offset-sortable."""
    if first_offset < 0:
        raise ValueError(f"first_offset must be >= 0, got {first_offset}")
    return f"{topic}+{partition}+{first_offset:020d}.parquet"


def unit_path(
    area: str, channel: str, hour: int, *, topic: str, partition: int, first_offset: int
) -> str:
    """Full relative path of one file: ``partition_dir(...)/file_name(...)``."""
    return f"{partition_dir(area, channel, hour)}/{file_name(topic, partition, first_offset)}"


def parse_file_name(name: str) -> FileKey | None:
    """The key of a lake file name (basename or path), or None for anything else (temp files)."""
    match = _NAME.match(name.rsplit("/", 1)[-1])
    if match is None:
        return None
    return FileKey(match["topic"], int(match["partition"]), int(match["offset"]))


def temp_name(path: str) -> str:
    """Local atomic writes go through ``.{name}.tmp`` beside the target (never matches _NAME)."""
    head, _, name = path.rpartition("/")
    return f"{head}/.{name}.tmp" if head else f".{name}.tmp"


def pending_path(topic: str, partition: int) -> str:
    """The sink's per-partition intent record (paths written since the last commit)."""
    return f"{STATE}/pending/{topic}+{partition}.json"
