"""``upbit-pipeline ops render-units``: systemd units for one install of the pipeline.

Why rendered and not copied: a unit names absolute paths (the venv's ``upbit-pipeline``, the
environment file), a user, and a prefix that lets two installs share a host. The examples in
``deploy/systemd/`` are this renderer's output with the defaults.

What every long-running unit carries, and why:

* ``Type=notify`` + ``WatchdogSec=`` + ``NotifyAccess=main``: started means READY was sent (not
  merely "the process exists"), and a main loop that stops pinging is killed with SIGABRT
  (``PYTHONFAULTHANDLER=1`` makes Python print every thread's stack to the journal first).
* ``Restart=on-failure`` with ``StartLimitIntervalSec``/``StartLimitBurst``: crashes are retried,
  a crash loop ends in the failed state instead of hammering Upbit or the broker.
* ``ExecStopPost=`` runs ``ops notify-failure UNIT --from-env`` after *every* stop; it posts to
  Slack when ``$SERVICE_RESULT`` is not ``success`` (crash, signal, watchdog kill, start
  timeout) and leaves a marker. ``OnFailure=`` alone fires only once systemd gives up restarting,
  so it is kept for that last, louder message (``--final``).
* ``ExecStartPost=`` runs ``ops notify-recovery UNIT`` once READY arrived: if the marker exists,
  it posts that the service is back and removes the marker. Both hooks are ``-`` prefixed: a
  Slack outage must never stop or fail the service itself.
* Hardening: a dedicated ``User=``, ``NoNewPrivileges``, ``ProtectSystem=strict`` (the only
  writable place is ``StateDirectory=``, plus ``ReadWritePaths=`` you add), ``PrivateTmp``,
  ``ProtectHome``, no capabilities. ``SupplementaryGroups=systemd-journal`` lets the failure hook
  quote the last journal lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = ["SERVICES", "UnitOptions", "render_units", "write_units"]

_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}$")
_CALENDAR: Final = re.compile(r"^[A-Za-z0-9*:,./~ -]{1,80}$")


@dataclass(frozen=True)
class _Service:
    key: str
    description: str
    command: str  # after the executable (and --config)
    notify: bool = True  # speaks sd_notify (READY/WATCHDOG)
    start_timeout_s: int = 120
    watchdog_factor: int = 1  # WatchdogSec = options.watchdog_s * factor


SERVICES: Final[tuple[_Service, ...]] = (
    _Service("producer", "Upbit WebSocket -> broker producer", "produce"),
    # A flush uploads up to 128 MiB per partition to GCS synchronously inside the loop.
    _Service("consumer", "broker -> Parquet lake consumer", "consume", watchdog_factor=4),
    # Warm-up reads the lake or 200 REST candles per market before READY: give it time.
    _Service("alerts", "real-time alert worker", "alert", start_timeout_s=600),
    # One gap may take minutes of REST paging; its loop pings between pages.
    _Service("backfill", "gap backfill worker", "backfill", watchdog_factor=2),
    _Service("watch", "application-level watchdogs (stream, consumer)", "ops watch"),
    # The embedded broker is for one-machine installs (production runs Redpanda).
    _Service("broker", "embedded Kafka-protocol broker", "broker --port 9092", notify=False),
)


@dataclass(frozen=True)
class UnitOptions:
    """One install: where the executable is, who runs it, where its settings come from."""

    prefix: str = "upbit-pipeline"
    executable: Path = Path("/opt/upbit-pipeline/venv/bin/upbit-pipeline")
    user: str = "upbit"
    group: str | None = None  # None: the user's name
    env_file: Path | None = Path("/etc/upbit-pipeline/upbit-pipeline.env")
    config_file: Path | None = None
    read_write_paths: tuple[Path, ...] = ()
    watchdog_s: int = 30
    start_limit_burst: int = 5
    start_limit_interval_s: int = 600
    restart_s: int = 5
    journal_group: str | None = "systemd-journal"
    report_calendar: str = "*-*-* 00:30:00 UTC"  # the same as docs/report.md's timer
    services: tuple[str, ...] = field(
        default=("producer", "consumer", "alerts", "backfill", "watch", "broker", "report")
    )

    def check(self) -> None:
        """Raise ValueError for a value that would break or inject into a unit file."""
        for what, value in (("prefix", self.prefix), ("user", self.user)):
            if not _NAME.match(value):
                raise ValueError(f"{what} {value!r}: letters, digits, '.', '_', '-' only")
        if self.group is not None and not _NAME.match(self.group):
            raise ValueError(f"group {self.group!r}: letters, digits, '.', '_', '-' only")
        paths = [self.executable, *self.read_write_paths]
        paths += [p for p in (self.env_file, self.config_file) if p is not None]
        for path in paths:
            if not path.is_absolute() or any(c in str(path) for c in "\n\r\t %$;\"'\\"):
                raise ValueError(f"path {str(path)!r} must be absolute, without spaces or quotes")
        if not _CALENDAR.match(self.report_calendar):
            raise ValueError(f"report calendar {self.report_calendar!r} is not an OnCalendar=")
        known = {s.key for s in SERVICES} | {"report"}
        unknown = sorted(set(self.services) - known)
        if unknown:
            raise ValueError(f"unknown service(s) {unknown}; known: {sorted(known)}")
        if self.watchdog_s < 2:
            raise ValueError("watchdog_s must be at least 2 seconds")

    def unit_name(self, key: str, suffix: str = "service") -> str:
        return f"{self.prefix}-{key}.{suffix}"


def _exec(options: UnitOptions, command: str) -> str:
    config = f" --config {options.config_file}" if options.config_file is not None else ""
    return f"{options.executable}{config} {command}"


def _hardening(options: UnitOptions) -> list[str]:
    lines = [
        f"User={options.user}",
        f"Group={options.group or options.user}",
    ]
    if options.journal_group:
        lines.append(f"SupplementaryGroups={options.journal_group}")
    if options.env_file is not None:
        lines.append(f"EnvironmentFile={options.env_file}")
    lines += [
        "Environment=PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1",
        # ./data (spool, checkpoint, alert log, local lake) lives in /var/lib/PREFIX.
        f"StateDirectory={options.prefix}",
        f"WorkingDirectory=/var/lib/{options.prefix}",
        "UMask=0027",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "CapabilityBoundingSet=",
    ]
    if options.read_write_paths:
        lines.append("ReadWritePaths=" + " ".join(str(p) for p in options.read_write_paths))
    return lines


def _header(text: str) -> list[str]:
    return [
        "# Rendered by `upbit-pipeline ops render-units`; edit the options, not this file.",
        f"# {text}",
    ]


def _service_unit(options: UnitOptions, svc: _Service) -> str:
    name = options.unit_name(svc.key)
    unit = [
        *_header(f"{name}: {svc.description}. Runbook: docs/operations.md"),
        "[Unit]",
        f"Description=upbit-pipeline {svc.description}",
        "After=network-online.target",
        "Wants=network-online.target",
        f"StartLimitIntervalSec={options.start_limit_interval_s}",
        f"StartLimitBurst={options.start_limit_burst}",
        f"OnFailure={options.prefix}-notify@%n.service",
        "",
        "[Service]",
    ]
    if svc.notify:
        unit += [
            "Type=notify",
            "NotifyAccess=main",
            f"WatchdogSec={options.watchdog_s * svc.watchdog_factor}",
        ]
    else:
        unit.append("Type=exec")
    unit += [
        f"ExecStart={_exec(options, svc.command)}",
        f"ExecStartPost=-{_exec(options, 'ops notify-recovery %n')}",
        f"ExecStopPost=-{_exec(options, 'ops notify-failure %n --from-env')}",
        "Restart=on-failure",
        f"RestartSec={options.restart_s}",
        f"TimeoutStartSec={svc.start_timeout_s}",
        "TimeoutStopSec=60",
        *_hardening(options),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(unit)


def _notify_unit(options: UnitOptions) -> str:
    unit = [
        *_header("OnFailure= target: the unit %i gave up restarting (start limit hit)."),
        "[Unit]",
        "Description=upbit-pipeline Slack notice: %i failed for good",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart={_exec(options, 'ops notify-failure %i --final')}",
        "TimeoutStartSec=60",
        *_hardening(options),
        "",
    ]
    return "\n".join(unit)


def _report_units(options: UnitOptions) -> dict[str, str]:
    service = options.unit_name("report")
    timer = options.unit_name("report", "timer")
    service_text = [
        *_header(f"{service}: the daily summary (v2); started by {timer}."),
        "[Unit]",
        "Description=upbit-pipeline daily volatility report (v2)",
        "After=network-online.target",
        "Wants=network-online.target",
        f"OnFailure={options.prefix}-notify@%n.service",
        "",
        "[Service]",
        "Type=oneshot",
        # D = yesterday in UTC (the trading day is 00:00-24:00 UTC), never the host's local
        # yesterday; %% is systemd's escape for a literal %.
        "ExecStart=/bin/sh -c 'exec "
        + _exec(options, 'report --date "$(date -u -d yesterday +%%F)"')
        + "'",
        f"ExecStopPost=-{_exec(options, 'ops notify-failure %n --from-env')}",
        # The report's own exit codes: 3 = fallback, 4 = no data. Both were still delivered
        # and say so in the message; 1 (not delivered) is the failure to be posted.
        "SuccessExitStatus=3 4",
        "TimeoutStartSec=1800",
        *_hardening(options),
        "",
    ]
    timer_text = [
        *_header(f"{timer}: when the daily summary runs (after the UTC trading day closes)."),
        "[Unit]",
        "Description=upbit-pipeline daily volatility report timer",
        "",
        "[Timer]",
        f"OnCalendar={options.report_calendar}",
        "Persistent=true",
        "RandomizedDelaySec=60",
        f"Unit={service}",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ]
    return {service: "\n".join(service_text), timer: "\n".join(timer_text)}


def render_units(options: UnitOptions | None = None) -> dict[str, str]:
    """Unit file name -> text for every selected service, the report pair and the notifier."""
    options = options or UnitOptions()
    options.check()
    units: dict[str, str] = {}
    for svc in SERVICES:
        if svc.key in options.services:
            units[options.unit_name(svc.key)] = _service_unit(options, svc)
    if "report" in options.services:
        units.update(_report_units(options))
    units[f"{options.prefix}-notify@.service"] = _notify_unit(options)
    return units


def write_units(directory: Path, options: UnitOptions | None = None) -> list[Path]:
    """Write :func:`render_units` into ``directory`` (created); returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_units(options).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
