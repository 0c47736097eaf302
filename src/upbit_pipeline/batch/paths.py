"""Lake paths of the batch layer (relative to the lake root, ``/``-separated).

These belong with the stream paths in ``lake/layout.py`` (the one place that knows paths); they
live here until that move, and nothing else in the batch package spells a path::

    raw/rest/{dataset}/date=YYYY-MM-DD/data.parquet      one file = one atomic partition
    raw/rest/_staging/{dataset}/date=YYYY-MM-DD/{market}.parquet   resumable work in progress
    _batch/date=YYYY-MM-DD/{step}.json                   build marker per step and date

``date`` is the UTC trading day (00:00 UTC = 09:00 KST), like the stream's event-time folders.
A partition is a single object so that replacing it is one atomic write on every filesystem
(``os.replace`` locally, one PUT on gs:// and s3://); a directory swap is not atomic on object
stores. The staging area sits under ``_staging`` so no ``date=*`` glob of a dataset can see it.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

__all__ = [
    "BATCH_STATE",
    "REST_DATASETS",
    "batch_marker_path",
    "rest_raw_glob",
    "rest_raw_path",
    "rest_staging_dir",
    "rest_staging_path",
]

REST: Final = "raw/rest"
BATCH_STATE: Final = "_batch"
REST_DATASETS: Final = ("markets", "candles_1m", "candles_1d")
_PARTITION_FILE: Final = "data.parquet"
_MARKET = re.compile(r"^[A-Z0-9]+-[A-Z0-9.]+$")


def _check(dataset: str) -> None:
    if dataset not in REST_DATASETS:
        raise ValueError(f"unknown REST dataset {dataset!r}; expected one of {REST_DATASETS}")


def rest_raw_path(dataset: str, day: date) -> str:
    """``raw/rest/{dataset}/date=D/data.parquet``: the whole partition of one UTC day."""
    _check(dataset)
    return f"{REST}/{dataset}/date={day.isoformat()}/{_PARTITION_FILE}"


def rest_raw_glob(dataset: str) -> str:
    """``raw/rest/{dataset}/date=*/*.parquet`` (what dbt reads with hive partitioning)."""
    _check(dataset)
    return f"{REST}/{dataset}/date=*/*.parquet"


def rest_staging_dir(dataset: str, day: date) -> str:
    """``raw/rest/_staging/{dataset}/date=D``: per-market files of an unfinished ingestion."""
    _check(dataset)
    return f"{REST}/_staging/{dataset}/date={day.isoformat()}"


def rest_staging_path(dataset: str, day: date, market: str) -> str:
    """One market's staged rows (``market`` must be ``KRW-BTC``-shaped: it names a file)."""
    if not _MARKET.match(market):
        raise ValueError(f"not a market code: {market!r}")
    return f"{rest_staging_dir(dataset, day)}/{market}.parquet"


def batch_marker_path(day: date, step: str) -> str:
    """``_batch/date=D/{step}.json``: the build marker read by the daily report (issue 7)."""
    return f"{BATCH_STATE}/date={day.isoformat()}/{step}.json"
