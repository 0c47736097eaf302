"""Run Airflow in its own process for the DAG tests (Airflow's import configures logging,
settings and an ORM that must not leak into the pytest process).

    python -m tests.batch.airflow_runner dagbag
    python -m tests.batch.airflow_runner test YYYY-MM-DD DAG_ID [DAG_ID ...]

Prints one JSON line on stdout as the last line.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta


def _dagbag() -> dict[str, object]:
    from airflow.dag_processing.dagbag import DagBag

    began = time.monotonic()
    bag = DagBag()
    return {
        "dag_ids": sorted(bag.dag_ids),
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "load_s": time.monotonic() - began,
    }


def _test(day: str, dag_ids: list[str]) -> dict[str, object]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()
    states = {}
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    for dag_id in dag_ids:
        dag = bag.get_dag(dag_id)
        assert dag is not None, bag.import_errors
        # The raw DAG's daily interval: a manual run at D+1 00:00 covers [D, D+1), as the
        # scheduler's run for D does. Asset-scheduled DAGs run manually use their logical date.
        logical = start + timedelta(days=1) if dag_id.endswith("_raw") else start
        run = dag.test(logical_date=logical)
        states[dag_id] = str(run.state)
    return {"states": states}


if __name__ == "__main__":
    mode = sys.argv[1]
    result = _dagbag() if mode == "dagbag" else _test(sys.argv[2], sys.argv[3:])
    print(json.dumps(result))
