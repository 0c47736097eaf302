"""The batch medallion: REST raw ingestion, dbt silver and gold, for one UTC trading day.

``run_batch`` runs the steps in-process (``upbit-pipeline batch run``); the Airflow DAGs in
``airflow/dags`` call ``run_step`` per task. A trading day D is [D 00:00 UTC, D+1 00:00 UTC) =
[D 09:00 KST, D+1 09:00 KST), as Upbit's day candles are.
"""

from __future__ import annotations

from upbit_pipeline.batch.dbt import DbtError, DbtResult, find_project_dir, run_dbt
from upbit_pipeline.batch.markers import StepMarker, read_marker, write_marker
from upbit_pipeline.batch.raw import RawResult, day_bounds, ingest_raw, ingest_raw_async
from upbit_pipeline.batch.run import (
    STEPS,
    BatchResult,
    BatchStepError,
    build_layer,
    run_batch,
    run_step,
)
from upbit_pipeline.lake.layout import (
    REST_DATASETS,
    batch_marker_path,
    rest_raw_glob,
    rest_raw_path,
)

__all__ = [
    "REST_DATASETS",
    "STEPS",
    "BatchResult",
    "BatchStepError",
    "DbtError",
    "DbtResult",
    "RawResult",
    "StepMarker",
    "batch_marker_path",
    "build_layer",
    "day_bounds",
    "find_project_dir",
    "ingest_raw",
    "ingest_raw_async",
    "read_marker",
    "rest_raw_glob",
    "rest_raw_path",
    "run_batch",
    "run_dbt",
    "run_step",
    "write_marker",
]
