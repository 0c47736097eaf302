"""Tiny helpers shared by benchmarks: repeat a measurement, report the median."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """One benchmark row: the median of ``repeats`` runs, with its unit and goal."""

    name: str
    median: float
    unit: str
    goal: str = ""
    note: str = ""

    def row(self) -> str:
        return f"| {self.name} | {self.median:,.0f} {self.unit} | {self.goal} | {self.note} |"


def rate_median(work: Callable[[], int], repeats: int = 5) -> float:
    """Run ``work`` (which returns how many items it processed) ``repeats`` times; median rate/s."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        items = work()
        rates.append(items / (time.perf_counter() - start))
    return statistics.median(rates)
