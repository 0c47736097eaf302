"""``upbit-pipeline demo``: the whole pipeline on one machine, then batch and the report.

Order of events, and why:

1. The simulator (or, with ``--live``, api.upbit.com) and the embedded broker start first; the
   services need both.
2. The lake consumer, the alert worker and the producer start as separate processes, as they run
   in production (they share only the broker address and a settings file). The producer starts
   last so the other two are already waiting when records arrive.
3. The dashboard shows, for ``--duration`` seconds, what reached the broker, the lake and the
   alert log; a service that dies ends the demo with its log's last lines.
4. The producer stops first; the consumer gets until the lake has caught up with the log, then
   it and the worker stop, and the lake is verified (every offset exactly once).
5. Batch raw -> silver -> gold runs in-process for the simulated UTC day (the simulator still
   serves REST candles), then the daily report (console + HTML, + Slack when configured).

A ``finally`` stops whatever is running, in reverse order, with SIGINT ignored meanwhile: Ctrl-C
is safe at any moment and a second one cannot interrupt the clean-up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from upbit_pipeline.batch import run_batch
from upbit_pipeline.batch.report import run_report
from upbit_pipeline.errors import TransientError
from upbit_pipeline.lake import verify_lake
from upbit_pipeline.ops.demo.dashboard import progress_line, render_dashboard
from upbit_pipeline.ops.demo.monitor import Monitor, Snapshot
from upbit_pipeline.ops.demo.plan import (
    DEMO_FLUSH_S,
    LIVE_URL,
    DemoOptions,
    DemoPaths,
    demo_scenario,
    demo_settings,
    settings_toml,
    wall_offset_s,
)
from upbit_pipeline.ops.demo.processes import ServiceProcess
from upbit_pipeline.settings import Settings, load_settings
from upbit_pipeline.streaming.broker import EmbeddedBroker, free_port

__all__ = ["DemoResult", "run_demo"]

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 30.0
_STOP_GRACE_S = 20.0
_CATCH_UP_S = DEMO_FLUSH_S + 30.0  # the consumer commits at least every flush interval
_PLAIN_PROGRESS_EVERY_S = 10.0


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced; ``exit_code`` is 0 only when every stage did its job."""

    day: date
    paths: DemoPaths
    records: int
    files: int
    alerts: int
    lake_ok: bool
    batch_ok: bool
    report_exit: int
    report_html: str | None

    @property
    def exit_code(self) -> int:
        return 0 if self.lake_ok and self.batch_ok and self.report_exit == 0 else 1


def _wait_for_http(url: str, service: ServiceProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        service.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise TransientError(f"{service.name} did not answer {url} within {timeout_s:g} s")
        time.sleep(0.1)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Demo:
    """The running parts of one demo; :meth:`close` stops them all, whatever state they are in."""

    def __init__(self, options: DemoOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.paths = DemoPaths(options.data_dir)
        self.services: list[ServiceProcess] = []
        self.broker: EmbeddedBroker | None = None
        self.monitor: Monitor | None = None

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def service(self, name: str, args: list[str]) -> ServiceProcess:
        process = ServiceProcess(name, args, self.paths.log(name)).start()
        self.services.append(process)
        self._write_pids()
        return process

    def _write_pids(self) -> None:
        pids = {s.name: s.pid for s in self.services}
        if self.broker is not None and self.broker.process is not None:
            pids["broker"] = self.broker.process.pid
        # Atomic (write, then rename): whoever reads it never sees a half-written file.
        partial = self.paths.pids_file.with_suffix(".json.tmp")
        partial.write_text(json.dumps(pids, indent=1) + "\n", encoding="utf-8")
        partial.replace(self.paths.pids_file)

    def start_source(self) -> str:
        """The Upbit base URL: the simulator's (started here) or the real one."""
        if self.options.live:
            self.say(f"source: real Upbit at {LIVE_URL} (--live)")
            return LIVE_URL
        start_ms = int(time.time() * 1000)
        scenario = demo_scenario(start_ms, self.options.duration_s, self.options.speed)
        self.paths.scenario_file.write_text(json.dumps(scenario, indent=1), encoding="utf-8")
        port = free_port()
        simulator = self.service(
            "simulator",
            [
                *("sim", "--port", str(port), "--markets", str(self.options.markets)),
                *("--seed", str(self.options.seed), "--speed", str(self.options.speed)),
                *("--scenario", str(self.paths.scenario_file)),
            ],
        )
        url = f"http://127.0.0.1:{port}"
        _wait_for_http(f"{url}/v1/market/all", simulator, _START_TIMEOUT_S)
        planted = ", ".join(
            f"{a['kind']} on {a['market']} at "
            f"+{wall_offset_s(start_ms, a['start'], self.options.speed):.0f} s"
            for a in scenario["anomalies"]
        )
        self.say(
            f"simulator: {url}, {self.options.markets} KRW markets, seed {self.options.seed}, "
            f"{self.options.speed:g}x clock; planted: {planted}"
        )
        return url

    def start_broker(self) -> EmbeddedBroker:
        self.broker = EmbeddedBroker(
            port=0, log_file=self.paths.log("broker"), die_with_parent=True
        ).start()
        self._write_pids()
        self.say(f"broker: embedded Tansu at {self.broker.bootstrap_servers} (in memory)")
        return self.broker

    def start_services(self) -> None:
        common = ["--config", str(self.paths.settings_file), "--log-format", "json"]
        self.service("consumer", [*common, "consume"])
        self.service("alert-worker", [*common, "alert"])
        self.service("producer", [*common, "produce"])
        self.say(f"services: consumer, alert worker, producer (logs in {self.paths.logs})")

    def stream(self, settings: Settings) -> Snapshot:
        """Show the dashboard for the demo's duration; return the last snapshot."""
        self.monitor = Monitor(settings, self.paths.lake, self.paths.alerts)
        source = "real Upbit" if self.options.live else "simulator"
        duration = self.options.duration_s
        end = time.monotonic() + duration
        snap = self.monitor.snapshot()
        if self.console.is_terminal:
            board = render_dashboard(snap, source=source, duration_s=duration)
            with Live(board, console=self.console, refresh_per_second=4) as live:
                while time.monotonic() < end:
                    for service in self.services:
                        service.check_alive()
                    snap = self.monitor.snapshot()
                    live.update(render_dashboard(snap, source=source, duration_s=duration))
                    time.sleep(1.0)  # the refresh cadence of the screen
            return snap
        next_line = 0.0
        seen_alerts = 0
        while time.monotonic() < end:
            for service in self.services:
                service.check_alive()
            snap = self.monitor.snapshot()
            for alert in snap.alerts[seen_alerts:]:
                self.say(f"ALERT {alert.summary()}")
            seen_alerts = len(snap.alerts)
            if time.monotonic() >= next_line:
                self.say(progress_line(snap))
                next_line = time.monotonic() + _PLAIN_PROGRESS_EVERY_S
            time.sleep(1.0)
        return snap

    def drain(self) -> Snapshot:
        """Stop the producer, let the lake catch up with the log, stop the consumer and worker."""
        assert self.monitor is not None
        by_name = {s.name: s for s in self.services}
        by_name["producer"].stop(_STOP_GRACE_S)
        deadline = time.monotonic() + _CATCH_UP_S
        snap = self.monitor.snapshot()
        while snap.lake_lag > 0 and time.monotonic() < deadline:
            by_name["consumer"].check_alive()
            time.sleep(0.5)
            snap = self.monitor.snapshot()
        if snap.lake_lag > 0:
            self.say(f"[yellow]the lake is {snap.lake_lag:,} records behind; stopping anyway[/]")
        for name in ("consumer", "alert-worker"):
            by_name[name].terminate()
        for name in ("consumer", "alert-worker"):
            by_name[name].wait(_STOP_GRACE_S)
        snap = self.monitor.snapshot()
        self.monitor.close()
        self.monitor = None
        return snap

    def close(self) -> None:
        with _sigint_ignored():
            if self.monitor is not None:
                with contextlib.suppress(Exception):
                    self.monitor.close()
            for service in reversed(self.services):
                service.terminate()
            for service in reversed(self.services):
                service.wait(_STOP_GRACE_S)
            if self.broker is not None:
                self.broker.stop()


def _quiet_logs() -> None:
    """The dashboard and the summaries are the demo's output; library INFO lines would scroll it."""
    logging.getLogger("upbit_pipeline").setLevel(logging.WARNING)


def run_demo(options: DemoOptions, console: Console | None = None) -> DemoResult:
    """Run the demo end to end (see the module docstring); raises on a service failure."""
    console = console or Console()
    demo = _Demo(options, console)
    demo.paths.reset()
    _quiet_logs()
    demo.say(f"demo data: {demo.paths.root} (emptied at every start)")
    try:
        upbit_url = demo.start_source()
        day = datetime.now(UTC).date()  # the simulator's clock starts now: its UTC trading day
        broker = demo.start_broker()
        values = demo_settings(demo.paths, upbit_url, broker.bootstrap_servers)
        demo.paths.settings_file.write_text(settings_toml(values), encoding="utf-8")
        settings = load_settings(None, values)
        demo.start_services()

        streamed = demo.stream(settings)
        demo.say(progress_line(streamed))
        demo.say("stopping the producer; waiting for the lake to catch up ...")
        final = demo.drain()
        verified = verify_lake(settings.lake.path)
        verdict = "every offset exactly once" if verified.ok else "PROBLEMS (see below)"
        demo.say(
            f"lake: {final.lake_committed:,} records in {final.files} files; verify: {verdict}"
        )
        if not verified.ok:
            demo.say(verified.render())
        if demo.broker is not None:
            demo.broker.stop()

        demo.say(f"batch: raw -> silver -> gold for {day} (UTC trading day, 09:00 KST start) ...")
        batch = run_batch(settings, day, progress=False)
        for marker in batch.markers:
            counts = ", ".join(f"{k} {v:,}" for k, v in marker.counts.items())
            demo.say(
                f"  {marker.step}: {marker.status} in {marker.duration_s:.1f} s"
                + (f" ({counts})" if counts else "")
                + (f": {marker.error}" if marker.error else "")
            )
        demo.close()  # the simulator served batch raw; nothing else needs it

        outputs = ["console", "html"] + (["slack"] if settings.alerts.slack_webhook else [])
        report = run_report(settings, day, outputs)
        result = DemoResult(
            day=day,
            paths=demo.paths,
            records=final.total,
            files=final.files,
            alerts=len(final.alerts),
            lake_ok=verified.ok,
            batch_ok=batch.ok,
            report_exit=report.exit_code,
            report_html=report.html_path,
        )
        console.print(_where_table(result))
        return result
    finally:
        demo.close()


def _where_table(result: DemoResult) -> Table:
    paths = result.paths
    table = Table(title=f"where everything is (day {result.day}, UTC)", show_header=False)
    table.add_column("what")
    table.add_column("where")
    table.add_row("lake (Parquet)", f"{paths.lake}  ({result.files} streamed files)")
    table.add_row("warehouse (DuckDB)", str(paths.warehouse))
    table.add_row("report (HTML)", result.report_html or "not written")
    table.add_row("alert log", f"{paths.alerts}  ({result.alerts} alerts)")
    table.add_row("service logs", str(paths.logs))
    table.add_row("settings", str(paths.settings_file))
    config = f"upbit-pipeline --config {paths.settings_file}"
    table.add_row("try", f"{config} lake verify\n{config} report --date {result.day}")
    return table
