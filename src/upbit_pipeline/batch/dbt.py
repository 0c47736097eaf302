"""dbt, in-process: ``dbtRunner`` over the project in ``dbt/`` with a generated DuckDB profile.

Where the project is: :func:`find_project_dir` looks, in order, at

1. an explicit ``project_dir`` argument,
2. ``upbit_pipeline/_dbt`` inside the installed package (a wheel build maps the repository's
   ``dbt/`` there with hatch ``force-include``, so a non-editable install carries its models),
3. the repository's ``dbt/`` next to ``src/`` (the ``pip install -e .`` case: the package *is*
   the source tree, so the project is found relative to this file).

The project stays at the repository root (where dbt users expect it and where ``dbt`` runs by
hand with ``profiles.example.yml``); shipping it inside ``src/`` would hide it from them.

The profile is written per run into the target folder (never into ``~/.dbt``): DuckDB file from
``settings.warehouse.path``, ``TimeZone = UTC`` so zone conversions never depend on the host, and
an fsspec ``filesystems:`` entry when the lake is ``gs://`` or ``s3://`` (DuckDB cannot install
httpfs offline). dbt's ``target/`` and logs go beside the warehouse file, not into the
repository, so concurrent runs on different warehouses do not collide, and dbt's partial parse
is reused between runs on the same warehouse.

dbtRunner is not thread-safe: one invocation at a time per process.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from upbit_pipeline.errors import TerminalError, UserError

__all__ = [
    "DbtError",
    "DbtNodeResult",
    "DbtResult",
    "find_project_dir",
    "profile_yaml",
    "run_dbt",
]

log = logging.getLogger(__name__)

PROFILE = "upbit_pipeline"
TARGET = "duckdb"


class DbtError(TerminalError):
    """dbt failed: a model error, a failing test, or dbt itself could not run."""


@dataclass(frozen=True)
class DbtNodeResult:
    """One model, test or unit test of an invocation."""

    unique_id: str
    resource_type: str
    status: str  # success, error, pass, fail, warn, skipped
    rows_affected: int | None
    failures: int | None
    execution_time_s: float
    message: str | None


@dataclass(frozen=True)
class DbtResult:
    """Outcome of one dbt invocation (summary; the node list is for tests and logs)."""

    success: bool
    command: list[str]
    elapsed_s: float
    nodes: list[DbtNodeResult] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # model -> rows for the run's days

    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.status] = counts.get(node.status, 0) + 1
        return counts

    def failed(self) -> list[DbtNodeResult]:
        return [n for n in self.nodes if n.status in {"error", "fail", "runtime error"}]

    def models_seconds(self) -> float:
        """Sum of the models' execution times: the build time without dbt's start-up."""
        return sum(n.execution_time_s for n in self.nodes if n.resource_type == "model")


def find_project_dir(explicit: Path | None = None) -> Path:
    """The dbt project folder (see the module docstring for the search order)."""
    package = Path(__file__).resolve().parents[1]  # .../upbit_pipeline
    candidates = [explicit] if explicit is not None else []
    candidates += [package / "_dbt", package.parents[1] / "dbt"]
    for candidate in candidates:
        if candidate is not None and (candidate / "dbt_project.yml").is_file():
            return candidate
    raise UserError(
        "dbt project not found (looked in "
        + ", ".join(str(c) for c in candidates if c is not None)
        + "); install with `pip install -e .` from the repository or pass project_dir"
    )


def _filesystems(lake_url: str) -> list[dict[str, str]]:
    if lake_url.startswith(("gs://", "gcs://")):
        return [{"fs": "gcs"}]
    if lake_url.startswith("s3://"):
        return [{"fs": "s3"}]
    return []


def profile_yaml(warehouse: Path, lake_url: str, threads: int = 2) -> str:
    """The DuckDB profile (JSON is valid YAML, and json.dumps quotes paths safely)."""
    output: dict[str, Any] = {
        "type": "duckdb",
        "path": str(warehouse),
        "threads": threads,
        "settings": {"TimeZone": "UTC"},
    }
    filesystems = _filesystems(lake_url)
    if filesystems:
        output["filesystems"] = filesystems
    return json.dumps({PROFILE: {"target": TARGET, "outputs": {TARGET: output}}}, indent=1)


def _lake_for_duckdb(lake_url: str) -> str:
    """The lake root as DuckDB's read_parquet sees it: absolute locally, the URL otherwise."""
    if "://" in lake_url and not lake_url.startswith("file://"):
        return lake_url.rstrip("/")
    return os.path.abspath(lake_url.removeprefix("file://")).rstrip("/")


def _node(result: Any) -> DbtNodeResult:
    node = result.node
    adapter = result.adapter_response or {}
    return DbtNodeResult(
        unique_id=str(node.unique_id),
        resource_type=str(node.resource_type),
        status=str(result.status),
        rows_affected=adapter.get("rows_affected") if isinstance(adapter, dict) else None,
        failures=result.failures,
        execution_time_s=float(result.execution_time or 0.0),
        message=result.message,
    )


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after an invocation.

    dbt-duckdb caches one environment (and its open database) per process, which holds the
    warehouse file's lock: no other process could read it, and this process could not open it
    with its own settings (the daily report, tests). Releasing it costs one re-open per run.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter: nothing cached here
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            env.close()


def _read_counts(path: Path) -> dict[str, int]:
    """The on-run-end counts file (macro write_batch_counts), or {} when dbt wrote none."""
    try:
        rows: list[dict[str, Any]] = json.loads(path.read_text() or "[]")
    except FileNotFoundError:
        return {}
    return {str(row["model"]): int(row["rows"]) for row in rows}


def run_dbt(
    command: str,
    *,
    warehouse: Path,
    lake_url: str,
    date_from: date,
    date_to: date,
    select: Sequence[str] = (),
    extra_vars: dict[str, Any] | None = None,
    project_dir: Path | None = None,
    threads: int = 2,
    full_refresh: bool = False,
    quiet: bool = True,
) -> DbtResult:
    """Run ``dbt <command>`` (``build``, ``run``, ``test``) for the UTC days date_from..date_to.

    Raises :class:`DbtError` when dbt fails (a model error, a failing test, a parse error); the
    message names the failing nodes. Returns the per-node results otherwise.
    """
    from dbt.cli.main import dbtRunner

    project = find_project_dir(project_dir)
    warehouse = warehouse.resolve()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    work = warehouse.parent / f".{warehouse.name}.dbt"
    work.mkdir(parents=True, exist_ok=True)
    (work / "profiles.yml").write_text(profile_yaml(warehouse, lake_url, threads))
    counts = work / "counts.json"
    counts.unlink(missing_ok=True)
    variables: dict[str, Any] = {
        "lake_path": _lake_for_duckdb(lake_url),
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "counts_path": str(counts),
        **(extra_vars or {}),
    }
    args = [
        command,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(work),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
        "--target",
        TARGET,
        "--vars",
        json.dumps(variables),
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
    ]
    if quiet:
        args.append("--quiet")
    if full_refresh:
        args.append("--full-refresh")
    for selector in select:
        args += ["--select", selector]
    began = time.monotonic()
    try:
        outcome = dbtRunner().invoke(args)
    finally:
        _release_duckdb()
    elapsed = time.monotonic() - began
    nodes = [_node(r) for r in getattr(outcome.result, "results", None) or []]
    result = DbtResult(
        success=outcome.success,
        command=args,
        elapsed_s=elapsed,
        nodes=nodes,
        rows=_read_counts(counts),
    )
    log.info(
        "dbt %s %s..%s %s: %s in %.1f s",
        command,
        date_from,
        date_to,
        " ".join(select) or "(all)",
        result.by_status(),
        elapsed,
    )
    if not outcome.success:
        failed = result.failed()
        detail = "; ".join(f"{n.unique_id}: {n.status} {n.message or ''}".strip() for n in failed)
        if outcome.exception is not None:
            detail = f"{detail}; {outcome.exception}" if detail else str(outcome.exception)
        raise DbtError(f"dbt {command} failed: {detail or 'see dbt logs in ' + str(work)}")
    return result
