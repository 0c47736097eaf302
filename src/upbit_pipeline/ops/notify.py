"""``ops notify-failure`` and ``ops notify-recovery``: a Slack message for every crash and hang.

systemd's ``OnFailure=`` fires only when a unit enters the *failed* state, i.e. after
``Restart=on-failure`` has given up; a service that crashes and restarts fine every ten minutes
would never be reported. So each unit also runs, after every stop::

    ExecStopPost=-upbit-pipeline ops notify-failure %n --from-env

systemd passes ``$SERVICE_RESULT`` (``success``, ``exit-code``, ``signal``, ``core-dump``,
``watchdog``, ``timeout``, ``start-limit-hit``, ...), ``$EXIT_CODE`` (``exited``, ``killed``,
``dumped``) and ``$EXIT_STATUS`` (a number or a signal name). ``success`` is a deliberate stop and
posts nothing; anything else posts unit, result, exit code, host and the last journal lines, and
leaves a marker in the state directory. ``ExecStartPost=`` (run once READY arrived) calls
``notify-recovery``, which posts "back" when that marker exists and removes it.

``OnFailure=`` runs ``notify-failure UNIT --final`` through ``PREFIX-notify@.service``: the last,
loudest message, saying that systemd stopped restarting and a person must act.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from upbit_pipeline.ops.slack import post_text

__all__ = [
    "FailureEvent",
    "NotifyResult",
    "default_state_dir",
    "failure_text",
    "journal_tail",
    "notify_failure",
    "notify_recovery",
    "recovery_text",
]

log = logging.getLogger(__name__)

_UNIT = re.compile(r"^[A-Za-z0-9@:._\\-]{1,200}$")
_RESULTS = {
    "exit-code": "exited with an error",
    "signal": "was killed by a signal",
    "core-dump": "crashed (core dump)",
    "watchdog": "stopped pinging the watchdog (hung) and was killed",
    "timeout": "timed out (start or stop)",
    "start-limit-hit": "hit its start limit",
    "resources": "could not get its resources (files, user, environment)",
    "oom-kill": "was killed by the OOM killer",
    "exec-condition": "failed its exec condition",
    "protocol": "broke the notify protocol",
}
_SECRET_WORDS = re.compile(
    r"(?i)(hooks\.slack\.com/services/\S+|(password|secret|token|webhook)\s*[=:]\s*\S+)"
)


@dataclass(frozen=True)
class FailureEvent:
    """What systemd told us about one stop of ``unit``."""

    unit: str
    result: str = "unknown"
    exit_code: str = ""  # exited / killed / dumped
    exit_status: str = ""  # a number or a signal name
    host: str = ""
    final: bool = False  # OnFailure=: systemd stopped restarting

    @property
    def failed(self) -> bool:
        return self.final or self.result != "success"

    @classmethod
    def from_env(cls, unit: str, environ: Mapping[str, str] | None = None) -> FailureEvent:
        env = os.environ if environ is None else environ
        return cls(
            unit=unit,
            result=env.get("SERVICE_RESULT", "unknown") or "unknown",
            exit_code=env.get("EXIT_CODE", ""),
            exit_status=env.get("EXIT_STATUS", ""),
            host=socket.gethostname(),
        )


@dataclass(frozen=True)
class NotifyResult:
    """What a hook did: ``posted`` to Slack, and the text (printed when there is no webhook)."""

    posted: bool
    text: str
    skipped: bool = False  # nothing to say (a clean stop, or no failure marker)


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$STATE_DIRECTORY`` under systemd (``StateDirectory=``), else ``./data/ops``."""
    env = os.environ if environ is None else environ
    first = env.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(first) / "ops" if first else Path("data/ops")


def journal_tail(unit: str, lines: int = 20, *, timeout_s: float = 5.0) -> list[str]:
    """The unit's last ``lines`` journal lines, or [] when journalctl is missing or fails.

    Lines that look like they carry a secret are masked: a service must never log one, but the
    journal also holds third-party output we do not control.
    """
    binary = shutil.which("journalctl")
    if binary is None or lines <= 0:
        return []
    try:
        run = subprocess.run(
            [binary, "--unit", unit, "--lines", str(lines), "--no-pager", "--output", "cat"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("cannot read the journal of %s: %s", unit, type(exc).__name__)
        return []
    if run.returncode != 0:
        return []
    out = [line for line in run.stdout.splitlines() if line and not line.startswith("-- ")]
    return [_mask(line)[:300] for line in out[-lines:]]


def _mask(line: str) -> str:
    return _SECRET_WORDS.sub(lambda m: m.group(0).split("=")[0].split(":")[0] + "=<redacted>", line)


def _systemctl_state(unit: str) -> dict[str, str]:
    """Result and main exit status from ``systemctl show`` (the OnFailure= path has no env)."""
    binary = shutil.which("systemctl")
    if binary is None:
        return {}
    try:
        run = subprocess.run(
            [binary, "show", unit, "--property=Result,ExecMainCode,ExecMainStatus,NRestarts"],
            capture_output=True,
            text=True,
            timeout=5.0,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if run.returncode != 0:
        return {}
    return dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line)


def failure_text(event: FailureEvent, journal: Sequence[str] = ()) -> str:
    """The Slack message: what stopped, how, where, and what systemd does next."""
    what = _RESULTS.get(event.result, f"stopped ({event.result})")
    exit_part = ""
    if event.exit_code or event.exit_status:
        exit_part = f", exit {event.exit_code or '?'}/{event.exit_status or '?'}"
    if event.final:
        head = (
            f":red_circle: *{event.unit}* on `{event.host}` FAILED for good: systemd stopped "
            f"restarting it (result {event.result}{exit_part}). Action needed: see "
            "docs/operations.md, then `systemctl reset-failed` and `systemctl start`."
        )
    else:
        head = (
            f":warning: *{event.unit}* on `{event.host}` {what} "
            f"(result {event.result}{exit_part}). systemd restarts it (Restart=on-failure)."
        )
    if journal:
        return head + "\nLast log lines:\n```\n" + "\n".join(journal) + "\n```"
    return head


def recovery_text(unit: str, host: str, marker: Mapping[str, object]) -> str:
    since = str(marker.get("first_failure_at", "?"))
    count = marker.get("failures", 1)
    last = marker.get("last_result", "?")
    return (
        f":large_green_circle: *{unit}* on `{host}` is back (READY) after {count} failure(s) "
        f"since {since}; last result {last}."
    )


def _marker_path(state_dir: Path, unit: str) -> Path:
    return state_dir / "failures" / f"{unit}.json"


def _record_failure(state_dir: Path, event: FailureEvent) -> None:
    path = _marker_path(state_dir, event.unit)
    previous: dict[str, object] = {}
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    failures = previous.get("failures", 0)
    marker = {
        "unit": event.unit,
        "first_failure_at": previous.get("first_failure_at", now),
        "last_failure_at": now,
        "failures": (failures if isinstance(failures, int) else 0) + 1,
        "last_result": event.result,
        "event": asdict(event),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(marker), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # no recovery message then; the failure itself is still posted
        log.warning("cannot write the failure marker %s: %s", path, exc)


def _check_unit(unit: str) -> None:
    if not _UNIT.match(unit):
        raise ValueError(f"not a unit name: {unit!r}")


def notify_failure(
    event: FailureEvent,
    webhook: str | None,
    *,
    state_dir: Path | None = None,
    journal_lines: int = 20,
) -> NotifyResult:
    """Post ``event`` when it is a failure (a clean stop posts nothing); mark it for recovery.

    With no webhook the text is returned unposted (the CLI prints it, so the journal has it).
    """
    _check_unit(event.unit)
    if not event.failed:
        return NotifyResult(posted=False, text="", skipped=True)
    if event.final and event.result == "unknown":
        state = _systemctl_state(event.unit)
        event = FailureEvent(
            unit=event.unit,
            result=state.get("Result", "unknown") or "unknown",
            exit_code=state.get("ExecMainCode", ""),
            exit_status=state.get("ExecMainStatus", ""),
            host=event.host or socket.gethostname(),
            final=True,
        )
    if not event.host:
        event = FailureEvent(**{**asdict(event), "host": socket.gethostname()})
    text = failure_text(event, journal_tail(event.unit, journal_lines))
    _record_failure(state_dir or default_state_dir(), event)
    posted = post_text(webhook, text) if webhook else False
    log.info("failure of %s (%s) %s", event.unit, event.result, "posted" if posted else "logged")
    return NotifyResult(posted=posted, text=text)


def notify_recovery(
    unit: str, webhook: str | None, *, state_dir: Path | None = None, host: str | None = None
) -> NotifyResult:
    """After READY: when ``unit`` failed before, post that it is back and clear the marker."""
    _check_unit(unit)
    path = _marker_path(state_dir or default_state_dir(), unit)
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return NotifyResult(posted=False, text="", skipped=True)
    except (OSError, ValueError):
        marker = {}
    text = recovery_text(unit, host or socket.gethostname(), marker)
    posted = post_text(webhook, text) if webhook else False
    if posted or not webhook:
        path.unlink(missing_ok=True)  # unposted with a webhook: try again at the next start
    return NotifyResult(posted=posted, text=text)
