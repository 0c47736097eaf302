"""A tiny real service for the watchdog tests: ``python -m tests.ops.liveness_main HANG_FILE``.

Its main loop does 10 ms of "work" per iteration and pings :class:`Liveness`, exactly as the
services do. When ``HANG_FILE`` appears, the loop blocks forever (the hang systemd must catch);
SIGTERM ends it either way (the signal handler raises out of the blocked wait).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

from upbit_pipeline.service import Liveness


def main(hang_file: Path) -> int:
    def stop(*_: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    live = Liveness.from_env()
    live.ready("looping")
    count = [0]
    while True:
        count[0] += 1
        if hang_file.exists():
            threading.Event().wait()  # hung: no more pings from this loop
        time.sleep(0.01)
        live.ping(lambda: f"{count[0]} iterations")


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
