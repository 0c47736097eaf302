"""Plain-text rendering of the report (stdout, the journal under systemd, Airflow task logs).

The first line is the headline, so ``head -1`` of a log tells normal, fallback and no data apart.
"""

from __future__ import annotations

from upbit_pipeline.batch.report.compose import (
    Report,
    fmt_krw,
    fmt_pct,
    kst_window,
    market_label,
    move_time_kst,
    percentile_text,
)

__all__ = ["render_console"]


def render_console(report: Report, *, html_path: str | None = None) -> str:
    """The report as text lines; ``html_path`` (when written) is printed last."""
    prefix = {"normal": "", "fallback": "WARNING: ", "no_data": "NO DATA: "}[report.kind]
    lines = [prefix + report.headline, report.headline_ko]
    lines += [f"  reason: {reason}" for reason in report.reasons]
    if report.shown is not None and report.summary is not None:
        start, end = kst_window(report.shown)
        s = report.summary
        english, korean = fmt_krw(s.total_krw)
        lines += [
            f"Trading day {report.shown}: {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} KST",
            f"Markets {s.markets}: up {s.up}, down {s.down}, flat {s.flat} · "
            f"median volatility {fmt_pct(s.median_vol, signed=False)} daily "
            f"({fmt_pct(s.median_vol_annualized, signed=False, digits=0)} annualised) · "
            f"total volume {english} ({korean})",
            "",
            "Top 10 by realized volatility (percentile vs own last 30 days):",
        ]
        for i, m in enumerate(report.top_vol, 1):
            lines.append(
                f"  {i:2}. {market_label(m)}  {fmt_pct(m.realized_vol, signed=False)} "
                f"({fmt_pct(m.realized_vol_annualized, signed=False, digits=0)} ann.)  "
                f"{percentile_text(m)}"
            )
        lines.append(
            "Top gainers: "
            + (
                ", ".join(f"{market_label(m)} {fmt_pct(m.change)}" for m in report.gainers)
                or "none"
            )
        )
        lines.append(
            "Top losers: "
            + (", ".join(f"{market_label(m)} {fmt_pct(m.change)}" for m in report.losers) or "none")
        )
        lines.append("Largest 1-minute moves:")
        lines += [
            f"  {market_label(m)} {fmt_pct(m.largest_1m_move)} at {move_time_kst(m)}"
            for m in report.moves
        ]
        if report.alerts is not None:
            a = report.alerts
            lines.append(
                f"Real-time alerts (v1): {a.total} in {a.markets} markets "
                f"(price {a.price_move}, volume {a.volume_spike}, flags {a.flags}, "
                f"critical {a.critical})"
            )
        if report.completeness is not None:
            c = report.completeness
            lines.append(
                f"WARNING data completeness: {c.markets_with_holes} of {c.markets} markets have "
                f"holes ({c.missing_in_stream_minutes} min missing in stream, "
                f"{c.missing_in_rest_minutes} missing in REST, {c.mismatched_minutes} mismatched)"
            )
        elif report.completeness_missing:
            lines.append("WARNING data completeness: no completeness rows for this day")
    if html_path is not None:
        lines.append(f"HTML report: {html_path}")
    return "\n".join(lines)
