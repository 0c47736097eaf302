"""Service plumbing shared by every long-running command (a foundation package).

``sdnotify``: systemd's READY/WATCHDOG/STATUS/STOPPING protocol, with the watchdog pinged from
the caller's main loop. ``metrics``: the Prometheus collectors and the ``/metrics`` endpoint.
Foundation means any layer may import it, and it imports nothing of the layers above
(``tests/test_layers.py``), which is why the collectors read stats objects through Protocols.
"""

from __future__ import annotations

from upbit_pipeline.service.metrics import (
    AlertCollector,
    BackfillCollector,
    ConsumerCollector,
    MetricsServer,
    ProducerCollector,
    serve_metrics,
)
from upbit_pipeline.service.sdnotify import Liveness, notify

__all__ = [
    "AlertCollector",
    "BackfillCollector",
    "ConsumerCollector",
    "Liveness",
    "MetricsServer",
    "ProducerCollector",
    "notify",
    "serve_metrics",
]
