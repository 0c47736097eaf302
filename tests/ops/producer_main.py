"""The real producer service for the watchdog tests: ``python -m tests.ops.producer_main CONFIG``.

It runs :func:`run_producer` -- the function behind ``upbit-pipeline produce`` -- under the
environment the test gives it (``NOTIFY_SOCKET``, ``WATCHDOG_USEC``). With ``hang_after_s`` in
the config it then blocks the producer's event loop with a synchronous sleep, the way a blocking
call in a coroutine would hang a real service: the watchdog pings must stop.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from upbit_pipeline.settings import Settings
from upbit_pipeline.streaming.producer import run_producer


async def _main(config: dict[str, Any]) -> None:
    settings = Settings(**config["settings"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    hang = config.get("hang_after_s")
    if hang is not None:

        def block() -> None:
            Path(config["hung_file"]).touch()  # tells the test when the hang began
            time.sleep(3600)  # blocks the whole event loop

        loop.call_later(float(hang), block)
    await run_producer(settings, stop=stop)


if __name__ == "__main__":
    asyncio.run(_main(json.loads(sys.argv[1])))
