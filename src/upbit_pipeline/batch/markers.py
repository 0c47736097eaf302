"""Build markers: one small JSON document per (UTC trading day, step), written last.

A marker is the batch layer's freshness record. The daily report (issue 7) reads it to decide
whether today's gold tables can be trusted or whether it must fall back to the previous day, and
says which in its message. Shape (``version`` 1)::

    {"version": 1, "date": "2025-05-16", "step": "gold", "status": "ok" | "failed",
     "started_at": "...Z", "finished_at": "...Z", "duration_s": 4.2,
     "counts": {"gold_market_daily": 290, ...}, "paths": ["raw/rest/..."], "error": null}

Times are UTC ISO 8601 with ``Z``; ``started_at``/``finished_at`` are wall-clock processing times
(the only wall-clock values the batch writes -- they never enter a table). ``counts`` are rows per
dataset or model for that date. A re-run overwrites the marker atomically (``LakeStorage.write``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

from upbit_pipeline.lake.layout import batch_marker_path
from upbit_pipeline.lake.storage import LakeStorage

__all__ = ["MARKER_VERSION", "StepMarker", "StepStatus", "read_marker", "write_marker"]

MARKER_VERSION = 1
StepStatus = Literal["ok", "failed"]


@dataclass(frozen=True)
class StepMarker:
    """What one step did for one date (see the module docstring for the JSON shape)."""

    date: str
    step: str
    status: StepStatus
    started_at: str
    finished_at: str
    duration_s: float
    counts: dict[str, int] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    error: str | None = None
    version: int = MARKER_VERSION

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StepMarker:
        raw: dict[str, Any] = json.loads(data)
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in raw.items() if key in known})


def write_marker(lake: LakeStorage, marker: StepMarker) -> str:
    """Write ``_batch/date=D/{step}.json`` atomically; returns its lake-relative path."""
    rel = batch_marker_path(date.fromisoformat(marker.date), marker.step)
    lake.write(rel, marker.to_json())
    return rel


def read_marker(lake: LakeStorage, day: date, step: str) -> StepMarker | None:
    """The marker of ``step`` for ``day``, or None when that step never finished for it."""
    data = lake.read(batch_marker_path(day, step))
    return None if data is None else StepMarker.from_json(data)
