"""The report as one Slack message: Block Kit, Korean and English labels, a colour per kind.

Block Kit has no colour of its own, so the body sits in one legacy ``attachments`` entry whose
``color`` bar says green (normal), amber (fallback) or red (no data) at a glance; the headline
is the first top-level block *and* the first line of ``text`` (the notification preview), so a
fallback announces itself before anyone opens the message.

Delivery: slack-sdk's ``WebhookClient`` with its retry handlers for 429 (``Retry-After``), 5xx and
connection errors. The webhook URL is a secret: the client gets a logger that drops the SDK's
DEBUG lines (they contain the URL), and our errors name the status or exception type only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from upbit_pipeline.batch.report.compose import (
    Report,
    fmt_krw,
    fmt_pct,
    kst_window,
    market_label,
    move_time_kst,
    percentile_text,
)

__all__ = ["COLOURS", "SlackResult", "send_slack", "slack_message"]

log = logging.getLogger(__name__)

_SDK_LOG = logging.getLogger("upbit_pipeline.batch.report.slack_sdk")
_SDK_LOG.setLevel(logging.WARNING)  # slack-sdk logs request URLs (the secret) at DEBUG

COLOURS: Final = {"normal": "#2EB67D", "fallback": "#ECB22E", "no_data": "#E01E5A"}
_ICONS: Final = {"normal": ":bar_chart:", "fallback": ":warning:", "no_data": ":x:"}
_TEXT_LIMIT: Final = 2900  # Slack: 3000 characters per section text


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:_TEXT_LIMIT]}}


def _fields(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:1900]} for k, v in pairs[:10]],
    }


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:_TEXT_LIMIT]}]}


def _body(report: Report) -> list[dict[str, Any]]:
    if report.shown is None or report.summary is None:
        return [
            _section(
                "*데이터 없음 / No data*\n"
                "오늘의 요약을 만들 gold 데이터가 없습니다. "
                "No usable gold data for this report; the batch needs attention."
            )
        ]
    s = report.summary
    start, end = kst_window(report.shown)
    english, korean = fmt_krw(s.total_krw)
    blocks: list[dict[str, Any]] = [
        _section(
            f"*시장 요약 / Market summary* — {report.shown} "
            f"({start:%m-%d %H:%M} – {end:%m-%d %H:%M} KST)"
        ),
        _fields(
            [
                ("상승 / Up", f"{s.up} / {s.markets}"),
                ("하락 / Down", f"{s.down} / {s.markets}"),
                (
                    "변동성 중앙값 / Median volatility",
                    f"{fmt_pct(s.median_vol, signed=False)} daily "
                    f"({fmt_pct(s.median_vol_annualized, signed=False, digits=0)} ann.)",
                ),
                ("총 거래대금 / Total KRW volume", f"{korean} ({english})"),
            ]
        ),
        {"type": "divider"},
    ]
    lines = [
        f"{i}. *{market_label(m)}* {fmt_pct(m.realized_vol, signed=False)} "
        f"({fmt_pct(m.realized_vol_annualized, signed=False, digits=0)} ann.) · "
        f"{percentile_text(m)}"
        for i, m in enumerate(report.top_vol, 1)
    ]
    blocks.append(
        _section(
            "*변동성 상위 10 / Top 10 by realized volatility* "
            "(자체 30일 대비 백분위 / percentile vs own last 30 days)\n" + ("\n".join(lines) or "-")
        )
    )
    gain = "\n".join(f"{market_label(m)} {fmt_pct(m.change)}" for m in report.gainers) or "-"
    loss = "\n".join(f"{market_label(m)} {fmt_pct(m.change)}" for m in report.losers) or "-"
    blocks.append(
        _fields([("상승률 상위 / Top gainers", gain), ("하락률 상위 / Top losers", loss)])
    )
    moves = "\n".join(
        f"{market_label(m)} {fmt_pct(m.largest_1m_move)} · {move_time_kst(m)}" for m in report.moves
    )
    blocks.append(_section("*최대 1분 변동 / Largest 1-minute moves*\n" + (moves or "-")))
    if report.alerts is not None:
        a = report.alerts
        top = ", ".join(f"{r.market} {r.alert_count}" for r in a.top)
        blocks.append(
            _section(
                f"*실시간 알림 (v1) / Real-time alerts (v1)*: {a.total} "
                f"({a.markets} markets) · 가격 price {a.price_move} · 거래량 volume "
                f"{a.volume_spike} · 지정 flags {a.flags} · 심각 critical {a.critical}"
                + (f"\n{top}" if top else "")
            )
        )
    if report.completeness is not None:
        c = report.completeness
        worst = ", ".join(
            f"{r.market} {r.completeness_pct:.1f}%" if r.completeness_pct is not None else r.market
            for r in c.worst
        )
        blocks.append(
            _section(
                f":warning: *데이터 누락 경고 / Data completeness warning*: "
                f"{c.markets_with_holes} of {c.markets} markets have holes — "
                f"{c.missing_in_stream_minutes} min missing in stream, "
                f"{c.missing_in_rest_minutes} missing in REST, {c.mismatched_minutes} mismatched"
                + (f"\n{worst}" if worst else "")
            )
        )
    elif report.completeness_missing:
        blocks.append(
            _section(
                ":warning: *데이터 누락 경고 / Data completeness warning*: "
                "the completeness model has no rows for this day"
            )
        )
    blocks.append(_context(f"source: gold tables of {report.shown} · UTC trading day, KST times"))
    return blocks


def slack_message(report: Report) -> dict[str, Any]:
    """The webhook payload: ``text`` (preview), headline ``blocks``, one coloured attachment."""
    icon = _ICONS[report.kind]
    head = f"{icon} *{report.headline}*\n{report.headline_ko}"
    top: list[dict[str, Any]] = [_section(head)]
    if report.reasons:
        top.append(_context("\n".join(f"• {r}" for r in report.reasons)))
    text = f"{report.headline}\n{report.headline_ko}"
    return {
        "text": text[:_TEXT_LIMIT],
        "blocks": top,
        "attachments": [{"color": COLOURS[report.kind], "blocks": _body(report)[:50]}],
        "unfurl_links": False,
    }


@dataclass(frozen=True)
class SlackResult:
    """``ok`` when Slack answered 200; ``error`` names the status or exception type only."""

    ok: bool
    error: str = ""


def send_slack(webhook_url: str, message: dict[str, Any], *, timeout_s: int = 10) -> SlackResult:
    """Post ``message``; retried by slack-sdk on 429, 5xx and connection errors."""
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )
    from slack_sdk.webhook import WebhookClient

    client = WebhookClient(
        webhook_url,
        timeout=timeout_s,
        logger=_SDK_LOG,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )
    try:
        response = client.send_dict(message)
    except Exception as exc:  # network errors: report the type only, never the URL
        return SlackResult(False, f"Slack unreachable ({type(exc).__name__})")
    if response.status_code != 200:
        return SlackResult(False, f"Slack refused the report: HTTP {response.status_code}")
    return SlackResult(True)
