"""Airflow DAG upbit_batch_raw: REST raw ingestion of one UTC trading day.

Wiring only: the task calls ``upbit_pipeline.batch.run_step(settings, D, "raw")`` with D the
data interval's start (00:00 UTC), and announces the day on the ``upbit_batch_raw_rest`` Asset,
which schedules the silver DAG. Daily at 00:00 UTC for the day that just ended; catchup and
``airflow backfill create`` re-run any day reproducibly (nothing reads the wall clock).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable
from upbit_airflow import DEFAULT_ARGS, RAW, START_DATE, run_batch_step


@dag(
    dag_id="upbit_batch_raw",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=True,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["upbit", "batch", "raw"],
    doc_md=__doc__,
)
def upbit_batch_raw() -> None:
    @task(outlets=[RAW], execution_timeout=timedelta(minutes=45))
    def ingest_rest_raw(**context: Any) -> dict[str, Any]:
        return run_batch_step("raw", context, RAW)

    ingest_rest_raw()


upbit_batch_raw()
