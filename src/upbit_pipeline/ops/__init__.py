"""Operations: systemd units, failure and recovery notices, status, application watchdogs.

``units`` renders the systemd units (``ops render-units``); ``notify`` posts every crash, hang
and recovery (``ops notify-failure``, ``ops notify-recovery``); ``status`` reports the health of
every part (``status``); ``watch`` runs the data-level watchdogs (``ops watch``); ``probe``
reads the broker without trusting watermarks. The CLI commands are thin shells over these.
"""

from __future__ import annotations

from upbit_pipeline.ops.notify import (
    FailureEvent,
    NotifyResult,
    default_state_dir,
    failure_text,
    journal_tail,
    notify_failure,
    notify_recovery,
)
from upbit_pipeline.ops.probe import broker_info, channel_ages, consumer_progress
from upbit_pipeline.ops.slack import post_text
from upbit_pipeline.ops.status import Check, StatusOptions, StatusReport, collect_status
from upbit_pipeline.ops.units import SERVICES, UnitOptions, render_units, write_units
from upbit_pipeline.ops.watch import Notice, Watcher, WatchOptions

__all__ = [
    "SERVICES",
    "Check",
    "FailureEvent",
    "Notice",
    "NotifyResult",
    "StatusOptions",
    "StatusReport",
    "UnitOptions",
    "WatchOptions",
    "Watcher",
    "broker_info",
    "channel_ages",
    "collect_status",
    "consumer_progress",
    "default_state_dir",
    "failure_text",
    "journal_tail",
    "notify_failure",
    "notify_recovery",
    "post_text",
    "render_units",
    "write_units",
]
