"""The daily volatility report (v2) of one UTC trading day, built from gold.

``run_report(settings, day)`` decides from the gold build marker whether D can be shown, falls
back to the latest usable earlier day (and says so) or reports "no data" -- never silently --
and delivers one composed report to Slack (Block Kit), the console and an HTML file with
charts under ``{lake}/reports/date=D/``. docs/report.md describes contents, fallback rules,
exit codes and scheduling.
"""

from __future__ import annotations

from upbit_pipeline.batch.report.compose import Report, compose
from upbit_pipeline.batch.report.data import (
    DayCheck,
    GoldDay,
    ReportKind,
    Resolution,
    check_day,
    gold_ready,
    load_gold_day,
    open_warehouse,
    resolve_day,
)
from upbit_pipeline.batch.report.html import render_html
from upbit_pipeline.batch.report.run import (
    EXIT_CODES,
    EXIT_FAILED,
    OUTPUTS,
    ReportOutcome,
    report_path,
    resolve_outputs,
    run_report,
)
from upbit_pipeline.batch.report.slack import send_slack, slack_message

__all__ = [
    "EXIT_CODES",
    "EXIT_FAILED",
    "OUTPUTS",
    "DayCheck",
    "GoldDay",
    "Report",
    "ReportKind",
    "ReportOutcome",
    "Resolution",
    "check_day",
    "compose",
    "gold_ready",
    "load_gold_day",
    "open_warehouse",
    "render_html",
    "report_path",
    "resolve_day",
    "resolve_outputs",
    "run_report",
    "send_slack",
    "slack_message",
]
