"""Shared pytest set-up: factory fixtures that start real parts and always stop them."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.simulator", "tests.fixtures.broker"]

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
