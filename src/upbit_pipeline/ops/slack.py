"""Posting operational messages to a Slack incoming webhook (failures, recoveries, watchdogs).

Separate from the market alerts' sender (``alerts.sinks.SlackSink``) on purpose: these messages
come from short-lived hooks run by systemd and from the ``ops watch`` loop, are synchronous, few,
and must never raise -- a Slack outage must not turn a crash notice into a second crash.

The webhook URL is a secret: slack-sdk logs request URLs at DEBUG, so its client gets a logger
that drops everything below WARNING, and our own log lines name only the error type.
"""

from __future__ import annotations

import logging

__all__ = ["post_text"]

log = logging.getLogger(__name__)

_SDK_LOG = logging.getLogger("upbit_pipeline.ops.slack_sdk")
_SDK_LOG.setLevel(logging.WARNING)  # its DEBUG lines contain the webhook URL
_MAX_TEXT = 3500  # well under Slack's limit; a message is read on a phone


def post_text(webhook_url: str, text: str, *, timeout_s: int = 10) -> bool:
    """Post ``text``; True when Slack answered 200. 429 is retried (slack-sdk handler)."""
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
    )
    from slack_sdk.webhook import WebhookClient

    client = WebhookClient(
        webhook_url,
        timeout=timeout_s,
        logger=_SDK_LOG,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=3),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )
    if len(text) > _MAX_TEXT:
        text = text[: _MAX_TEXT - 20] + "\n… (truncated)"
    try:
        response = client.send(text=text, unfurl_links=False)
    except Exception as exc:  # network errors: the type only, never the URL
        log.warning("Slack message not sent: %s", type(exc).__name__)
        return False
    if response.status_code != 200:
        log.warning("Slack message refused: HTTP %s", response.status_code)
        return False
    return True
