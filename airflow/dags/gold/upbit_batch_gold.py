"""Airflow DAG upbit_batch_gold: dbt gold models (and their tests) for the silver day(s).

Wiring only: scheduled by the ``upbit_batch_silver`` Asset, the task calls
``upbit_pipeline.batch.run_step(settings, D, "gold")`` for each day named by the triggering
asset events, and announces them on ``upbit_batch_gold`` (what the daily report can wait for).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task
from upbit_airflow import DEFAULT_ARGS, GOLD, SILVER, START_DATE, run_batch_step


@dag(
    dag_id="upbit_batch_gold",
    schedule=[SILVER],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["upbit", "batch", "gold", "dbt"],
    doc_md=__doc__,
)
def upbit_batch_gold() -> None:
    @task(outlets=[GOLD], execution_timeout=timedelta(minutes=20))
    def build_gold(**context: Any) -> dict[str, Any]:
        return run_batch_step("gold", context, GOLD)

    build_gold()


upbit_batch_gold()
