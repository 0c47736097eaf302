"""The Airflow DAGs: they load, and each runs end to end against the simulator for one day.

Airflow runs in subprocesses (tests/batch/airflow_runner.py) with AIRFLOW_HOME in a temporary
folder; ``airflow db migrate`` runs once per test session (per xdist worker).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.batch.servers import running_simulator
from upbit_pipeline.batch import read_marker
from upbit_pipeline.lake.storage import open_lake

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAGS = ["upbit_batch_raw", "upbit_batch_silver", "upbit_batch_gold"]
ALL_DAGS = [*DAGS, "upbit_daily_report"]  # the report DAG has its own tests (test_report_dag.py)


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "UPBIT_PIPELINE"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "airflow" / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "airflow" / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        PYTHONPATH=str(REPO),
        **extra,
    )
    return env


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow-home")
    subprocess.run(
        [str(BIN / "airflow"), "db", "migrate"],
        env=_env(home),
        check=True,
        capture_output=True,
        timeout=180,
    )
    return home


def _runner(home: Path, args: list[str], **env: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.batch.airflow_runner", *args],
        env=_env(home, **env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_dagbag_loads_without_import_errors(airflow_home: Path) -> None:
    result = _runner(airflow_home, ["dagbag"])
    assert result["import_errors"] == {}
    assert result["dag_ids"] == sorted(ALL_DAGS)
    assert float(result["load_s"]) < 10  # type: ignore[arg-type]


def test_each_dag_runs_end_to_end_for_one_day(airflow_home: Path, tmp_path: Path) -> None:
    with running_simulator(markets=2, seed=11) as sim:
        day = datetime.fromtimestamp(sim.start_ms / 1000, UTC).date() - timedelta(days=1)
        result = _runner(
            airflow_home,
            ["test", day.isoformat(), *DAGS],
            UPBIT_PIPELINE_UPBIT__URL=sim.base_url,
            UPBIT_PIPELINE_LAKE__PATH=str(tmp_path / "lake"),
            UPBIT_PIPELINE_WAREHOUSE__PATH=str(tmp_path / "warehouse.duckdb"),
        )
    assert result["states"] == dict.fromkeys(DAGS, "success")
    lake = open_lake(str(tmp_path / "lake"))
    for step in ("raw", "silver", "gold"):
        marker = read_marker(lake, day, step)
        assert marker is not None and marker.ok, step
    gold = read_marker(lake, day, "gold")
    assert gold is not None and gold.counts["gold_market_daily"] == 2
