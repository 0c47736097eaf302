"""service.sdnotify: the NOTIFY_SOCKET datagram protocol and the watchdog pacing of Liveness."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from upbit_pipeline.service import Liveness, notify


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    try:
        yield path, sock
    finally:
        sock.close()


def _received(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(65536).decode())
        except BlockingIOError:
            return out


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ready_then_pings_paced_at_half_the_watchdog(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    clock = Clock()
    live = Liveness(path, 10_000_000, clock=clock)  # WatchdogSec=10
    assert live.enabled and live.watchdog_s == 10.0 and live.interval_s == 2.5
    live.ready("warming up")
    assert _received(sock) == ["READY=1\nSTATUS=warming up\nWATCHDOG=1"]
    for _ in range(120):  # 12 s of a busy loop: one ping per half period (5 s), not per call
        clock.now += 0.1
        live.ping(lambda: "busy")
    assert _received(sock) == ["WATCHDOG=1\nSTATUS=busy"] * 2
    live.stopping()
    assert _received(sock) == ["STOPPING=1"]


def test_abstract_socket_and_one_off_notify() -> None:
    name = f"upbit-test-{secrets.token_hex(6)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    try:
        assert notify("STATUS=hello", environ={"NOTIFY_SOCKET": "@" + name})
        Liveness.from_env({"NOTIFY_SOCKET": "@" + name}).ready()
        assert _received(sock) == ["STATUS=hello", "READY=1"]
    finally:
        sock.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    live = Liveness.from_env({})
    assert not live.enabled and live.interval_s is None
    live.ready()
    live.ping(lambda: "never called")
    live.stopping()
    assert live.sent == 0
    assert not notify("READY=1", environ={})


def test_watchdog_meant_for_another_pid_is_ignored(listener: tuple[str, socket.socket]) -> None:
    path, _ = listener
    other = Liveness.from_env(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    )
    assert other.enabled and other.watchdog_s is None
    mine = Liveness.from_env(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert mine.watchdog_s == 1.0


def test_status_cannot_inject_assignments(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    Liveness(path).status("ok\nREADY=1")
    assert _received(sock) == ["STATUS=ok READY=1"]


def test_a_vanished_socket_does_not_raise(tmp_path: Path) -> None:
    live = Liveness(str(tmp_path / "gone.sock"), 1_000_000)
    live.ready()  # logged, not raised: systemd going away must not crash the service
    assert live.sent == 0


def test_a_full_receive_queue_never_blocks_the_loop(listener: tuple[str, socket.socket]) -> None:
    """Nobody reads the socket (systemd busy): pings are dropped, the caller's loop goes on."""
    path, _sock = listener
    clock = Clock()
    live = Liveness(path, 1_000_000, clock=clock)
    for _ in range(5000):
        clock.now += 1.0
        live.ping()
    assert live.dropped > 0 and live.sent + live.dropped == 5000
