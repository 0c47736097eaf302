"""Airflow DAG upbit_batch_silver: dbt silver models (and their tests) for the raw day(s).

Wiring only: scheduled by the ``upbit_batch_raw_rest`` Asset (the raw DAG's outlet), the task
calls ``upbit_pipeline.batch.run_step(settings, D, "silver")`` for each day named by the
triggering asset events, and announces them on ``upbit_batch_silver``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task
from upbit_airflow import DEFAULT_ARGS, RAW, SILVER, START_DATE, run_batch_step


@dag(
    dag_id="upbit_batch_silver",
    schedule=[RAW],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["upbit", "batch", "silver", "dbt"],
    doc_md=__doc__,
)
def upbit_batch_silver() -> None:
    @task(outlets=[SILVER], execution_timeout=timedelta(minutes=20))
    def build_silver(**context: Any) -> dict[str, Any]:
        return run_batch_step("silver", context, SILVER)

    build_silver()


upbit_batch_silver()
