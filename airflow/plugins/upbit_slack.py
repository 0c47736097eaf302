"""Airflow ``on_failure_callback``: post a failed task to Slack through an incoming webhook.

The webhook comes from the pipeline's settings (``UPBIT_PIPELINE_ALERTS__SLACK_WEBHOOK`` or the
TOML file), the same secret the real-time alerts use. It is never logged: slack-sdk's own logger
prints request URLs at debug level, so the client gets a logger that drops everything below
WARNING, and our messages name only the exception type. A failure to post is logged, never
raised: a broken Slack must not turn a failed task into a crashed callback.

No Airflow import here, so the callback is testable (and usable) without Airflow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

__all__ = ["failure_text", "post_failure", "slack_on_failure"]

log = logging.getLogger(__name__)

_SDK_LOG = logging.getLogger("upbit_airflow.slack_sdk")
_SDK_LOG.setLevel(logging.WARNING)  # its DEBUG lines contain the webhook URL


def failure_text(context: Mapping[str, Any]) -> str:
    """One line naming the DAG, task, UTC trading day, try and error (no secrets, no rows)."""
    ti = context.get("task_instance") or context.get("ti")
    dag_id = getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    try_number = getattr(ti, "try_number", "?")
    interval = context.get("data_interval_start") or context.get("logical_date")
    day = interval.date().isoformat() if interval is not None else "?"
    error = context.get("exception")
    reason = f"{type(error).__name__}: {error}"[:300] if error is not None else "unknown error"
    return (
        f":red_circle: upbit-pipeline batch failed: {dag_id}.{task_id} for {day} "
        f"(try {try_number}) - {reason}"
    )


def post_failure(webhook_url: str, text: str) -> bool:
    """Post ``text``; True when Slack answered 200. 429s are retried by slack-sdk's handler."""
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
    from slack_sdk.webhook import WebhookClient

    client = WebhookClient(
        webhook_url,
        timeout=10,
        logger=_SDK_LOG,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)],
    )
    try:
        response = client.send(text=text)
    except Exception as exc:  # network errors: report the type only, never the URL
        log.warning("Slack failure notice not sent: %s", type(exc).__name__)
        return False
    if response.status_code != 200:
        log.warning("Slack failure notice refused: HTTP %s", response.status_code)
        return False
    return True


def slack_on_failure(context: Mapping[str, Any]) -> None:
    """The DAGs' ``on_failure_callback``."""
    from upbit_pipeline.settings import load_settings

    webhook = load_settings().alerts.slack_webhook
    if webhook is None:
        log.info("no Slack webhook configured; failure not posted")
        return
    post_failure(webhook.get_secret_value(), failure_text(context))
