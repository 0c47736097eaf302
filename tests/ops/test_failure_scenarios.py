"""The design's three failure scenarios, end to end with real processes:

* producer down: the consumer, the alert worker and the batch keep working;
* consumer down: an alert is sent (``ops watch`` posts to Slack);
* gold failed: the daily report falls back to the previous day, and says so.
"""

from __future__ import annotations

import asyncio
import io
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.fixtures.slack import SlackReceiver
from tests.lake import frames
from tests.ops.conftest import Procs, apoll, pipeline_env, poll, start_sim
from upbit_pipeline.batch import BatchStepError, read_marker, run_batch, run_step
from upbit_pipeline.batch.report import run_report
from upbit_pipeline.lake.storage import open_lake
from upbit_pipeline.ops.status import collect_status
from upbit_pipeline.ops.watch import Watcher, WatchOptions
from upbit_pipeline.settings import Settings, load_settings
from upbit_pipeline.streaming.broker import EmbeddedBroker
from upbit_pipeline.streaming.kafka import producer_config

pytestmark = pytest.mark.integration


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings()


def _lake_files(settings: Settings) -> set[str]:
    return set(open_lake(settings.lake.path).find("raw/trade"))


def test_producer_down_consumer_alerts_and_batch_keep_working(
    broker: EmbeddedBroker, procs: Procs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = start_sim(procs, markets=2)
    env = pipeline_env(sim, broker, tmp_path)
    settings = _settings(env, monkeypatch)
    producer = procs.cli("producer", ["produce"], env)
    consumer = procs.cli("consumer", ["consume"], env)
    alerts = procs.cli("alerts", ["alert"], env)
    poll(lambda: _lake_files(settings), 60, "the first lake files")
    poll(lambda: "alert worker assigned" in alerts.output(), 60, "the alert worker's assignment")

    producer.kill()  # the producer VM is gone
    # Records still reach the topic from elsewhere (the backfill, a restarted producer): the
    # consumer and the alert worker, untouched by the producer's death, take them.
    before = _lake_files(settings)
    kafka = Producer(producer_config(settings.broker))
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    frame = frames.trade("KRW-BTC", now_ms * 1000, now_ms)  # a real SIMPLE trade frame
    kafka.produce("upbit.trade", key=b"KRW-BTC", value=frame, timestamp=now_ms, partition=0)
    assert kafka.flush(10) == 0
    poll(lambda: _lake_files(settings) - before, 30, "a lake file written after the producer died")
    assert consumer.alive() and alerts.alive()
    report = collect_status(settings, parts=["broker", "consumer"])
    assert report.check("broker").state == "ok"

    # The batch talks to Upbit's REST API directly, not to the producer.
    day = (datetime.now(UTC) - timedelta(days=1)).date()
    batch = procs.cli(
        "batch", ["batch", "raw", "--date", day.isoformat(), "--markets", "KRW-BTC"], env
    )
    assert batch.popen.wait(120) == 0, batch.output()[-3000:]
    marker = read_marker(open_lake(settings.lake.path), day, "raw")
    assert marker is not None and marker.ok
    assert consumer.alive() and alerts.alive()


async def test_consumer_down_sends_an_alert(
    broker: EmbeddedBroker,
    procs: Procs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slack_receiver: SlackReceiver,
) -> None:
    sim = start_sim(procs, markets=2)
    env = pipeline_env(sim, broker, tmp_path)
    settings = _settings(env, monkeypatch)
    procs.cli("producer", ["produce"], env)
    consumer = procs.cli("consumer", ["consume"], env)
    await apoll(lambda: _lake_files(settings), 60, "the first lake files")

    watcher = Watcher(
        settings,
        slack_receiver.url,
        WatchOptions(interval_s=0.5, consumer_stall_s=4.0, trades=False),
    )
    stop = threading.Event()
    task = asyncio.create_task(asyncio.to_thread(watcher.run, stop))
    try:
        await apoll(lambda: watcher.checks >= 4, 60, "four watch rounds")
        assert slack_receiver.posts == [], "a healthy consumer must not be reported"

        consumer.kill()  # the consumer VM is gone; the producer keeps writing
        await apoll(
            lambda: any("not progressing" in t for t in slack_receiver.texts()),
            40,
            "the consumer alert at the Slack receiver",
        )
        [text] = [t for t in slack_receiver.texts() if "not progressing" in t]
        assert settings.lake.consumer_group in text and "upbit.trade[" in text

        procs.cli("consumer", ["consume"], env)  # back
        await apoll(
            lambda: any("consumer OK again" in t for t in slack_receiver.texts()),
            60,
            "the recovery message",
        )
    finally:
        stop.set()
        await task


def test_gold_failed_report_falls_back(
    procs: Procs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = start_sim(procs, markets=2)
    settings = Settings(
        upbit={"url": sim.base_url},
        lake={"path": str(tmp_path / "lake")},
        warehouse={"path": tmp_path / "warehouse.duckdb"},
    )
    today = datetime.now(UTC).date()
    day, previous = today - timedelta(days=1), today - timedelta(days=2)
    markets = ["KRW-BTC"]
    assert run_batch(settings, previous, ["raw", "silver", "gold"], markets=markets).ok
    assert run_batch(settings, day, ["raw", "silver"], markets=markets).ok
    with pytest.raises(BatchStepError):  # a real dbt failure of gold for D
        run_step(settings, day, "gold", dbt_vars={"rank_history_days": "not-a-number"})

    outcome = run_report(settings, day, ["console", "html"], console=io.StringIO())
    assert (outcome.kind, outcome.shown, outcome.exit_code) == ("fallback", previous, 3)
    # The report unit treats 3 (fallback, delivered) as success: no crash notice for it.
    from upbit_pipeline.ops.units import render_units

    assert "SuccessExitStatus=3 4" in render_units()["upbit-pipeline-report.service"]
    status = collect_status(settings, parts=["batch", "report"])
    assert status.check("batch").state == "fail"
    assert status.check("batch").data["date"] == day.isoformat()
    assert status.check("report").data["date"] == day.isoformat()
