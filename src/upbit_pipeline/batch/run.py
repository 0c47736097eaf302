"""``batch run``: the day's steps in-process, raw -> silver -> gold, without Airflow.

This is the embedded default and the only implementation: the Airflow DAGs call
:func:`run_step` too, one step per task. Every step of every date ends with a build marker
(``markers.py``) -- ``ok`` with its counts, or ``failed`` with the error -- so the daily report
can tell fresh gold tables from stale ones and say so.

* raw: :func:`upbit_pipeline.batch.raw.ingest_raw` (REST -> lake, atomic partitions);
* silver: ``dbt build --select staging silver`` for D (the staging views over the lake, the
  models, their data tests and unit tests, and the stream-vs-REST agreement test);
* gold: ``dbt build --select staging gold`` for D (the rank reads the previous 30 days of gold
  already in the warehouse).

Every dbt model deletes and re-inserts exactly the run's days, so running a date again gives
identical tables (the tests check it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from upbit_pipeline.batch.dbt import run_dbt
from upbit_pipeline.batch.markers import StepMarker, write_marker
from upbit_pipeline.batch.raw import ingest_raw
from upbit_pipeline.errors import TerminalError, UserError
from upbit_pipeline.lake.storage import open_lake
from upbit_pipeline.settings import Settings

__all__ = ["STEPS", "BatchResult", "BatchStepError", "build_layer", "run_batch", "run_step"]

log = logging.getLogger(__name__)

STEPS: Final = ("raw", "silver", "gold")


class BatchStepError(TerminalError):
    """A batch step failed; its ``failed`` marker has been written. ``marker`` says what failed."""

    def __init__(self, marker: StepMarker) -> None:
        super().__init__(f"batch {marker.step} for {marker.date} failed: {marker.error}")
        self.marker = marker


@dataclass(frozen=True)
class BatchResult:
    """The markers of the steps that ran, in order; a failed step ends the run."""

    date: str
    markers: list[StepMarker] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.markers)

    def as_dict(self) -> dict[str, Any]:
        return {"date": self.date, "ok": self.ok, "steps": [m.__dict__ for m in self.markers]}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_layer(
    settings: Settings,
    layer: str,
    date_from: date,
    date_to: date,
    *,
    dbt_vars: dict[str, Any] | None = None,
    project_dir: Path | None = None,
) -> dict[str, int]:
    """``dbt build --select <layer>`` for the UTC days date_from..date_to; rows per model."""
    if layer not in ("silver", "gold"):
        raise UserError(f"unknown dbt layer {layer!r} (silver or gold)")
    # dbt's default (eager) indirect selection adds every test touching the layer's models,
    # including the singular stream-vs-REST agreement test for silver. The staging views
    # (stg_upbit__*) read the run's days from the lake, so they are rebuilt with either layer.
    result = run_dbt(
        "build",
        warehouse=Path(settings.warehouse.path),
        lake_url=settings.lake.path,
        date_from=date_from,
        date_to=date_to,
        select=["staging", layer],
        extra_vars=dbt_vars,
        project_dir=project_dir,
    )
    return dict(sorted(result.rows.items()))


def run_step(
    settings: Settings,
    day: date,
    step: str,
    *,
    markets: Sequence[str] | None = None,
    progress: bool | None = None,
    resume: bool = True,
    dbt_vars: dict[str, Any] | None = None,
) -> StepMarker:
    """Run one step for one UTC trading day and write its marker; raise if it failed.

    Raises :class:`BatchStepError` (after writing the ``failed`` marker) on any error.
    """
    if step not in STEPS:
        raise UserError(f"unknown batch step {step!r}; expected one of {', '.join(STEPS)}")
    lake = open_lake(settings.lake.path)
    started, began = _now(), time.monotonic()
    counts: dict[str, int] = {}
    paths: list[str] = []
    error: str | None = None
    try:
        if step == "raw":
            raw = ingest_raw(settings, day, markets=markets, resume=resume, progress=progress)
            counts, paths = raw.counts(), sorted(raw.paths.values())
        else:
            counts = build_layer(settings, step, day, day, dbt_vars=dbt_vars)
    except Exception as exc:  # recorded in the marker, then re-raised as a typed error
        error = f"{type(exc).__name__}: {exc}"[:2000]
        log.exception("batch %s for %s failed", step, day)
    marker = StepMarker(
        date=day.isoformat(),
        step=step,
        status="failed" if error else "ok",
        started_at=started,
        finished_at=_now(),
        duration_s=round(time.monotonic() - began, 3),
        counts=counts,
        paths=paths,
        error=error,
    )
    write_marker(lake, marker)
    log.info("batch %s for %s: %s %s", step, day, marker.status, counts)
    if error is not None:
        raise BatchStepError(marker)
    return marker


def run_batch(
    settings: Settings,
    day: date,
    steps: Sequence[str] = STEPS,
    *,
    markets: Sequence[str] | None = None,
    progress: bool | None = None,
    resume: bool = True,
    dbt_vars: dict[str, Any] | None = None,
) -> BatchResult:
    """Run ``steps`` (in raw, silver, gold order) for UTC day ``day``; stop at the first failure.

    Never raises for a step failure: the result (and each step's marker) says what happened, and
    the CLI turns ``not result.ok`` into its exit code.
    """
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise UserError(f"unknown batch step(s) {unknown}; expected some of {', '.join(STEPS)}")
    result = BatchResult(date=day.isoformat())
    for step in (s for s in STEPS if s in steps):
        try:
            marker = run_step(
                settings,
                day,
                step,
                markets=markets,
                progress=progress,
                resume=resume,
                dbt_vars=dbt_vars,
            )
        except BatchStepError as exc:
            result.markers.append(exc.marker)
            break
        result.markers.append(marker)
    return result
