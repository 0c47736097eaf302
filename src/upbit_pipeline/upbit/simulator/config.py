"""Simulator configuration and scenario files.

A scenario makes a run tell a story the pipeline must notice: anomalies change the tape itself
(deterministically, so the alerting and batch layers can be checked against ``/_sim/truth``), faults
attack the transport (drops, silence, malformed frames, REST 5xx/429 bursts). Times in a scenario
are simulated time: ``"+90s"`` (offset from the simulator's start) or an absolute ISO instant.

Example (TOML; JSON with the same shape works too)::

    [[anomalies]]
    kind = "pump"            # pump | dump | volume_spike
    market = "KRW-BTC"
    start = "+120s"
    duration_s = 300
    size = 0.25              # +25 % at the peak (volume_spike: extra volume factor)

    [faults]
    drop_ws_every_s = 0      # abort every WebSocket every N simulated seconds (0 = never)
    malformed_fraction = 0.0 # share of data frames replaced by broken JSON
    silence = [{ start = "+600s", duration_s = 20 }]
    rest_5xx = [{ start = "+60s", duration_s = 5 }]
    rest_429 = [{ start = "+30s", duration_s = 3 }]
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

__all__ = ["Anomaly", "Faults", "Scenario", "SimConfig", "Window"]

AnomalyKind = Literal["pump", "dump", "volume_spike"]


def _instant(value: object, start_ms: int) -> int:
    """Resolve a scenario time: seconds offset (number or "+90s") or an absolute ISO string."""
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        return start_ms + int(value * 1000)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("+"):
            number = text[1:].removesuffix("s")
            return start_ms + int(float(number) * 1000)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return int(when.timestamp() * 1000)
    raise ValueError(f"not a time: {value!r}")


@dataclass(frozen=True)
class Anomaly:
    """A deterministic change of one market's tape (``start``/``end`` resolved to epoch ms)."""

    kind: AnomalyKind
    market: str
    start: object
    duration_s: float
    size: float

    def window(self, start_ms: int) -> tuple[int, int]:
        begin = _instant(self.start, start_ms)
        return begin, begin + int(self.duration_s * 1000)


@dataclass(frozen=True)
class Window:
    """A fault window in simulated time."""

    start: object
    duration_s: float

    def bounds(self, start_ms: int) -> tuple[int, int]:
        begin = _instant(self.start, start_ms)
        return begin, begin + int(self.duration_s * 1000)


@dataclass(frozen=True)
class Faults:
    """Transport faults; all off by default."""

    drop_ws_every_s: float = 0.0
    malformed_fraction: float = 0.0
    silence: tuple[Window, ...] = ()
    rest_5xx: tuple[Window, ...] = ()
    rest_429: tuple[Window, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """Anomalies and faults of one run."""

    anomalies: tuple[Anomaly, ...] = ()
    faults: Faults = field(default_factory=Faults)

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read a ``.toml`` or ``.json`` scenario file."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        unknown = set(data) - {"anomalies", "faults"}
        if unknown:
            raise ValueError(f"unknown scenario keys: {sorted(unknown)}")
        anomalies = []
        for row in data.get("anomalies", []):
            kind = row["kind"]
            if kind not in ("pump", "dump", "volume_spike"):
                raise ValueError(f"unknown anomaly kind {kind!r}")
            anomalies.append(
                Anomaly(
                    kind=kind,
                    market=str(row["market"]).upper(),
                    start=row.get("start", 0),
                    duration_s=float(row.get("duration_s", 60)),
                    size=float(row.get("size", 0.2)),
                )
            )
        raw = dict(data.get("faults", {}))

        def windows(name: str) -> tuple[Window, ...]:
            return tuple(
                Window(start=w.get("start", 0), duration_s=float(w.get("duration_s", 1)))
                for w in raw.pop(name, [])
            )

        faults = Faults(
            drop_ws_every_s=float(raw.pop("drop_ws_every_s", 0.0)),
            malformed_fraction=float(raw.pop("malformed_fraction", 0.0)),
            silence=windows("silence"),
            rest_5xx=windows("rest_5xx"),
            rest_429=windows("rest_429"),
        )
        if raw:
            raise ValueError(f"unknown fault keys: {sorted(raw)}")
        return cls(anomalies=tuple(anomalies), faults=faults)


@dataclass(frozen=True)
class SimConfig:
    """Everything a simulator run depends on. Same config (with ``start_ms``) -> same data.

    ``speed`` scales simulated time (2.0 = two simulated seconds per wall second);
    ``start_ms`` fixes the simulated start (default: the wall clock at start-up);
    ``scenario`` is a :class:`Scenario`, a path to a TOML/JSON file, or ``None``.
    """

    host: str = "127.0.0.1"
    port: int = 0
    markets: int = 20
    seed: int = 1
    speed: float = 1.0
    scenario: Scenario | str | Path | None = None
    idle_timeout_s: float = 60.0
    start_ms: int | None = None
    history_days: int = 60  # tape exists this many UTC days before the start day
    rate_limits: bool = True
    rest_per_s: int = 10  # per wire group and IP (Upbit: 10/s)
    ws_connects_per_s: int = 5  # per IP (Upbit: 5/s)
    ws_messages_per_s: int = 5  # per connection (Upbit: 5/s and 100/min)
    ws_messages_per_min: int = 100
    ban_base_s: float = 10.0  # first 418 ban; doubles on each repeat
    status_interval_s: float = 10.0  # {"status":"UP"} cadence after a text PING
    error_close_delay_s: float = 0.15  # Upbit closes ~150-180 ms after an error frame
    tick_s: float = 0.02  # wall interval of the stream pump
    compress: bool = True  # permessage-deflate when the client offers it (as Upbit)

    def __post_init__(self) -> None:
        if self.markets < 1:
            raise ValueError("markets must be >= 1")
        if self.speed <= 0:
            raise ValueError("speed must be > 0")

    def load_scenario(self) -> Scenario:
        if self.scenario is None:
            return Scenario()
        if isinstance(self.scenario, Scenario):
            return self.scenario
        return Scenario.load(self.scenario)
