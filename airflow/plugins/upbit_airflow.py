"""Shared wiring of the upbit-pipeline Airflow DAGs: Assets, default arguments, and the one task
body every DAG uses (resolve the UTC trading day(s), call ``upbit_pipeline.batch.run_step``).

Dates: the **logical date** decides the day, never the wall clock. A scheduled (or backfilled,
or caught-up) raw run covers its data interval [D 00:00 UTC, D+1 00:00 UTC), so D is
``data_interval_start``. Silver and gold are scheduled by the Asset their upstream updates; an
asset-triggered run has no interval of its own, so the day(s) come from the triggering asset
events' ``extra["dates"]`` (several when a backfill queued several events). A manual run can name
the day with ``conf={"date": "YYYY-MM-DD"}``; ``dag.test(logical_date=...)`` uses that date.

XCom carries only dates, counts and marker paths; data moves through the lake and the warehouse.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset
from upbit_slack import slack_on_failure

__all__ = [
    "DEFAULT_ARGS",
    "GOLD",
    "RAW",
    "SILVER",
    "START_DATE",
    "batch_dates",
    "run_batch_step",
]

RAW = Asset("upbit_batch_raw_rest")
SILVER = Asset("upbit_batch_silver")
GOLD = Asset("upbit_batch_gold")

# First UTC trading day scheduled (and caught up) by the raw DAG; older days by backfill.
START_DATE = pendulum.parse(os.environ.get("UPBIT_BATCH_START_DATE", "2026-11-01"), tz="UTC")

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "upbit-pipeline",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "on_failure_callback": slack_on_failure,
}


def batch_dates(context: Mapping[str, Any]) -> list[date]:
    """The UTC trading day(s) this run builds (see the module docstring for the rules)."""
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    if conf.get("date"):
        return [date.fromisoformat(str(conf["date"]))]
    found: set[date] = set()
    events = context.get("triggering_asset_events") or {}
    for asset_events in events.values():
        for event in asset_events:
            for text in (getattr(event, "extra", None) or {}).get("dates", []):
                found.add(date.fromisoformat(text))
    if found:
        return sorted(found)
    start = context.get("data_interval_start") or context.get("logical_date")
    if start is None:
        raise ValueError("no trading day: no conf date, asset event or logical date")
    return [pendulum.instance(start).in_timezone("UTC").date()]


def run_batch_step(step: str, context: Mapping[str, Any], outlet: Asset) -> dict[str, Any]:
    """Run ``step`` for the run's day(s); announce them on ``outlet``; return paths and counts."""
    from upbit_pipeline.batch import run_step
    from upbit_pipeline.lake.layout import batch_marker_path
    from upbit_pipeline.settings import load_settings

    settings = load_settings()
    days = batch_dates(context)
    counts: dict[str, dict[str, int]] = {}
    for day in days:
        marker = run_step(settings, day, step, progress=False)
        counts[day.isoformat()] = marker.counts
    context["outlet_events"][outlet].extra = {"dates": [d.isoformat() for d in days]}
    return {
        "step": step,
        "dates": [d.isoformat() for d in days],
        "counts": counts,
        "markers": [batch_marker_path(d, step) for d in days],
    }
