"""Fixtures of the ops tests: a Slack-compatible receiver, a test-owned NOTIFY_SOCKET, and
real ``upbit-pipeline`` processes (simulator, producer, consumer, alert worker) stopped at teardown.

The receiver is a copy of ``tests/alerts/conftest.py``'s (kept apart so that the alert tests and
these evolve independently)::

    slack_receiver.url / .posts / .fail(status) / .recover()

``notify_socket`` binds an ``AF_UNIX``/``SOCK_DGRAM`` socket like systemd's and collects what a
service sends; ``procs.start(name, args, env)`` runs a command with its output in a log file.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from upbit_pipeline.streaming.broker import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "upbit-pipeline"


# -- NOTIFY_SOCKET ------------------------------------------------------------------------------


@dataclass
class NotifySocket:
    """What systemd would receive: every datagram, with its arrival time."""

    address: str  # the NOTIFY_SOCKET value ("/path" or "@abstract")
    sock: socket.socket
    messages: list[tuple[float, dict[str, str]]] = field(default_factory=list)

    def drain(self) -> list[tuple[float, dict[str, str]]]:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return self.messages
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def with_key(self, key: str) -> list[tuple[float, dict[str, str]]]:
        return [(t, m) for t, m in self.drain() if key in m]

    def env(self, watchdog_usec: int) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.address, "WATCHDOG_USEC": str(watchdog_usec)}


def _bind(address: str, path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    return sock


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    path = str(tmp_path / "notify.sock")
    sock = _bind(path, path)
    try:
        yield NotifySocket(path, sock)
    finally:
        sock.close()


@pytest.fixture
def abstract_notify_socket() -> Iterator[NotifySocket]:
    name = f"upbit-test-{secrets.token_hex(6)}"
    sock = _bind("@" + name, "\0" + name)
    try:
        yield NotifySocket("@" + name, sock)
    finally:
        sock.close()


# -- processes ----------------------------------------------------------------------------------


def poll(
    condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.05
) -> Any:
    """Poll until ``condition()`` is truthy; return it. Fail naming ``what`` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


async def apoll(
    condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.05
) -> Any:
    """The same for async tests (keeps the event loop, and in-process servers, running)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(interval_s)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        if self.alive():
            self.popen.kill()
            self.popen.wait(10)

    def stop(self, timeout_s: float = 20.0) -> int:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        return int(self.popen.returncode)


@dataclass
class Procs:
    tmp: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.tmp / f"{name}-{len(self.started)}.log"
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("UPBIT_PIPELINE_", "NOTIFY_"))
        }
        base.pop("WATCHDOG_USEC", None)
        base["PYTHONPATH"] = str(ROOT)
        with log.open("wb") as out:
            popen = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.tmp,
                env={**base, **(env or {})},
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.started.append(proc)
        return proc

    def cli(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        return self.start(name, [str(BIN), "--log-format", "json", *args], env)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    procs = Procs(tmp_path)
    try:
        yield procs
    finally:
        for proc in reversed(procs.started):
            proc.stop(10)


@dataclass(frozen=True)
class Sim:
    base_url: str
    proc: Proc


def start_sim(procs: Procs, markets: int = 3, speed: float = 1.0) -> Sim:
    """``upbit-pipeline sim`` as its own process (sync tests cannot serve an in-process one)."""
    port = free_port()
    proc = procs.cli(
        "sim", ["sim", "--port", str(port), "--markets", str(markets), "--speed", str(speed)]
    )
    wait_for_port("127.0.0.1", port, 20)
    return Sim(f"http://127.0.0.1:{port}", proc)


def pipeline_env(sim: Sim, broker: Any, tmp: Path, **extra: str) -> dict[str, str]:
    """Settings for every component of one test install, as systemd's EnvironmentFile= would."""
    env = {
        "UPBIT_PIPELINE_UPBIT__URL": sim.base_url,
        "UPBIT_PIPELINE_BROKER__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "UPBIT_PIPELINE_PRODUCER__SPOOL_DIR": str(tmp / "spool"),
        "UPBIT_PIPELINE_PRODUCER__BACKFILL": "false",
        "UPBIT_PIPELINE_LAKE__PATH": str(tmp / "lake"),
        "UPBIT_PIPELINE_LAKE__FLUSH_INTERVAL_S": "0.5",
        "UPBIT_PIPELINE_ALERTS__JSONL_PATH": str(tmp / "alerts.jsonl"),
        "UPBIT_PIPELINE_ALERTS__CONSOLE": "false",
        "UPBIT_PIPELINE_WAREHOUSE__PATH": str(tmp / "warehouse.duckdb"),
    }
    env.update(extra)
    return env
