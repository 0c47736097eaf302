"""What one demo run is: its folder, its settings, and the anomalies the simulator plants.

The demo keeps everything under one folder (``./data/demo`` by default) that it empties at every
start: the embedded broker keeps its log in memory, so offsets start again at 0 and a lake from an
earlier run would collide with the new one. A separate folder also means the demo never touches
the default ``./data`` of a user's own runs.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from upbit_pipeline.errors import UserError

__all__ = [
    "LIVE_URL",
    "MIN_DURATION_S",
    "SIM_SPEED",
    "DemoOptions",
    "DemoPaths",
    "demo_scenario",
    "demo_settings",
    "settings_toml",
    "wall_offset_s",
]

LIVE_URL = "https://api.upbit.com"

# Simulated seconds per wall second. At 4x, a two-minute demo covers eight simulated minutes: a
# warm-up, a +5 % pump minute, a quiet minute and a x20 volume minute fit, with room to spare.
SIM_SPEED = 4.0
MINUTE_MS = 60_000

# Wall seconds before the first anomaly: services start and the alert worker warms up.
WARM_UP_S = 15.0

# The lake consumer's maximum-latency flush in the demo (production default: 60 s), so that files
# appear while the dashboard is on screen.
DEMO_FLUSH_S = 10.0

# Shorter than this, the services are still warming up when the streaming part ends.
MIN_DURATION_S = 30.0

# Pump: KRW-BTC +5 % for one minute (the simulator's triangle, sampled at the minute's middle,
# is at its peak). Volume: the KRW of one KRW-ETH minute x20 (the simulator scales the minute's
# KRW by (1 + size) ** 1.5).
PUMP_MARKET = "KRW-BTC"
PUMP_SIZE = 0.05
VOLUME_MARKET = "KRW-ETH"
VOLUME_FACTOR = 20.0


@dataclass(frozen=True)
class DemoOptions:
    """``duration_s`` is the wall-clock length of the streaming part (batch and report follow)."""

    duration_s: float = 120.0
    markets: int = 20
    seed: int = 1
    live: bool = False
    data_dir: Path = Path("./data/demo")
    speed: float = SIM_SPEED

    def __post_init__(self) -> None:
        if self.duration_s < MIN_DURATION_S:
            raise UserError(
                f"--duration must be at least {MIN_DURATION_S:g} seconds (got {self.duration_s:g})"
            )
        if not 1 <= self.markets <= 400:
            raise UserError(f"--markets must be 1..400 (got {self.markets})")


@dataclass(frozen=True)
class DemoPaths:
    """Every file and folder of one demo run, under ``root``."""

    root: Path

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def alerts(self) -> Path:
        return self.root / "alerts.jsonl"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def settings_file(self) -> Path:
        return self.root / "settings.toml"

    @property
    def scenario_file(self) -> Path:
        return self.root / "scenario.json"

    @property
    def pids_file(self) -> Path:
        """Process ids of everything the demo started, for operators and the demo's own test."""
        return self.root / "pids.json"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def reset(self) -> None:
        """Empty the folder. Refuses a folder that does not look like a demo folder."""
        root = self.root.resolve()
        if root.exists():
            if not root.is_dir():
                raise UserError(f"--data-dir {self.root} exists and is not a folder")
            known = {"lake", "warehouse.duckdb", "warehouse.duckdb.wal", "alerts.jsonl", "logs"}
            known |= {"spool", "settings.toml", "scenario.json", "pids.json", "pids.json.tmp"}
            known |= {"ops", "dbt"}
            strangers = sorted(p.name for p in root.iterdir() if p.name not in known)
            if strangers:
                raise UserError(
                    f"--data-dir {self.root} holds files the demo did not write "
                    f"({', '.join(strangers[:3])}); choose an empty or demo folder"
                )
            shutil.rmtree(root)
        self.logs.mkdir(parents=True)


def demo_scenario(start_ms: int, duration_s: float, speed: float) -> dict[str, Any]:
    """The simulator scenario: a pump minute, then a volume minute, inside the streaming window.

    ``start_ms`` is about when the simulator's clock starts (it runs ``speed`` times faster than
    the wall clock from there). The simulator applies anomalies per simulated minute (sampled at
    the minute's middle), so both are whole minutes on minute boundaries, given as absolute UTC
    times. The pump minute is the first one that starts after the alert worker has warmed up from
    REST candles (about 15 wall seconds on a busy 2-core machine; the worker starts at the live
    edge); the volume minute follows one quiet minute later.
    """
    warm_up_ms = int(WARM_UP_S * speed * 1000)
    pump_ms = -(-(start_ms + warm_up_ms) // MINUTE_MS) * MINUTE_MS  # the next minute boundary
    volume_ms = pump_ms + 2 * MINUTE_MS
    end_ms = start_ms + int(duration_s * speed * 1000)

    def iso(epoch_ms: int) -> str:
        return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat().replace("+00:00", "Z")

    anomalies: list[dict[str, Any]] = [
        {
            "kind": "pump",
            "market": PUMP_MARKET,
            "start": iso(pump_ms),
            "duration_s": 60.0,
            "size": PUMP_SIZE,
        }
    ]
    if volume_ms < end_ms:
        anomalies.append(
            {
                "kind": "volume_spike",
                "market": VOLUME_MARKET,
                "start": iso(volume_ms),
                "duration_s": 60.0,
                "size": VOLUME_FACTOR ** (2 / 3) - 1,
            }
        )
    return {"anomalies": anomalies}


def wall_offset_s(start_ms: int, anomaly_start: str, speed: float) -> float:
    """Wall seconds after ``start_ms`` at which a scenario time comes (for the demo's messages)."""
    at = datetime.fromisoformat(anomaly_start.replace("Z", "+00:00"))
    return (at.timestamp() * 1000 - start_ms) / 1000 / speed


def demo_settings(paths: DemoPaths, upbit_url: str, bootstrap_servers: str) -> dict[str, Any]:
    """The settings every demo process shares, as ``section.key`` -> value (one place)."""
    return {
        "upbit.url": upbit_url,
        "broker.bootstrap_servers": bootstrap_servers,
        "producer.spool_dir": str(paths.spool),
        "lake.path": str(paths.lake),
        "lake.flush_interval_s": DEMO_FLUSH_S,
        "warehouse.path": str(paths.warehouse),
        "alerts.jsonl_path": str(paths.alerts),
        "ops.state_dir": str(paths.root / "ops"),
    }


def settings_toml(settings: dict[str, Any]) -> str:
    """A ``--config`` file of ``section.key`` settings (strings, numbers and booleans only)."""
    sections: dict[str, dict[str, Any]] = {}
    for dotted, value in settings.items():
        section, key = dotted.split(".", 1)
        sections.setdefault(section, {})[key] = value
    lines = ["# Written by `upbit-pipeline demo`: the settings its processes share."]
    for section, values in sections.items():
        lines += ["", f"[{section}]"]
        for key, value in values.items():
            text = str(value).lower() if isinstance(value, bool) else json.dumps(value)
            lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"
