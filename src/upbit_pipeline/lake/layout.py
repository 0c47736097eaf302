"""Lake layout: the one place that knows paths and file names.

Everything under the lake root (a local folder, ``gs://bucket/prefix`` or ``s3://bucket/prefix``)::

    raw/{channel}/date=YYYY-MM-DD/hour=HH/{topic}+{partition}+{first_offset:020d}.parquet
    deadletter/{channel}/date=YYYY-MM-DD/hour=HH/{topic}+{partition}+{first_offset:020d}.parquet
    _state/pending/{topic}+{partition}.json     (the sink's intent record, see sink.py)
    raw/rest/{dataset}/date=YYYY-MM-DD/data.parquet      REST raw: one file = one atomic partition
    raw/rest/_staging/{dataset}/date=YYYY-MM-DD/{market}.parquet   resumable REST work in progress
    _batch/date=YYYY-MM-DD/{step}.json           batch build marker per step and date
    alerts/date=YYYY-MM-DD/alerts-{first event ms}-{hash of ids}.parquet   the alert log
    reports/date=YYYY-MM-DD/report.html          the daily report

Date and hour are the **UTC event time** of the records (exchange time, not the consumer's
clock), so Upbit's trading day (00:00 UTC = 09:00 KST) is exactly one ``date=`` folder. The file
name is a pure function of (topic, partition, first offset): a rewrite of the same range lands on
the same name and replaces the object instead of adding one. The offset is zero-padded to 20
digits so that lexical order is offset order.

Paths here are *relative* to the lake root (``/``-separated); :mod:`storage` joins them.

A REST partition is a single object so that replacing it is one atomic write on every filesystem
(``os.replace`` locally, one PUT on gs:// and s3://); a directory swap is not atomic on object
stores. The REST staging area sits under ``_staging`` so no ``date=*`` glob of a dataset sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

__all__ = [
    "ALERTS",
    "BATCH_STATE",
    "DEADLETTER",
    "HOUR_MS",
    "RAW",
    "REPORTS",
    "REST_DATASETS",
    "FileKey",
    "alert_file_name",
    "alerts_day_dir",
    "batch_marker_path",
    "date_dir",
    "file_name",
    "hour_of_ms",
    "parse_file_name",
    "partition_dir",
    "pending_path",
    "report_path",
    "rest_raw_glob",
    "rest_raw_path",
    "rest_staging_dir",
    "rest_staging_path",
    "temp_name",
    "unit_path",
]

RAW: Final = "raw"
DEADLETTER: Final = "deadletter"
ALERTS: Final = "alerts"
REPORTS: Final = "reports"
STATE: Final = "_state"
REST: Final = "raw/rest"
BATCH_STATE: Final = "_batch"
REST_DATASETS: Final = ("markets", "candles_1m", "candles_1d")
_PARTITION_FILE: Final = "data.parquet"
_MARKET = re.compile(r"^[A-Z0-9]+-[A-Z0-9.]+$")
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


# -- batch and report ----------------------------------------------------------------------------


def _check_dataset(dataset: str) -> None:
    if dataset not in REST_DATASETS:
        raise ValueError(f"unknown REST dataset {dataset!r}; expected one of {REST_DATASETS}")


def rest_raw_path(dataset: str, day: date) -> str:
    """``raw/rest/{dataset}/date=D/data.parquet``: the whole partition of one UTC day."""
    _check_dataset(dataset)
    return f"{REST}/{dataset}/date={day.isoformat()}/{_PARTITION_FILE}"


def rest_raw_glob(dataset: str) -> str:
    """``raw/rest/{dataset}/date=*/*.parquet`` (what dbt reads with hive partitioning)."""
    _check_dataset(dataset)
    return f"{REST}/{dataset}/date=*/*.parquet"


def rest_staging_dir(dataset: str, day: date) -> str:
    """``raw/rest/_staging/{dataset}/date=D``: per-market files of an unfinished ingestion."""
    _check_dataset(dataset)
    return f"{REST}/_staging/{dataset}/date={day.isoformat()}"


def rest_staging_path(dataset: str, day: date, market: str) -> str:
    """One market's staged rows (``market`` must be ``KRW-BTC``-shaped: it names a file)."""
    if not _MARKET.match(market):
        raise ValueError(f"not a market code: {market!r}")
    return f"{rest_staging_dir(dataset, day)}/{market}.parquet"


def batch_marker_path(day: date, step: str) -> str:
    """``_batch/date=D/{step}.json``: the build marker read by the daily report."""
    return f"{BATCH_STATE}/date={day.isoformat()}/{step}.json"


def report_path(day: date) -> str:
    """``reports/date=D/report.html``; D is the *requested* day even when the report falls back
    (the file answers "what did the D report say")."""
    return f"{REPORTS}/date={day.isoformat()}/report.html"


def alerts_day_dir(day: date) -> str:
    """``alerts/date=D``: the alert worker's Parquet log of UTC day D (alerts' event time)."""
    return f"{ALERTS}/date={day.isoformat()}"


def alert_file_name(first_event_ms: int, digest: str) -> str:
    """``alerts-{first event ms}-{digest}.parquet``: named by its content (the alert ids' hash),
    so writing the same batch again replaces the file instead of adding one."""
    return f"alerts-{first_event_ms}-{digest}.parquet"
