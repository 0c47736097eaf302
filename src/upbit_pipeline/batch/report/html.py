"""The report as one self-contained HTML file with two static charts drawn as inline SVG.

Why SVG by hand rather than matplotlib: the charts are a bar chart and a grid of coloured cells,
a few dozen lines of SVG; matplotlib would add a dependency tree (pillow, fonttools, kiwisolver,
contourpy) and, worse, render Korean market names as empty boxes unless a CJK font is installed
and configured on every host. Inline SVG text is drawn by the reader's browser with its own
fonts, the file stays one self-contained document (nothing to copy along), and the output is
deterministic text that tests can parse.

* Volatility bar chart: the top markets' annualised realized volatility, each bar coloured by
  the market's percentile against its own last 30 days.
* Percentile heatmap: markets x recent trading days, each cell the own-percentile of that day
  (blue = calmer than usual, red = more volatile than usual, grey = no value).
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Final

from upbit_pipeline.batch.report.compose import (
    Report,
    fmt_krw,
    fmt_pct,
    kst_window,
    market_label,
    move_time_kst,
    percentile_text,
)
from upbit_pipeline.batch.report.data import MarketDay
from upbit_pipeline.batch.report.slack import COLOURS

__all__ = ["percentile_colour", "percentile_heatmap_svg", "render_html", "volatility_chart_svg"]

_FONT: Final = (
    "font-family:-apple-system,'Segoe UI','Apple SD Gothic Neo','Malgun Gothic',"
    "'Noto Sans KR',sans-serif"
)
_NONE: Final = "#d9d9d9"


def percentile_colour(p: float | None) -> str:
    """Diverging blue (0) - white (50) - red (100); grey for no value."""
    if p is None:
        return _NONE
    t = max(0.0, min(100.0, p)) / 100.0
    low, mid, high = (33, 102, 172), (247, 247, 247), (178, 24, 43)
    a, b, u = (low, mid, t * 2) if t < 0.5 else (mid, high, (t - 0.5) * 2)
    r, g, bl = (round(a[i] + (b[i] - a[i]) * u) for i in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


def _x(value: float) -> str:
    return f"{value:.1f}"


def volatility_chart_svg(report: Report) -> str:
    """Horizontal bars of annualised realized volatility for the report's top markets."""
    rows = [m for m in report.top_vol if m.realized_vol_annualized is not None]
    label_w, bar_w, value_w, row_h, top = 230.0, 420.0, 170.0, 26.0, 34.0
    width = label_w + bar_w + value_w
    height = top + row_h * max(len(rows), 1) + 12
    peak = max((m.realized_vol_annualized or 0.0 for m in rows), default=0.0) or 1.0
    parts = [
        f'<svg id="volatility-chart" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'width="{_x(width)}" height="{_x(height)}" viewBox="0 0 {_x(width)} {_x(height)}" '
        f'role="img" aria-labelledby="vol-title" style="{_FONT}">',
        '<title id="vol-title">변동성 상위 / Annualised realized volatility, top markets</title>',
        '<text x="0" y="18" font-size="14" font-weight="bold">변동성 상위 / Annualised '
        "realized volatility (bar colour: percentile vs own 30 days)</text>",
    ]
    if not rows:
        parts.append(f'<text x="0" y="{_x(top + 16)}" font-size="13">no data</text>')
    for i, m in enumerate(rows):
        y = top + i * row_h
        vol = m.realized_vol_annualized or 0.0
        length = max(1.0, bar_w * vol / peak)
        parts += [
            f'<text x="{_x(label_w - 8)}" y="{_x(y + 17)}" font-size="13" text-anchor="end">'
            f"{escape(market_label(m))}</text>",
            f'<rect class="bar" data-market="{escape(m.market)}" x="{_x(label_w)}" '
            f'y="{_x(y + 4)}" width="{_x(length)}" height="{_x(row_h - 8)}" '
            f'fill="{percentile_colour(m.own_percentile)}" stroke="#555" stroke-width="0.5"/>',
            f'<text x="{_x(label_w + length + 6)}" y="{_x(y + 17)}" font-size="12">'
            f"{escape(fmt_pct(vol, signed=False, digits=0))} · "
            f"{escape('new' if m.own_percentile is None else f'p{m.own_percentile:.0f}')}"
            "</text>",
        ]
    parts.append("</svg>")
    return "\n".join(parts)


def percentile_heatmap_svg(report: Report) -> str:
    """Markets (rows) x trading days (columns), each cell the own-percentile of that day."""
    heat = report.heatmap
    markets = heat.markets if heat else []
    days = heat.days if heat else []
    label_w, cell_w, cell_h, top = 230.0, 46.0, 24.0, 52.0
    width = label_w + cell_w * max(len(days), 1) + 10
    height = top + cell_h * max(len(markets), 1) + 12
    parts = [
        f'<svg id="percentile-heatmap" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'width="{_x(width)}" height="{_x(height)}" viewBox="0 0 {_x(width)} {_x(height)}" '
        f'role="img" aria-labelledby="heat-title" style="{_FONT}">',
        '<title id="heat-title">백분위 히트맵 / Own-percentile of realized volatility, '
        "markets x days</title>",
        '<text x="0" y="18" font-size="14" font-weight="bold">백분위 히트맵 / Percentile vs own '
        "30 days, markets × UTC trading days</text>",
    ]
    if heat is None or not markets:
        parts.append(f'<text x="0" y="{_x(top + 16)}" font-size="13">no data</text>')
    for j, day in enumerate(days):
        x = label_w + j * cell_w + cell_w / 2
        parts.append(
            f'<text x="{_x(x)}" y="{_x(top - 8)}" font-size="11" text-anchor="middle">'
            f"{day:%m-%d}</text>"
        )
    for i, market in enumerate(markets):
        y = top + i * cell_h
        korean = report.names.get(market, (None, None))[0]
        label = f"{market} {korean}" if korean else market
        parts.append(
            f'<text x="{_x(label_w - 8)}" y="{_x(y + 16)}" font-size="12" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        for j, day in enumerate(days):
            value = heat.cells.get((market, day)) if heat else None
            x = label_w + j * cell_w
            dark = value is not None and (value < 15 or value > 85)
            shown = "–" if value is None else f"{value:.0f}"
            parts += [
                f'<rect class="cell" data-market="{escape(market)}" data-day="{day}" '
                f'data-percentile="{"" if value is None else f"{value:.1f}"}" x="{_x(x + 1)}" '
                f'y="{_x(y + 1)}" width="{_x(cell_w - 2)}" height="{_x(cell_h - 2)}" '
                f'fill="{percentile_colour(value)}"/>',
                f'<text x="{_x(x + cell_w / 2)}" y="{_x(y + 16)}" font-size="11" '
                f'text-anchor="middle" fill="{"#fff" if dark else "#222"}">{shown}</text>',
            ]
    parts.append("</svg>")
    return "\n".join(parts)


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report, *, generated_at: datetime | None = None) -> str:
    """The whole report document (UTF-8 text)."""
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    colour = COLOURS[report.kind]
    out = [
        "<!doctype html>",
        '<html lang="ko"><head><meta charset="utf-8">',
        f"<title>Upbit daily report {report.requested}</title>",
        "<style>"
        f"body{{{_FONT};margin:24px;color:#222;max-width:960px}}"
        f".banner{{border-left:8px solid {colour};padding:8px 14px;background:#fafafa}}"
        "table{border-collapse:collapse;margin:8px 0 18px}"
        "td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:14px}"
        ".warn{background:#fff4e5;border-left:6px solid #ECB22E;padding:6px 12px}"
        "</style></head><body>",
        f'<div class="banner {report.kind}" data-kind="{report.kind}">'
        f"<h1>{escape(report.headline)}</h1><p>{escape(report.headline_ko)}</p>",
    ]
    out += [f'<p class="reason">{escape(r)}</p>' for r in report.reasons]
    out.append("</div>")
    if report.shown is None or report.summary is None:
        out.append("<p>데이터 없음 / No usable gold data for this report.</p>")
    else:
        s = report.summary
        start, end = kst_window(report.shown)
        english, korean = fmt_krw(s.total_krw)
        out.append(
            f"<h2>시장 요약 / Market summary — {report.shown} "
            f"({start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} KST)</h2>"
        )
        out.append(
            _table(
                [
                    "상승 / Up",
                    "하락 / Down",
                    "보합 / Flat",
                    "변동성 중앙값 / Median volatility",
                    "총 거래대금 / Total KRW volume",
                ],
                [
                    [
                        f"{s.up} / {s.markets}",
                        f"{s.down} / {s.markets}",
                        str(s.flat),
                        f"{fmt_pct(s.median_vol, signed=False)} daily "
                        f"({fmt_pct(s.median_vol_annualized, signed=False, digits=0)} ann.)",
                        f"{korean} ({english})",
                    ]
                ],
            )
        )
        if report.completeness is not None:
            c = report.completeness
            out.append(
                f'<p class="warn">데이터 누락 경고 / Data completeness warning: '
                f"{c.markets_with_holes} of {c.markets} markets have holes — "
                f"{c.missing_in_stream_minutes} min missing in stream, "
                f"{c.missing_in_rest_minutes} missing in REST, "
                f"{c.mismatched_minutes} mismatched.</p>"
            )
        elif report.completeness_missing:
            out.append(
                '<p class="warn">데이터 누락 경고 / Data completeness warning: '
                "no completeness rows for this day.</p>"
            )
        out.append("<h2>변동성 상위 10 / Top 10 by realized volatility</h2>")
        out.append(f"<figure>{volatility_chart_svg(report)}</figure>")
        out.append(
            _table(
                ["#", "Market", "Daily vol", "Annualised", "Percentile vs own 30 days"],
                [
                    [
                        str(i),
                        market_label(m),
                        fmt_pct(m.realized_vol, signed=False),
                        fmt_pct(m.realized_vol_annualized, signed=False, digits=0),
                        percentile_text(m),
                    ]
                    for i, m in enumerate(report.top_vol, 1)
                ],
            )
        )
        out.append("<h2>백분위 히트맵 / Percentile heatmap</h2>")
        out.append(f"<figure>{percentile_heatmap_svg(report)}</figure>")
        out.append("<h2>상승률 상위 / Top gainers · 하락률 상위 / Top losers</h2>")
        out.append(
            _table(
                ["Gainer", "Change", "Loser", "Change"],
                [
                    [
                        market_label(g) if g else "",
                        fmt_pct(g.change) if g else "",
                        market_label(lo) if lo else "",
                        fmt_pct(lo.change) if lo else "",
                    ]
                    for g, lo in _pairs(report)
                ],
            )
        )
        out.append("<h2>최대 1분 변동 / Largest 1-minute moves</h2>")
        out.append(
            _table(
                ["Market", "Move", "Minute (KST)"],
                [
                    [market_label(m), fmt_pct(m.largest_1m_move), move_time_kst(m)]
                    for m in report.moves
                ],
            )
        )
        if report.alerts is not None:
            a = report.alerts
            out.append("<h2>실시간 알림 (v1) / Real-time alerts (v1)</h2>")
            out.append(
                _table(
                    ["Total", "Markets", "Price", "Volume", "Flags", "Critical"],
                    [
                        [
                            str(a.total),
                            str(a.markets),
                            str(a.price_move),
                            str(a.volume_spike),
                            str(a.flags),
                            str(a.critical),
                        ]
                    ],
                )
            )
    out.append(f"<p><small>generated {escape(when)} · upbit-pipeline</small></p>")
    out.append("</body></html>")
    return "\n".join(out)


def _pairs(report: Report) -> list[tuple[MarketDay | None, MarketDay | None]]:
    n = max(len(report.gainers), len(report.losers))
    return [
        (
            report.gainers[i] if i < len(report.gainers) else None,
            report.losers[i] if i < len(report.losers) else None,
        )
        for i in range(n)
    ]
