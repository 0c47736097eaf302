"""The Airflow failure callback posts one line to Slack and never logs the webhook URL."""

from __future__ import annotations

import http.server
import json
import logging
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "airflow" / "plugins"))
import upbit_slack


@pytest.fixture
def slack() -> Iterator[tuple[str, list[dict[str, object]]]]:
    received: list[dict[str, object]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/services/T000/B000/SECRETxyz", received
    finally:
        server.shutdown()


def test_failure_is_posted_without_leaking_the_webhook(
    slack: tuple[str, list[dict[str, object]]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, received = slack
    monkeypatch.setenv("UPBIT_PIPELINE_ALERTS__SLACK_WEBHOOK", url)
    context = {
        "task_instance": SimpleNamespace(
            dag_id="upbit_batch_gold", task_id="build_gold", try_number=2
        ),
        "data_interval_start": datetime(2025, 5, 16, tzinfo=UTC),
        "exception": RuntimeError("dbt build failed"),
    }
    with caplog.at_level(logging.DEBUG):
        upbit_slack.slack_on_failure(context)
    assert len(received) == 1
    text = str(received[0]["text"])
    assert "upbit_batch_gold.build_gold" in text and "2025-05-16" in text and "try 2" in text
    assert "SECRETxyz" not in caplog.text


def test_unreachable_slack_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        ok = upbit_slack.post_failure("http://127.0.0.1:9/services/SECRETabc", "x")
    assert ok is False
    assert "SECRETabc" not in caplog.text


def test_no_webhook_no_post(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPBIT_PIPELINE_ALERTS__SLACK_WEBHOOK", raising=False)
    upbit_slack.slack_on_failure({"exception": RuntimeError("x")})
