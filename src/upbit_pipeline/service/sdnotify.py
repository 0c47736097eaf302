"""systemd's notify protocol (``sd_notify``) without libsystemd: READY, WATCHDOG, STATUS, STOPPING.

Why this exists: the units in ``deploy/systemd`` are ``Type=notify`` with ``WatchdogSec=``. systemd
then considers a service started only when it says ``READY=1``, and kills it (``SIGABRT``, result
``watchdog``) when ``WATCHDOG=1`` stops arriving. A process that is alive but stuck (a blocked event
loop, a deadlocked consumer thread) is thereby restarted and reported, which ``Restart=on-failure``
alone never sees.

The protocol is one datagram per message on the ``AF_UNIX``/``SOCK_DGRAM`` socket named by
``$NOTIFY_SOCKET``: newline-separated ``KEY=VALUE`` assignments. A leading ``@`` names a Linux
abstract socket (the ``@`` becomes a NUL byte). ``$WATCHDOG_USEC`` is the watchdog timeout;
``$WATCHDOG_PID``, when set, names the only process the watchdog is meant for. With no
``$NOTIFY_SOCKET`` (a terminal, a test, Docker) every call is a cheap no-op.

**Pings must come from the service's main loop.** :meth:`Liveness.ping` is meant to be called on
every iteration of the loop that does the work; it only sends when half the watchdog period has
passed, so calling it per iteration costs one ``time.monotonic()``. A pinger thread would keep a
hung loop alive forever, which is the failure the watchdog exists to catch.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

__all__ = ["Liveness", "notify"]

log = logging.getLogger(__name__)

_STATUS_ONLY_EVERY_S = 10.0  # STATUS refresh when there is a socket but no watchdog
_MAX_STATUS_CHARS = 400


def _address(raw: str) -> str | None:
    """``$NOTIFY_SOCKET`` -> a path for ``socket.connect``; abstract names start with NUL."""
    if raw.startswith("@"):
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    return None  # vsock:/other schemes are not used on our VMs


def notify(*assignments: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send one message (e.g. ``notify("READY=1", "STATUS=up")``); False when there is no socket.

    For one-off messages (a oneshot's STATUS). Long-running services use :class:`Liveness`,
    which keeps the socket open.
    """
    env = os.environ if environ is None else environ
    address = _address(env.get("NOTIFY_SOCKET", ""))
    if address is None:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.connect(address)
            sock.send("\n".join(assignments).encode(), socket.MSG_DONTWAIT)
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)
            return False
    return True


class Liveness:
    """A service's line to systemd: ``ready()`` once, ``ping()`` every main-loop iteration.

    ``ping(status)`` sends ``WATCHDOG=1`` (plus ``STATUS=``, from the optional callable) when at
    least half of ``WATCHDOG_USEC`` has passed since the last one, so systemd sees two pings per
    period while the loop runs, and none as soon as it stops. ``interval_s`` tells async services
    how long their supervisor may sleep between iterations (a quarter of the period).

    Without ``$NOTIFY_SOCKET`` :attr:`enabled` is False and every method returns at once.
    """

    def __init__(
        self,
        socket_path: str | None,
        watchdog_usec: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._address = _address(socket_path) if socket_path else None
        self.watchdog_s = watchdog_usec / 1e6 if watchdog_usec and self._address else None
        self._clock = clock
        self._every_s = self.watchdog_s / 2 if self.watchdog_s else _STATUS_ONLY_EVERY_S
        self._next = 0.0
        self._sock: socket.socket | None = None
        self.sent = 0  # messages sent (for tests and the status line)
        self.dropped = 0  # messages dropped because the receiver's queue was full

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Liveness:
        """From ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` and ``$WATCHDOG_PID`` (systemd sets them)."""
        env = os.environ if environ is None else environ
        usec: int | None = None
        raw_usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if raw_usec.isdigit() and int(raw_usec) > 0 and (not pid or pid == str(os.getpid())):
            usec = int(raw_usec)
        return cls(env.get("NOTIFY_SOCKET") or None, usec)

    @classmethod
    def disabled(cls) -> Liveness:
        """A Liveness that never sends (in-process use: tests, benchmarks, the demo)."""
        return cls(None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def interval_s(self) -> float | None:
        """How long a supervisor loop may wait between pings; None when nothing listens."""
        if not self.enabled:
            return None
        return self._every_s / 2

    # -- messages --------------------------------------------------------------------------

    def ready(self, status: str | None = None) -> None:
        """The service is up (``READY=1``): systemd runs ExecStartPost= and arms the watchdog."""
        lines = ["READY=1"]
        if status:
            lines.append(_status_line(status))
        if self.watchdog_s:
            lines.append("WATCHDOG=1")
        self._send(lines)
        self._next = self._clock() + self._every_s

    def ping(self, status: Callable[[], str] | None = None) -> None:
        """Call on every main-loop iteration; sends at most every half watchdog period."""
        if self._address is None:
            return
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self._every_s
        lines = ["WATCHDOG=1"] if self.watchdog_s else []
        if status is not None:
            lines.append(_status_line(status()))
        if lines:
            self._send(lines)

    def status(self, text: str) -> None:
        """``STATUS=text`` now (shown by ``systemctl status``)."""
        self._send([_status_line(text)])

    def stopping(self, status: str | None = None) -> None:
        """``STOPPING=1``: the stop is deliberate; no ping is expected from here on."""
        lines = ["STOPPING=1"]
        if status:
            lines.append(_status_line(status))
        self._send(lines)
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send(self, lines: list[str]) -> None:
        if self._address is None:
            return
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.connect(self._address)
                self._sock = sock
            # Never block: a full receive queue (systemd busy, or nobody reading) would otherwise
            # stall the very loop whose liveness this reports. A dropped ping is retried by
            # the next one, half a watchdog period later.
            self._sock.send("\n".join(lines).encode(), socket.MSG_DONTWAIT)
            self.sent += 1
        except BlockingIOError:
            self.dropped += 1
        except OSError as exc:
            # systemd restarted (socket re-created) or it is gone: reconnect on the next send.
            log.warning("sd_notify failed: %s", exc)
            self.close()


def _status_line(text: str) -> str:
    """One line: a newline would start a new assignment and could forge ``READY=1``."""
    flat = " ".join(text.split())
    return f"STATUS={flat[:_MAX_STATUS_CHARS]}"
