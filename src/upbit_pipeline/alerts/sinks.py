"""Where alerts go: console, the JSONL alert log, the lake, and Slack (Block Kit).

* Console and JSONL are local and immediate: written when the alert is decided.
  Delivery: at-least-once lines (a restart that re-decides an alert re-writes it with the same
  ``id``; readers keep the first line per id).
* The lake: ``{lake}/alerts/date=YYYY-MM-DD/alerts-<first event ms>-<hash>.parquet`` (the rule
  is in lake.layout), one file per flushed batch, named from its content so a rewrite replaces
  the file instead of adding one.
* Slack: an incoming webhook (slack-sdk ``AsyncWebhookClient``) with retries disabled in the SDK,
  because :mod:`delivery` owns pacing, retries and the undelivered marks. The webhook URL is a
  secret: the SDK gets a logger that drops its debug lines (which print the URL), and every error
  text we log passes through :func:`redact`.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import msgspec
from slack_sdk.webhook.async_client import AsyncWebhookClient

from upbit_pipeline.alerts.model import Alert, DeliveryMark, decode_alert, market_url
from upbit_pipeline.errors import TerminalError, TransientError
from upbit_pipeline.lake.layout import alert_file_name, alerts_day_dir

__all__ = [
    "ConsoleSink",
    "JsonlSink",
    "SlackError",
    "SlackSink",
    "alerts_dir",
    "read_jsonl",
    "read_lake_alerts",
    "redact",
    "slack_blocks",
    "write_lake_alerts",
]

log = logging.getLogger(__name__)

_SDK_LOG = logging.getLogger("upbit_pipeline.alerts.slack_sdk")
_SDK_LOG.setLevel(logging.WARNING)  # the SDK prints the URL at DEBUG; never let it
_SDK_LOG.propagate = False

_ALERT_COLUMNS = ("id", "rule", "market", "severity", "event_ms", "json")


class ConsoleSink:
    """One human line per alert on stdout (or any text stream)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def write(self, alert: Alert) -> None:
        when = datetime.fromtimestamp(alert.event_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{when}Z {alert.summary()}", file=self.stream, flush=True)


class JsonlSink:
    """The alert log: one JSON alert per line, plus ``{"type":"delivery",...}`` marks.

    ``status`` reads it back (:func:`read_jsonl`) to show undelivered alerts.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("ab")

    def write(self, alert: Alert) -> None:
        self._handle.write(msgspec.json.encode(alert) + b"\n")
        self._handle.flush()

    def mark(self, mark: DeliveryMark) -> None:
        self._handle.write(msgspec.json.encode(mark) + b"\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def read_jsonl(path: Path) -> tuple[list[Alert], dict[str, DeliveryMark]]:
    """(alerts, last delivery mark per alert id) of an alert log; unreadable lines skipped."""
    alerts: list[Alert] = []
    marks: dict[str, DeliveryMark] = {}
    seen: set[str] = set()
    mark_decoder = msgspec.json.Decoder(DeliveryMark)
    if not path.exists():
        return alerts, marks
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            if b'"type":"delivery"' in line:
                mark = mark_decoder.decode(line)
                marks[mark.id] = mark
                continue
            alert = decode_alert(line)
        except msgspec.DecodeError:
            continue
        if alert.id not in seen:
            seen.add(alert.id)
            alerts.append(alert)
    return alerts, marks


# -- lake -------------------------------------------------------------------------------------


def alerts_dir(lake: str, event_ms: int) -> str:
    """``{lake}/alerts/date=YYYY-MM-DD`` for an event time (UTC day); the rule is lake.layout's."""
    day = datetime.fromtimestamp(event_ms / 1000, UTC).date()
    return f"{lake.rstrip('/')}/{alerts_day_dir(day)}"


def write_lake_alerts(lake: str, alerts: Sequence[Alert]) -> list[str]:
    """Write alerts as Parquet, one file per UTC day; returns the paths written.

    Delivery: exactly-once files: the name is derived from the alert ids, so writing the same
    batch again replaces the file; a partial file is never visible (write to .tmp, then move).
    """
    import fsspec  # type: ignore[import-untyped]
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    by_dir: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_dir.setdefault(alerts_dir(lake, alert.event_ms), []).append(alert)
    written = []
    for folder, batch in by_dir.items():
        digest = hashlib.sha256("\n".join(a.id for a in batch).encode()).hexdigest()[:12]
        fs, root = fsspec.core.url_to_fs(folder)
        fs.makedirs(root, exist_ok=True)
        name = f"{root}/{alert_file_name(batch[0].event_ms, digest)}"
        table = pa.table(
            {
                "id": [a.id for a in batch],
                "rule": [a.rule for a in batch],
                "market": [a.market for a in batch],
                "severity": [a.severity for a in batch],
                "event_ms": pa.array([a.event_ms for a in batch], pa.int64()),
                "json": [msgspec.json.encode(a).decode() for a in batch],
            }
        )
        tmp = name + ".tmp"
        with fs.open(tmp, "wb") as handle:
            pq.write_table(table, handle)
        fs.mv(tmp, name)
        written.append(name)
    return written


def read_lake_alerts(lake: str, start_ms: int, end_ms: int) -> list[Alert]:
    """Alerts in the lake with ``start_ms <= event_ms < end_ms`` (deduplicated by id)."""
    import fsspec
    import pyarrow.parquet as pq

    out: dict[str, Alert] = {}
    day_ms = 86_400_000
    for day in range(start_ms // day_ms, (end_ms - 1) // day_ms + 1):
        fs, root = fsspec.core.url_to_fs(alerts_dir(lake, day * day_ms))
        if not fs.exists(root):
            continue
        for name in sorted(fs.find(root)):
            if not name.endswith(".parquet"):
                continue
            with fs.open(name, "rb") as handle:
                column = pq.read_table(handle, columns=["json"]).column("json").to_pylist()
            for text in column:
                alert = decode_alert(text)
                if start_ms <= alert.event_ms < end_ms:
                    out.setdefault(alert.id, alert)
    return sorted(out.values(), key=lambda a: (a.event_ms, a.id))


# -- Slack --------------------------------------------------------------------------------------


def redact(text: str, secret: str | None) -> str:
    """``text`` with the webhook URL (and its path, which is the secret part) replaced."""
    if not secret:
        return text
    text = text.replace(secret, "<webhook>")
    path = secret.split("://", 1)[-1].partition("/")[2]
    return text.replace(path, "<webhook>") if path else text


def _fmt_price(price: float | None) -> str:
    if price is None:
        return "-"
    return f"{price:,.0f}" if price >= 100 else f"{price:,.8g}"


def _alert_blocks(alert: Alert) -> list[dict[str, Any]]:
    name = f" {alert.korean_name}" if alert.korean_name else ""
    icon = {"critical": ":rotating_light:", "warning": ":warning:"}.get(alert.severity, ":bell:")
    link = f"<{market_url(alert.market)}|{alert.market}{name}>"
    when = datetime.fromtimestamp(alert.event_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    fields: list[str]
    if alert.rule == "price_move":
        title = f"{icon} *{link}* price {alert.move_pct:+.2f}% in {(alert.window_s or 0) // 60} min"
        fields = [
            f"*Move*\n{alert.move_pct:+.2f}% (threshold {alert.threshold_pct:.2f}%)",
            f"*Window*\n{(alert.window_s or 0) // 60} min",
            f"*Price*\n{_fmt_price(alert.price)} KRW (from {_fmt_price(alert.ref_price)})",
        ]
    elif alert.rule == "volume_spike":
        title = f"{icon} *{link}* volume {alert.ratio:.1f}x the usual minute"
        fields = [
            f"*KRW volume (60 s)*\n{alert.krw_60s:,.0f} KRW",
            f"*Baseline*\n{alert.baseline_krw:,.0f} KRW/min",
            f"*Price*\n{_fmt_price(alert.price)} KRW",
            "*Window*\n1 min",
        ]
    else:
        title = f"{icon} *{link}* Upbit flag *{alert.flag}* turned on"
        fields = [f"*Rule*\n{alert.rule}", f"*Flag*\n{alert.flag}"]
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": title}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"{alert.severity} · {when} · `{alert.id}`"}],
        },
    ]


def slack_blocks(alerts: Sequence[Alert]) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, Block Kit blocks) of one message combining ``alerts`` (<= 16 alerts)."""
    blocks: list[dict[str, Any]] = []
    for i, alert in enumerate(alerts):
        if i:
            blocks.append({"type": "divider"})
        blocks.extend(_alert_blocks(alert))
    text = "\n".join(alert.summary() for alert in alerts)
    return text[:3000], blocks[:50]


class SlackError(TransientError):
    """A webhook post failed in a way worth retrying; ``retry_after_s`` from a 429."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SlackSink:
    """Posts combined messages to a Slack incoming webhook. Use inside ``async with``."""

    def __init__(self, webhook_url: str, *, timeout_s: int = 10) -> None:
        self._url = webhook_url
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncWebhookClient | None = None

    async def __aenter__(self) -> SlackSink:
        self._session = aiohttp.ClientSession()
        self._client = AsyncWebhookClient(
            self._url,
            timeout=self._timeout_s,
            session=self._session,
            logger=_SDK_LOG,
            retry_handlers=[],
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, alerts: Iterable[Alert]) -> None:
        """Post one message. Raises SlackError (retry) or TerminalError (4xx other than 429)."""
        if self._client is None:
            raise RuntimeError("SlackSink used outside 'async with'")
        text, blocks = slack_blocks(list(alerts))
        try:
            response = await self._client.send(text=text, blocks=blocks, unfurl_links=False)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SlackError(redact(f"{type(exc).__name__}: {exc}", self._url)) from None
        status = response.status_code
        if status == 200:
            return
        if status == 429:
            retry_after = response.headers.get("Retry-After") or response.headers.get("retry-after")
            seconds = _seconds(retry_after)
            raise SlackError("HTTP 429 (rate limited)", seconds)
        if status >= 500:
            raise SlackError(f"HTTP {status}")
        body = redact(str(response.body)[:200], self._url)
        raise TerminalError(f"Slack rejected the message: HTTP {status} {body}")


def _seconds(value: object) -> float | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    try:
        return max(0.0, float(str(value)))
    except (TypeError, ValueError):
        return None
