"""Shared pytest set-up: factory fixtures that start real parts and always stop them."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.simulator", "tests.fixtures.broker", "tests.fixtures.slack"]

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _real_data_dir() -> Path:
    """../shared/data/upbit-real, next to the repository (as on developer machines and CI)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "data" / "upbit-real"
        if candidate.is_dir():
            return candidate
    raise RuntimeError("../shared/data/upbit-real not found next to the repository")


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of verbatim real Upbit captures (see its README.md)."""
    return _real_data_dir()


# Tests that load both cores for long (real processes streaming at thousands of frames/s) or
# check a latency bound. Under `pytest -n 2 --dist loadgroup` they share one worker, one after
# the other, so they never run against each other; the other worker takes the light tests.
HEAVY_MODULES = (
    "tests/lake/test_stream_crash.py",
    "tests/alerts/test_worker.py",
    "tests/streaming/test_producer_outage.py",
    "tests/batch/test_airflow_dags.py",
    "tests/ops/test_failure_scenarios.py",
    "tests/ops/test_demo.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(HEAVY_MODULES):
            item.add_marker(pytest.mark.xdist_group("heavy"))
