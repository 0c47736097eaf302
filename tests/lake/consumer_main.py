"""A lake consumer process for tests: ``python -m tests.lake.consumer_main CONFIG_JSON``.

It shares nothing with the test but the broker address and the lake URL (what production's
``upbit-pipeline consume`` on another host shares). ``crash`` = ``"POINT:N"`` makes the process
``os._exit(CRASH_EXIT)`` at the N-th time it reaches POINT (``before_write``, ``during_write``,
``after_write``, ``after_commit``): a real crash of a real process, not a mock. At
``during_write`` it first writes half the file the way the storage would (a local temp file, or
an unfinished object upload), then dies.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from upbit_pipeline.lake import layout
from upbit_pipeline.lake.sink import LakeSink
from upbit_pipeline.lake.storage import LakeStorage, open_lake
from upbit_pipeline.settings import BrokerSettings, LakeSettings, Settings

CRASH_EXIT = 86
FAST_GROUP = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500}


class CrashAt:
    def __init__(self, storage: LakeStorage, spec: str) -> None:
        point, _, count = spec.partition(":")
        self.storage, self.point, self.left = storage, point, int(count or 1)

    def __call__(self, point: str, path: str = "", data: bytes = b"") -> None:
        if point != self.point:
            return
        self.left -= 1
        if self.left > 0:
            return
        if point == "during_write":
            _half_write(self.storage, path, data)
        print(f"crashing at {point}", file=sys.stderr, flush=True)
        os._exit(CRASH_EXIT)


def _half_write(storage: LakeStorage, path: str, data: bytes) -> None:
    half = data[: len(data) // 2]
    if storage.local:
        full = storage.full(layout.temp_name(path))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as out:
            out.write(half)
            out.flush()
            os.fsync(out.fileno())
    else:
        handle = storage.fs.open(storage.full(path), "wb", block_size=5 * 2**20)
        handle.write(half)  # buffered or partly uploaded, never completed


def main(config: dict[str, Any]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("upbit_pipeline.lake.intent").setLevel(logging.INFO)  # leftovers removed
    settings = Settings(
        broker=BrokerSettings(**config["broker"]),
        lake=LakeSettings(**config["lake"]),
    )
    storage = open_lake(settings.lake.path)
    hook = CrashAt(storage, config["crash"]) if config.get("crash") else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sink = LakeSink(settings, storage=storage, hook=hook, kafka_overrides=FAST_GROUP)
    stats = sink.run(stop)
    print(json.dumps({"records": stats.records, "files": stats.files}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(json.loads(sys.argv[1])))
