"""Real-time anomaly alerts (v1): observational only, they never trade.

``engine`` decides (pure, event time, deterministic); ``worker`` runs it on the Kafka topics and
hands alerts to ``upbit.alerts``, the lake, the JSONL log and ``delivery`` (Slack, never blocking
detection); ``backtest`` runs the same engine over history. docs/alerts.md explains every rule.
"""

from __future__ import annotations

from upbit_pipeline.alerts.backtest import BacktestResult, run_backtest, run_replay
from upbit_pipeline.alerts.config import MarketRules, RulesConfig, load_rules
from upbit_pipeline.alerts.delivery import Delivery, DeliveryStats
from upbit_pipeline.alerts.engine import AlertEngine, EngineStats
from upbit_pipeline.alerts.model import Alert, DeliveryMark, decode_alert, encode_alert
from upbit_pipeline.alerts.sinks import alerts_dir, read_jsonl, read_lake_alerts
from upbit_pipeline.alerts.worker import AlertWorker, WorkerStats, jsonl_status, run_alert_worker

__all__ = [
    "Alert",
    "AlertEngine",
    "AlertWorker",
    "BacktestResult",
    "Delivery",
    "DeliveryMark",
    "DeliveryStats",
    "EngineStats",
    "MarketRules",
    "RulesConfig",
    "WorkerStats",
    "alerts_dir",
    "decode_alert",
    "encode_alert",
    "jsonl_status",
    "load_rules",
    "read_jsonl",
    "read_lake_alerts",
    "run_alert_worker",
    "run_backtest",
    "run_replay",
]
