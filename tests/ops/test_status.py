"""``status`` against running components (simulator, broker, producer, lake consumer) and
against stopped ones. Every component is a real ``upbit-pipeline`` process."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.ops.conftest import Procs, pipeline_env, poll, start_sim
from upbit_pipeline.alerts.model import Alert
from upbit_pipeline.alerts.sinks import JsonlSink
from upbit_pipeline.batch.markers import StepMarker, write_marker
from upbit_pipeline.batch.report import run_report
from upbit_pipeline.lake.storage import open_lake
from upbit_pipeline.ops.status import StatusOptions, StatusReport, collect_status
from upbit_pipeline.settings import load_settings
from upbit_pipeline.streaming.broker import EmbeddedBroker

pytestmark = pytest.mark.integration


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings()


def _states(report: StatusReport) -> dict[str, str]:
    return {c.name: c.state for c in report.checks}


def test_status_running_then_stopped(
    broker: EmbeddedBroker, procs: Procs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = start_sim(procs, markets=3)  # speed 1: event time = wall time
    env = pipeline_env(sim, broker, tmp_path)
    settings = _settings(env, monkeypatch)
    producer = procs.cli("producer", ["produce"], env)
    consumer = procs.cli("consumer", ["consume"], env)

    # What the other parts leave behind, written by their own code.
    now_ms = int(time.time() * 1000)
    sink = JsonlSink(settings.alerts.jsonl_path)
    sink.write(Alert(id="a1", rule="price_move", market="KRW-BTC", severity="warning",
                     event_ms=now_ms))  # fmt: skip
    sink.close()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    lake = open_lake(settings.lake.path)
    stamp = datetime.now(UTC).isoformat()
    for step, status in (("raw", "ok"), ("silver", "ok"), ("gold", "failed")):
        error = "dbt failed" if status == "failed" else None
        marker = StepMarker(yesterday.isoformat(), step, status, stamp, stamp, 1.0, error=error)
        write_marker(lake, marker)
    run_report(settings, yesterday, ["html"])

    options = StatusOptions(stale_after_s=30)

    def healthy() -> StatusReport | None:
        report = collect_status(settings, options)
        states = _states(report)
        wanted = ("broker", "channel:trade", "channel:ticker", "channel:orderbook", "lake")
        return report if all(states[n] == "ok" for n in wanted) else None

    report = poll(healthy, 60, "every streaming part healthy", interval_s=0.5)
    assert report.check("channel:trade").data["age_s"] < 30
    assert report.check("consumer").data["group"] == settings.lake.consumer_group
    assert report.check("lake").data["last_file"].startswith("raw/")
    alerts = report.check("alerts")
    assert alerts.state == "ok" and alerts.data["last"]["market"] == "KRW-BTC"
    batch = report.check("batch")
    assert batch.state == "fail" and batch.data["date"] == yesterday.isoformat()
    assert batch.data["steps"]["gold"]["error"] == "dbt failed"
    assert report.check("report").data["date"] == yesterday.isoformat()
    assert '"checks"' in report.to_json()

    # Consumer stopped while the producer runs: records wait at its committed offsets.
    consumer.kill()
    waiting = StatusOptions(stale_after_s=30, consumer_waiting_after_s=1)

    def consumer_behind() -> StatusReport | None:
        r = collect_status(settings, waiting, parts=["consumer"])
        return r if r.check("consumer").state == "warn" else None

    report = poll(consumer_behind, 30, "the stopped consumer to show waiting records", 0.5)
    assert report.check("consumer").data["waiting_partitions"] > 0

    # Producer stopped: the stream goes stale.
    producer.kill()
    stale = StatusOptions(stale_after_s=2)

    def trades_stale() -> StatusReport | None:
        r = collect_status(settings, stale, parts=["channels"])
        return r if r.check("channel:trade").state == "warn" else None

    poll(trades_stale, 20, "the trade channel to go stale", 0.5)

    # Broker stopped: reported as such, the broker-dependent parts unknown, the rest still read.
    broker.stop()
    report = collect_status(settings, options)
    states = _states(report)
    assert states["broker"] == "fail"
    assert states["channel:trade"] == "unknown" and states["consumer"] == "unknown"
    assert states["lake"] == "ok" and states["alerts"] == "ok"
