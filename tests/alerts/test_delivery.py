"""Slack delivery against a local Slack-compatible receiver: pacing, combining, outages."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from tests.fixtures.slack import SlackReceiver
from upbit_pipeline.alerts.delivery import Delivery
from upbit_pipeline.alerts.model import Alert, DeliveryMark
from upbit_pipeline.alerts.sinks import JsonlSink, SlackSink, read_jsonl, slack_blocks


def _alert(i: int) -> Alert:
    return Alert(
        id=f"price_move:KRW-BTC:up:{1_750_000_000_000 + i}",
        rule="price_move",
        market="KRW-BTC",
        korean_name="비트코인",
        severity="warning",
        event_ms=1_750_000_000_000 + i,
        direction="up",
        window_s=60,
        move_pct=5.1,
        threshold_pct=1.5,
        price=147_000_000.0,
        ref_price=140_000_000.0,
    )


def _ids(receiver: SlackReceiver) -> list[str]:
    out = []
    for post in receiver.posts:
        for block in post["blocks"]:
            if block["type"] == "context":
                out.append(block["elements"][0]["text"].rsplit("`", 2)[1])
    return out


async def _wait_for(condition, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_block_kit_message_has_market_name_move_window_price_volume_and_link() -> None:
    text, blocks = slack_blocks([_alert(1)])
    rendered = str(blocks)
    for needle in (
        "KRW-BTC",
        "비트코인",
        "+5.10%",
        "1 min",
        "147,000,000 KRW",
        "https://upbit.com/exchange?code=CRIX.UPBIT.KRW-BTC",
    ):
        assert needle in rendered
    assert "KRW-BTC" in text
    volume = Alert(
        id="v",
        rule="volume_spike",
        market="KRW-ETH",
        severity="critical",
        event_ms=0,
        krw_60s=2e9,
        baseline_krw=1e8,
        ratio=20.0,
        price=5e6,
    )
    assert "2,000,000,000 KRW" in str(slack_blocks([volume])[1])
    _, many = slack_blocks([_alert(i) for i in range(12)])
    assert len(many) <= 50  # Block Kit's limit per message


async def test_one_message_a_second_and_alerts_of_the_same_second_combined(
    slack_receiver: SlackReceiver, tmp_path: Path
) -> None:
    log = JsonlSink(tmp_path / "alerts.jsonl")
    stop = asyncio.Event()
    async with SlackSink(slack_receiver.url) as slack:
        delivery = Delivery(slack.send, log.mark, interval_s=1.0)
        task = asyncio.create_task(delivery.run(stop))
        for i in range(5):
            delivery.submit(_alert(i))
        await _wait_for(lambda: len(slack_receiver.posts) == 1, 5)
        first_at = time.monotonic()
        for i in range(5, 8):
            delivery.submit(_alert(i))
        await _wait_for(lambda: len(slack_receiver.posts) == 2, 5)
        assert time.monotonic() - first_at >= 0.9
        stop.set()
        stats = await task
    assert [len(p["blocks"]) for p in slack_receiver.posts] == [5 * 4 - 1, 3 * 4 - 1]
    assert (stats.delivered, stats.undelivered, stats.messages) == (8, 0, 2)
    _, marks = read_jsonl(tmp_path / "alerts.jsonl")
    assert {m.status for m in marks.values()} == {"delivered"} and len(marks) == 8


async def test_a_slack_outage_never_blocks_detection_and_loses_nothing(
    slack_receiver: SlackReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """429 (with Retry-After), then 500, then recovery; time-scaled from a minute to ~3 s."""
    caplog.set_level(logging.DEBUG)
    marks: list[DeliveryMark] = []
    stop = asyncio.Event()
    slack_receiver.fail(429, retry_after=0.3)
    submitted: list[str] = []
    slowest_submit = 0.0
    async with SlackSink(slack_receiver.url) as slack:
        delivery = Delivery(
            slack.send,
            marks.append,
            interval_s=0.2,
            max_attempts=4,
            backoff_base_s=0.1,
            max_queue=50,
        )
        task = asyncio.create_task(delivery.run(stop))
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < 4.0:  # "detection": an alert every 20 ms
            elapsed = time.monotonic() - start
            if elapsed > 1.5:
                slack_receiver.fail(500)
            if elapsed > 3.0:
                slack_receiver.recover()
            t = time.perf_counter()
            delivery.submit(_alert(i))
            slowest_submit = max(slowest_submit, time.perf_counter() - t)
            submitted.append(_alert(i).id)
            i += 1
            await asyncio.sleep(0.02)
        await _wait_for(lambda: delivery.stats.pending == 0, 20)
        stop.set()
        stats = await task
    assert slowest_submit < 0.005  # submit never waits for Slack
    assert {s for s, _ in slack_receiver.refused} == {429, 500}
    final = {m.id: m for m in marks}
    assert len(marks) == len(final) == len(submitted)  # exactly one final mark per alert
    delivered = {k for k, m in final.items() if m.status == "delivered"}
    undelivered = {k for k, m in final.items() if m.status == "undelivered"}
    assert delivered | undelivered == set(submitted)
    assert delivered == set(_ids(slack_receiver))  # delivered means Slack has it
    assert undelivered and delivered  # the outage cost tries; recovery delivered the rest
    assert stats.retries > 0
    assert all(m.reason for m in final.values() if m.status == "undelivered")
    # Alerts submitted after recovery all got through.
    assert all(final[k].status == "delivered" for k in submitted[-10:])
    # The webhook URL (its secret path) never reached a log line.
    for record in caplog.records:
        assert slack_receiver.secret not in record.getMessage()
    for mark in marks:
        assert slack_receiver.secret not in mark.reason


async def test_a_rejected_message_is_marked_at_once(
    slack_receiver: SlackReceiver,
) -> None:
    marks: list[DeliveryMark] = []
    stop = asyncio.Event()
    slack_receiver.fail(404)
    async with SlackSink(slack_receiver.url) as slack:
        delivery = Delivery(slack.send, marks.append, interval_s=0.05)
        task = asyncio.create_task(delivery.run(stop))
        delivery.submit(_alert(1))
        await _wait_for(lambda: len(marks) == 1, 5)
        stop.set()
        await task
    assert (marks[0].status, marks[0].attempts) == ("undelivered", 1)
    assert "404" in marks[0].reason
