"""``upbit-pipeline demo`` end to end, as a user runs it: a real process, real services, real dbt.

One test interrupts a demo with Ctrl-C (SIGINT) while it streams, checks that nothing it started
survives, then runs the demo again in the same folder to completion and checks what it promises:
lake files that verify, at least one alert, gold tables, the HTML report, and no orphans.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from tests.ops.conftest import poll
from upbit_pipeline.alerts.sinks import read_jsonl
from upbit_pipeline.errors import UserError
from upbit_pipeline.ops.demo import DemoPaths
from upbit_pipeline.ops.demo.plan import (
    MIN_DURATION_S,
    SIM_SPEED,
    WARM_UP_S,
    demo_scenario,
    demo_settings,
    settings_toml,
    wall_offset_s,
)
from upbit_pipeline.ops.demo.processes import child_environment
from upbit_pipeline.settings import load_settings

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pids(root: Path) -> dict[str, int]:
    path = root / "pids.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _demo(root: Path, duration: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "upbit_pipeline", "demo"),
            *("--duration", str(duration), "--data-dir", str(root)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "160"},
    )


def test_demo_survives_ctrl_c_then_runs_to_completion(tmp_path: Path) -> None:
    root = tmp_path / "demo"

    # 1. Ctrl-C while streaming: exit 130, nothing left running.
    first = _demo(root, 120)
    try:
        poll(lambda: "producer" in _pids(root), 60, "the demo to start its producer")
        started = _pids(root)
        assert {"simulator", "broker", "consumer", "alert-worker"} <= set(started)
        first.send_signal(signal.SIGINT)
        output, _ = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, output
    assert "Traceback" not in output, output
    poll(lambda: not any(_alive(pid) for pid in started.values()), 10, "the services to exit")

    # 2. The same folder again, to the end.
    second = _demo(root, 60)
    try:
        output, _ = second.communicate(timeout=400)
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, output
    assert "verify: every offset exactly once" in output, output
    paths = DemoPaths(root)
    trade_files = list((paths.lake / "raw" / "trade").rglob("*.parquet"))
    assert trade_files, output
    alerts, _ = read_jsonl(paths.alerts)
    assert alerts, output
    day = next(line for line in output.splitlines() if "batch: raw -> silver -> gold for" in line)
    day_text = day.split(" for ")[1].split()[0]
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        daily = con.execute(
            "select count(*) from gold_market_daily where trading_date = ?", [day_text]
        ).fetchone()
        assert daily is not None and daily[0] > 0
    assert (paths.lake / "reports" / f"date={day_text}" / "report.html").is_file()
    finished = _pids(root)
    assert not [name for name, pid in finished.items() if _alive(pid)]


def test_demo_anomalies_are_whole_minutes_after_the_warm_up_and_inside_the_window() -> None:
    speed = SIM_SPEED
    for start_ms in (1_764_145_753_145, 1_764_145_740_000, 1_764_145_799_999):
        for duration in (MIN_DURATION_S, 60, 120, 300):
            scenario = demo_scenario(start_ms, duration, speed)
            assert scenario["anomalies"][0]["kind"] == "pump"
            for anomaly in scenario["anomalies"]:
                begin = datetime.fromisoformat(anomaly["start"].replace("Z", "+00:00"))
                assert begin.second == 0 and begin.microsecond == 0, anomaly  # a whole minute
                assert anomaly["duration_s"] == 60.0
                offset = wall_offset_s(start_ms, anomaly["start"], speed)
                assert WARM_UP_S <= offset < duration, (start_ms, duration, anomaly)
        kinds = [a["kind"] for a in demo_scenario(start_ms, 120, speed)["anomalies"]]
        assert kinds == ["pump", "volume_spike"]


def test_the_settings_file_the_demo_writes_loads_to_the_same_values(tmp_path: Path) -> None:
    values = demo_settings(DemoPaths(tmp_path), "http://127.0.0.1:1", "127.0.0.1:2")
    path = tmp_path / "settings.toml"
    path.write_text(settings_toml(values))
    settings = load_settings(path)
    assert settings.upbit.url == "http://127.0.0.1:1"
    assert settings.broker.bootstrap_servers == "127.0.0.1:2"
    assert settings.lake.path == str(tmp_path / "lake")
    assert settings.lake.flush_interval_s == values["lake.flush_interval_s"]
    assert settings.alerts.jsonl_path == tmp_path / "alerts.jsonl"


def test_the_demo_refuses_to_empty_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match=r"thesis\.tex"):
        DemoPaths(tmp_path).reset()
    assert (tmp_path / "thesis.tex").exists()


def test_demo_children_ignore_our_settings_variables_but_keep_the_slack_webhook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UPBIT_PIPELINE_BROKER__BOOTSTRAP_SERVERS", "elsewhere:9092")
    monkeypatch.setenv("UPBIT_PIPELINE_ALERTS__SLACK_WEBHOOK", "https://hooks.example/x")
    env = child_environment()
    assert "UPBIT_PIPELINE_BROKER__BOOTSTRAP_SERVERS" not in env
    assert env["UPBIT_PIPELINE_ALERTS__SLACK_WEBHOOK"] == "https://hooks.example/x"
