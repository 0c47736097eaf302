"""``run_report``: resolve the day, read gold, compose once, deliver to each output.

Exit codes (``ReportOutcome.exit_code``), so a scheduler tells the cases apart:

====  ===================================================================================
0     normal: the requested day's gold was usable and every requested output was delivered
3     fallback: the requested day was unusable; the report shows the latest usable earlier
      day and says so (first line, amber Slack colour)
4     no data: no usable day within ``max_fallback_days``; a "no data" report was still sent
1     a requested output failed (Slack refused or unreachable after its retries, or the HTML
      could not be written); the other outputs were still produced. This wins over 3 and 4:
      an undelivered report is the thing a scheduler must alert on. (1 is also what the CLI
      uses for any operational failure; 2 stays the CLI's user-error code.)
====  ===================================================================================

Outputs: ``None`` means console and HTML, plus Slack when ``alerts.slack_webhook`` is set.
Naming ``slack`` explicitly without a webhook is a :class:`UserError` (raised before anything
is read), because a report the user asked to send and that silently goes nowhere is the
original bug ("nothing sent") again.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Final, Literal, TextIO

import duckdb

from upbit_pipeline.batch.report.compose import Report, compose
from upbit_pipeline.batch.report.console import render_console
from upbit_pipeline.batch.report.data import (
    GoldDay,
    ReportKind,
    Resolution,
    load_gold_day,
    open_warehouse,
    resolve_day,
)
from upbit_pipeline.batch.report.html import render_html
from upbit_pipeline.batch.report.slack import send_slack, slack_message
from upbit_pipeline.errors import UserError
from upbit_pipeline.lake.layout import report_path
from upbit_pipeline.lake.storage import open_lake
from upbit_pipeline.settings import Settings

__all__ = [
    "EXIT_CODES",
    "EXIT_FAILED",
    "OUTPUTS",
    "ReportOutcome",
    "SlackStatus",
    "report_path",
    "resolve_outputs",
    "run_report",
]

log = logging.getLogger(__name__)

OUTPUTS: Final = ("slack", "console", "html")
EXIT_CODES: Final[dict[ReportKind, int]] = {"normal": 0, "fallback": 3, "no_data": 4}
EXIT_FAILED: Final = 1

SlackStatus = Literal["sent", "failed", "not requested"]


@dataclass(frozen=True)
class ReportOutcome:
    """What ``run_report`` did. ``html_path`` is the written file's path or URL."""

    kind: ReportKind
    requested: date
    shown: date | None
    report: Report
    html_path: str | None = None
    slack: SlackStatus = "not requested"
    console_text: str | None = None
    errors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.errors else EXIT_CODES[self.kind]


def resolve_outputs(settings: Settings, outputs: Sequence[str] | None) -> tuple[str, ...]:
    """Validate ``outputs`` (see the module docstring for ``None`` and a missing webhook)."""
    if outputs is None:
        wanted = ["console", "html"]
        if settings.alerts.slack_webhook is not None:
            wanted.insert(0, "slack")
        return tuple(wanted)
    cleaned = [o.strip().lower() for o in outputs if o.strip()]
    unknown = sorted(set(cleaned) - set(OUTPUTS))
    if unknown or not cleaned:
        raise UserError(f"--to must be a comma list of {', '.join(OUTPUTS)} (got {outputs!r})")
    if "slack" in cleaned and settings.alerts.slack_webhook is None:
        raise UserError(
            "--to slack needs a webhook: set alerts.slack_webhook "
            "(UPBIT_PIPELINE_ALERTS__SLACK_WEBHOOK)"
        )
    return tuple(o for o in OUTPUTS if o in cleaned)


def _read(
    settings: Settings, day: date, max_fallback_days: int
) -> tuple[Resolution, GoldDay | None]:
    lake = open_lake(settings.lake.path)
    with open_warehouse(Path(settings.warehouse.path)) as (con, error):
        resolution = resolve_day(
            lake, con, day, max_fallback_days=max_fallback_days, warehouse_error=error
        )
        if con is None or resolution.shown is None:
            return resolution, None
        try:
            return resolution, load_gold_day(con, resolution.shown)
        except duckdb.Error as exc:  # a schema the report does not know: say so, still send
            reason = f"reading gold for {resolution.shown} failed ({type(exc).__name__})"
            log.exception("report: %s", reason)
            return (
                Resolution("no_data", day, None, resolution.checks, reason),
                None,
            )


def run_report(
    settings: Settings,
    day: date,
    outputs: Sequence[str] | None = None,
    *,
    console: TextIO | None = None,
    max_fallback_days: int = 7,
    generated_at: datetime | None = None,
) -> ReportOutcome:
    """The daily report of UTC trading day ``day``; see the module docstring for exit codes.

    ``console`` is where the console output goes (stdout by default). Never raises for missing
    data or a failed delivery (the outcome says so); raises :class:`UserError` for bad outputs.
    """
    wanted = resolve_outputs(settings, outputs)
    resolution, gold = _read(settings, day, max_fallback_days)
    report = compose(resolution, gold)
    if report.kind != "normal":
        log.warning("report for %s: %s (%s)", day, report.headline, "; ".join(report.reasons))
    errors: list[str] = []

    html_path: str | None = None
    if "html" in wanted:
        lake = open_lake(settings.lake.path)
        rel = report_path(day)
        try:
            lake.write(rel, render_html(report, generated_at=generated_at).encode("utf-8"))
            html_path = f"{lake.url.rstrip('/')}/{rel}"
        except Exception as exc:  # recorded; the other outputs still go out
            errors.append(f"HTML report not written ({type(exc).__name__}: {exc})")

    slack: SlackStatus = "not requested"
    if "slack" in wanted and settings.alerts.slack_webhook is not None:
        result = send_slack(settings.alerts.slack_webhook.get_secret_value(), slack_message(report))
        slack = "sent" if result.ok else "failed"
        if not result.ok:
            errors.append(result.error)

    text: str | None = None
    if "console" in wanted:
        text = render_console(report, html_path=html_path)
        if slack != "not requested":
            text += f"\nSlack: {slack}"
        text += "".join(f"\nERROR: {e}" for e in errors)
        stream = console if console is not None else sys.stdout
        print(text, file=stream, flush=True)
    for error in errors:
        log.error("report for %s: %s", day, error)
    outcome = ReportOutcome(
        kind=report.kind,
        requested=day,
        shown=report.shown,
        report=report,
        html_path=html_path,
        slack=slack,
        console_text=text,
        errors=tuple(errors),
    )
    log.info(
        "report for %s: %s, shown %s, exit %d", day, outcome.kind, outcome.shown, outcome.exit_code
    )
    return outcome
