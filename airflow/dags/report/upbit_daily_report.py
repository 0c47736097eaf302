"""Airflow DAG upbit_daily_report: the daily volatility report (v2) of UTC trading day D.

Wiring only; the report is ``upbit_pipeline.batch.report.run_report`` (docs/report.md).

Why a time schedule and a sensor rather than the ``upbit_batch_gold`` Asset: an Asset event is
emitted only when gold *succeeds*, so a report scheduled on it would never run on the very days
it matters -- the design promises that a failed gold still yields a summary. Instead:

* the run for D starts at D+1 00:15 UTC (09:15 KST), after the raw DAG's 00:00 UTC start;
* ``wait_for_gold`` pokes D's gold build marker (the batch writes it last) every 2 minutes until
  D is usable, for at most ``UPBIT_REPORT_GOLD_WAIT_MINUTES`` (default 45: the deadline is
  01:00 UTC = 10:00 KST, when the systemd timer of users without Airflow fires too). A failed
  gold try does not end the wait, because Airflow retries gold; on timeout the sensor is
  *skipped* (``soft_fail``), not failed;
* ``send_report`` has ``trigger_rule=all_done``: it runs whether the sensor succeeded, timed out
  or failed, i.e. whether or not gold succeeded. ``run_report`` then decides normal, fallback or
  no data from the markers, and always sends a message.

The task fails (and is retried) only when the report could not be delivered (exit code 1);
fallback and no data are delivered reports, returned in XCom as ``kind``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from airflow.sdk import TriggerRule, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable
from upbit_airflow import DEFAULT_ARGS, START_DATE, batch_dates

GOLD_WAIT = timedelta(minutes=int(os.environ.get("UPBIT_REPORT_GOLD_WAIT_MINUTES", "45")))


@dag(
    dag_id="upbit_daily_report",
    schedule=CronDataIntervalTimetable("15 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["upbit", "batch", "report"],
    doc_md=__doc__,
)
def upbit_daily_report() -> None:
    @task.sensor(
        poke_interval=120,
        timeout=GOLD_WAIT.total_seconds(),
        mode="reschedule",
        soft_fail=True,
        retries=0,
    )
    def wait_for_gold(**context: Any) -> bool:
        from upbit_pipeline.batch.report import gold_ready
        from upbit_pipeline.settings import load_settings

        settings = load_settings()
        return all(gold_ready(settings, day) for day in batch_dates(context))

    @task(trigger_rule=TriggerRule.ALL_DONE, execution_timeout=timedelta(minutes=10))
    def send_report(**context: Any) -> dict[str, Any]:
        from upbit_pipeline.batch.report import run_report
        from upbit_pipeline.settings import load_settings

        settings = load_settings()
        results = []
        for day in batch_dates(context):
            outcome = run_report(settings, day)
            results.append(
                {
                    "date": day.isoformat(),
                    "kind": outcome.kind,
                    "shown": outcome.shown.isoformat() if outcome.shown else None,
                    "exit_code": outcome.exit_code,
                    "html_path": outcome.html_path,
                }
            )
            if outcome.exit_code == 1:
                raise RuntimeError(f"report for {day} not delivered: {'; '.join(outcome.errors)}")
        return {"reports": results}

    wait_for_gold() >> send_report()


upbit_daily_report()
