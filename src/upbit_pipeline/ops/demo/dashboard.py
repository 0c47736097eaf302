"""The demo's live terminal dashboard (rich): one renderable built from a :class:`Snapshot`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from upbit_pipeline.ops.demo.monitor import Snapshot
from upbit_pipeline.streaming.topics import CHANNELS

__all__ = ["progress_line", "render_dashboard"]

KST = timezone(timedelta(hours=9), "KST")
_SHOWN_ALERTS = 6


def _kst(event_ms: int) -> str:
    return datetime.fromtimestamp(event_ms / 1000, UTC).astimezone(KST).strftime("%H:%M:%S KST")


def _mb(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB"


def render_dashboard(snap: Snapshot, *, source: str, duration_s: float) -> RenderableType:
    """Streams, lake and alerts side by side; the newest alerts at the bottom."""
    stream = Table(title="broker (records since start)", expand=True)
    stream.add_column("topic")
    stream.add_column("records", justify="right")
    stream.add_column("per s", justify="right")
    for channel in CHANNELS:
        stream.add_row(
            f"upbit.{channel}", f"{snap.records[channel]:,}", f"{snap.rates[channel]:,.0f}"
        )
    stream.add_row("upbit.gaps", f"{snap.gaps:,}", "")
    stream.add_row("upbit.deadletter", f"{snap.deadletter:,}", "")

    lake = Table(title="lake consumer", expand=True, show_header=False)
    lake.add_column("what")
    lake.add_column("value", justify="right")
    lake.add_row("committed to the lake", f"{snap.lake_committed:,}")
    lake.add_row("lag (records)", f"{snap.lake_lag:,}")
    lake.add_row("Parquet files", f"{snap.files:,}")
    lake.add_row("size", _mb(snap.file_bytes))
    lake.add_row("alerts raised", f"{len(snap.alerts):,}")

    top = Table.grid(expand=True)
    top.add_column(ratio=3)
    top.add_column(ratio=2)
    top.add_row(stream, lake)

    alerts = Table(title="alerts (newest last)", expand=True)
    alerts.add_column("event time", no_wrap=True)
    alerts.add_column("alert")
    for alert in snap.alerts[-_SHOWN_ALERTS:]:
        alerts.add_row(_kst(alert.event_ms), alert.summary())
    if not snap.alerts:
        alerts.add_row("", Text("none yet: a pump and a volume spike are scheduled", style="dim"))

    left = max(0.0, duration_s - snap.elapsed_s)
    title = f"upbit-pipeline demo · {source} · {snap.elapsed_s:,.0f} s, {left:,.0f} s to go"
    return Panel(Group(top, alerts), title=title, subtitle="Ctrl-C stops everything cleanly")


def progress_line(snap: Snapshot) -> str:
    """One plain line for logs and terminals that cannot redraw (CI, pipes)."""
    return (
        f"{snap.elapsed_s:5.0f} s: {snap.total:,} records "
        f"({', '.join(f'{c} {snap.rates[c]:,.0f}/s' for c in CHANNELS)}), "
        f"lake lag {snap.lake_lag:,}, {snap.files} files, {len(snap.alerts)} alerts"
    )
