"""The demo's services as real child processes, started and stopped as systemd would.

Each service is ``python -m upbit_pipeline <command>`` in its own process group, so a Ctrl-C in
the terminal reaches only the demo, which then stops the services in order (SIGTERM, then SIGKILL
after a grace period). Each child also gets SIGTERM from the kernel if the demo itself is killed
(:func:`~upbit_pipeline.service.children.die_with_parent`): no orphans on any path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from upbit_pipeline.errors import TransientError
from upbit_pipeline.service.children import die_with_parent

__all__ = ["ServiceProcess", "child_environment"]

# Environment a demo child keeps from the user's: the Slack webhook (alerts go to Slack when it is
# configured). Every other UPBIT_PIPELINE_* variable would outrank the demo's settings file.
_KEPT = ("UPBIT_PIPELINE_ALERTS__SLACK_WEBHOOK",)


def child_environment() -> dict[str, str]:
    """The user's environment without our settings variables (but with the Slack webhook)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPBIT_PIPELINE_") or k in _KEPT}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class ServiceProcess:
    """One ``upbit-pipeline`` command running as a child process, its output in ``log_file``."""

    name: str
    args: list[str]
    log_file: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> ServiceProcess:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "upbit_pipeline", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_environment(),
                start_new_session=True,  # Ctrl-C reaches the demo, which stops us in order
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl runs, resolved beforehand
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        """Raise with the tail of the service's log when it exited on its own."""
        if self.process is None or self.process.poll() is None:
            return
        tail = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
        raise TransientError(
            f"{self.name} exited with code {self.process.returncode}; see {self.log_file}"
            + ("".join(f"\n  {line}" for line in tail) if tail else "")
        )

    def terminate(self) -> None:
        """Ask the whole process group to stop (SIGTERM); :meth:`wait` collects it."""
        if self.running() and self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def wait(self, grace_s: float) -> int | None:
        """Wait up to ``grace_s`` for the exit, then SIGKILL the group. Returns the exit code."""
        if self.process is None:
            return None
        deadline = time.monotonic() + grace_s
        while self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        return self.process.returncode

    def stop(self, grace_s: float = 15.0) -> int | None:
        self.terminate()
        return self.wait(grace_s)
