"""The ops commands as an operator runs them: real processes, exit codes, files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("UPBIT_PIPELINE_")}
    return subprocess.run(
        [sys.executable, "-m", "upbit_pipeline", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=120,
        check=False,
    )


def test_render_units_writes_units_that_verify(tmp_path: Path) -> None:
    executable = Path(sys.executable).with_name("upbit-pipeline")
    result = run_cli(
        "ops", "render-units", "--output", str(tmp_path), "--user", "root",
        "--executable", str(executable), "--env-file", str(tmp_path / "env"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    units = sorted(tmp_path.glob("*.service")) + sorted(tmp_path.glob("*.timer"))
    assert len(units) >= 7
    (tmp_path / "env").write_text("")
    verify = subprocess.run(
        ["systemd-analyze", "verify", *map(str, units)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert verify.returncode == 0, verify.stderr
    assert verify.stderr.strip() == ""


def test_render_units_rejects_an_injected_name(tmp_path: Path) -> None:
    result = run_cli("ops", "render-units", "--output", str(tmp_path), "--user", "root\nUser=x")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_status_json_fails_when_the_broker_is_down(tmp_path: Path) -> None:
    result = run_cli(
        "status", "--json", "--bootstrap-servers", "127.0.0.1:1", "--lake", str(tmp_path),
        "--part", "broker",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["state"] == "fail"


@pytest.mark.parametrize("final", [False, True])
def test_notify_failure_without_webhook_prints_the_notice(tmp_path: Path, final: bool) -> None:
    env = {
        "SERVICE_RESULT": "watchdog",
        "EXIT_CODE": "killed",
        "EXIT_STATUS": "ABRT",
        "UPBIT_PIPELINE_OPS__STATE_DIR": str(tmp_path),
    }
    args = ["ops", "notify-failure", "upbit-pipeline-consumer.service", "--from-env"]
    result = run_cli(*args, *(["--final"] if final else []), "--journal-lines", "0", env=env)
    assert result.returncode == 0, result.stderr
    assert "upbit-pipeline-consumer.service" in result.stdout
    assert "watchdog" in result.stdout
