"""The Airflow DAG of the daily report: it loads, its report task does not depend on gold's
success, and a real ``dag.test`` run delivers the right message to a local Slack receiver --
normal when gold is ready, the fallback when gold failed (the sensor gives up and is skipped,
and the report still runs), "no data" when nothing was built.

Airflow runs in subprocesses with AIRFLOW_HOME in a temporary folder (as in
test_airflow_dags.py); one ``airflow db migrate`` per module, copied per run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.batch import test_report
from tests.batch.test_report import DAYS, Built, D, _all_text
from tests.fixtures.slack import SlackReceiver, running_slack_receiver
from upbit_pipeline.batch.markers import read_marker, write_marker
from upbit_pipeline.lake.storage import open_lake

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAG_ID = "upbit_daily_report"

built = test_report.built  # the constructed five days of gold (session fixture, shared)

_SCRIPT = """
import json, sys
from datetime import datetime, UTC
from airflow.dag_processing.dagbag import DagBag
bag = DagBag()
if sys.argv[1] == "structure":
    dag = bag.dags[sys.argv[2]]
    tasks = {
        t.task_id: {
            "type": type(t).__name__,
            "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
            "upstream": sorted(t.upstream_task_ids),
            "mode": getattr(t, "mode", None),
            "soft_fail": getattr(t, "soft_fail", None),
            "timeout": getattr(t, "timeout", None),
        }
        for t in dag.tasks
    }
    print(json.dumps({
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dag_ids": sorted(bag.dag_ids),
        "tasks": tasks,
        "schedule": dag.timetable.summary,
    }, default=str))
else:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    dag = bag.get_dag(sys.argv[2])
    run = dag.test(logical_date=datetime.fromisoformat(sys.argv[3]).replace(tzinfo=UTC))
    with create_session() as session:
        states = {
            ti.task_id: str(ti.state)
            for ti in session.query(TaskInstance).filter(TaskInstance.run_id == run.run_id)
        }
    print(json.dumps({"state": str(run.state), "tasks": states}))
"""


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "UPBIT"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "airflow" / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "airflow" / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        UPBIT_BATCH_START_DATE="2025-01-01",  # the constructed days are in May 2025
        PYTHONPATH=str(REPO),
        **extra,
    )
    return env


def _airflow(home: Path, args: list[str], **env: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *args],
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


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow-report-home")
    subprocess.run(
        [str(BIN / "airflow"), "db", "migrate"],
        env=_env(home),
        check=True,
        capture_output=True,
        timeout=180,
    )
    return home


@pytest.fixture
def home(migrated: Path, tmp_path: Path) -> Path:
    """A fresh copy of the migrated metadata database (each run starts with no DAG runs)."""
    target = tmp_path / "airflow-home"
    target.mkdir()
    shutil.copy(migrated / "airflow.db", target / "airflow.db")
    return target


@pytest.fixture
def receiver() -> Iterator[SlackReceiver]:
    with running_slack_receiver() as running:
        yield running


def _run(home: Path, root: Path, receiver: SlackReceiver, wait_minutes: str) -> dict[str, object]:
    # the run for D starts at D+1 00:15 UTC; a manual run infers the interval ending there
    logical = f"{D + timedelta(days=1)}T00:15:00"
    return _airflow(
        home,
        ["run", DAG_ID, logical],
        UPBIT_PIPELINE_LAKE__PATH=str(root / "lake"),
        UPBIT_PIPELINE_WAREHOUSE__PATH=str(root / "warehouse.duckdb"),
        UPBIT_PIPELINE_ALERTS__SLACK_WEBHOOK=receiver.url,
        UPBIT_REPORT_GOLD_WAIT_MINUTES=wait_minutes,
    )


def test_report_task_does_not_depend_on_gold_success(tmp_path: Path) -> None:
    result = _airflow(tmp_path, ["structure", DAG_ID])  # parsing needs no metadata database
    assert result["import_errors"] == {}
    assert DAG_ID in result["dag_ids"]  # type: ignore[operator]
    tasks = result["tasks"]
    assert isinstance(tasks, dict)
    sensor, report = tasks["wait_for_gold"], tasks["send_report"]
    assert report["trigger_rule"] == "all_done" and report["upstream"] == ["wait_for_gold"]
    assert sensor["mode"] == "reschedule" and sensor["soft_fail"] is True
    assert sensor["timeout"] == 45 * 60
    assert result["schedule"] == "15 0 * * *"


def test_dag_sends_the_normal_report_when_gold_is_ready(
    built: Built,
    home: Path,
    tmp_path: Path,
    receiver: SlackReceiver,
) -> None:
    built.copy(tmp_path / "data")
    result = _run(home, tmp_path / "data", receiver, "45")
    assert result == {
        "state": "success",
        "tasks": {"wait_for_gold": "success", "send_report": "success"},
    }
    [post] = receiver.posts
    assert post["text"].startswith(f"Upbit trading day {D}")


def test_dag_still_reports_when_gold_failed(
    built: Built,
    home: Path,
    tmp_path: Path,
    receiver: SlackReceiver,
) -> None:
    built.copy(tmp_path / "data")
    lake = open_lake(str(tmp_path / "data" / "lake"))
    marker = read_marker(lake, D, "gold")
    assert marker is not None
    failed = {**marker.__dict__, "status": "failed", "error": "DbtError: rank failed"}
    write_marker(lake, marker.__class__(**failed))
    # the deadline has passed (0 minutes): the sensor is skipped, the report runs anyway
    result = _run(home, tmp_path / "data", receiver, "0")
    assert result == {
        "state": "success",
        "tasks": {"wait_for_gold": "skipped", "send_report": "success"},
    }
    [post] = receiver.posts
    assert post["text"].splitlines()[0] == f"data for {D} unavailable — showing {DAYS[3]}"
    assert "DbtError: rank failed" in _all_text(post)


def test_dag_sends_no_data_when_nothing_was_built(
    home: Path, tmp_path: Path, receiver: SlackReceiver
) -> None:
    result = _run(home, tmp_path / "empty", receiver, "0")
    assert result["tasks"] == {"wait_for_gold": "skipped", "send_report": "success"}
    [post] = receiver.posts
    assert post["text"].startswith(f"no data: nothing usable for {D}")
