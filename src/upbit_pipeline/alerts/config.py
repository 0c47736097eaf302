"""Alert rules configuration: a TOML file of defaults, per-tier and per-market overrides.

Schema (every key optional; docs/alerts.md explains each default and how to tune it)::

    [defaults]                      # applies to every market
    cooldown_s = 600
    [defaults.price]
    floors_pct = [1.5, 3.0, 5.0]    # one floor per window, same order as windows_min
    [defaults.volume]
    k = 10.0

    [tiers.majors]                  # a named group of markets with its own overrides
    markets = ["KRW-BTC", "KRW-ETH"]
    price = { floors_pct = [1.0, 2.0, 3.0] }

    [markets.KRW-DOGE]              # one market; wins over its tier, which wins over defaults
    volume = { min_krw = 200_000_000 }

Overrides are partial: only the keys given change. Unknown keys are errors that name the key
(``rules file x.toml: unknown key markets.KRW-DOGE.volume.kk``), because a mistyped threshold that
is silently ignored is an alert the user believes is armed and is not.

Units are in the names: ``_pct`` is percent (1.5 = 1.5 %), ``_krw`` is Korean won, ``_s`` seconds,
``_min`` minutes. Times are event time (the exchange's trade timestamps), never the wall clock.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from upbit_pipeline.errors import ConfigError

__all__ = [
    "FlagRule",
    "MarketRules",
    "PriceRule",
    "RuleDefaults",
    "RulesConfig",
    "VolumeRule",
    "load_rules",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceRule(_Strict):
    """Price move: |log return| over each window vs max(floor, vol_multiple * sigma_window).

    sigma_window = sigma_1m * sqrt(window_min), where sigma_1m is an EWMA (half-life
    ``vol_halflife_min``) of squared 1-minute log returns of *previous* minutes.
    """

    enabled: bool = True
    windows_min: tuple[int, ...] = Field(default=(1, 5, 15), min_length=1)
    floors_pct: tuple[float, ...] = (1.5, 3.0, 5.0)
    vol_multiple: float = Field(default=6.0, ge=0.0)
    vol_halflife_min: float = Field(default=120.0, gt=0.0)
    min_vol_minutes: int = Field(
        default=30, ge=0, description="minutes of history before sigma is trusted; floors only"
    )
    rearm_fraction: float = Field(default=0.5, gt=0.0, le=1.0)
    critical_multiple: float = Field(default=2.0, ge=1.0)

    @model_validator(mode="after")
    def _one_floor_per_window(self) -> PriceRule:
        if len(self.floors_pct) != len(self.windows_min):
            raise ValueError("floors_pct needs one value per entry of windows_min")
        if any(w < 1 or w > 60 for w in self.windows_min):
            raise ValueError("windows_min entries must be 1..60 minutes")
        if any(f <= 0 for f in self.floors_pct):
            raise ValueError("floors_pct entries must be > 0")
        return self


class VolumeRule(_Strict):
    """Volume spike: KRW traded in the last 60 s vs the median of previous whole minutes.

    Triggers when value >= max(k * baseline, baseline + mad_multiple * 1.4826 * MAD, min_krw),
    with baseline = max(median, baseline_floor_krw) of the ``baseline_min`` minutes that end
    before the previous minute (so the window under test never feeds its own baseline).
    """

    enabled: bool = True
    k: float = Field(default=10.0, gt=1.0)
    mad_multiple: float = Field(default=0.0, ge=0.0)
    baseline_min: int = Field(default=60, ge=5, le=1440)
    min_baseline_min: int = Field(default=10, ge=1)
    min_krw: float = Field(default=50_000_000.0, ge=0.0)
    baseline_floor_krw: float = Field(default=1_000_000.0, ge=0.0)
    rearm_fraction: float = Field(default=0.5, gt=0.0, le=1.0)
    critical_multiple: float = Field(default=2.0, ge=1.0)


class FlagRule(_Strict):
    """Upbit's own flags turning on: ticker ``market_warning`` and market-list ``market_event``."""

    market_warning: bool = True
    caution: bool = True
    warning: bool = True


class RuleDefaults(_Strict):
    """Everything that can be overridden per tier or market."""

    cooldown_s: float = Field(default=600.0, ge=0.0)
    allowed_lateness_s: float = Field(default=2.0, ge=0.0, le=30.0)
    price: PriceRule = PriceRule()
    volume: VolumeRule = VolumeRule()
    flags: FlagRule = FlagRule()


class _Tier(_Strict):
    markets: tuple[str, ...] = ()
    cooldown_s: float | None = None
    allowed_lateness_s: float | None = None
    price: dict[str, Any] = {}
    volume: dict[str, Any] = {}
    flags: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class MarketRules:
    """The rules in force for one market after merging defaults, tier and market overrides."""

    cooldown_ms: int
    lateness_ms: int
    price: PriceRule
    volume: VolumeRule
    flags: FlagRule


class RulesConfig(_Strict):
    """The whole rules file. ``for_market`` resolves the effective rules of a market."""

    defaults: RuleDefaults = RuleDefaults()
    tiers: dict[str, _Tier] = {}
    markets: dict[str, _Tier] = {}

    @model_validator(mode="after")
    def _overrides_are_valid(self) -> RulesConfig:
        # Validate every override once at load time, so a typo fails at start-up, naming the key.
        for name, tier in self.tiers.items():
            self._merge(tier, f"tiers.{name}")
        for name, tier in self.markets.items():
            if tier.markets:
                raise ValueError(f"markets.{name}: 'markets' is only allowed in a tier")
            self._merge(tier, f"markets.{name}")
        return self

    def _merge(self, tier: _Tier, where: str, base: RuleDefaults | None = None) -> RuleDefaults:
        base = base or self.defaults
        data = base.model_dump()
        for key in ("cooldown_s", "allowed_lateness_s"):
            if getattr(tier, key) is not None:
                data[key] = getattr(tier, key)
        for key in ("price", "volume", "flags"):
            data[key] = {**data[key], **getattr(tier, key)}
        try:
            return RuleDefaults.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"{where}: {_describe(exc)}") from None

    def tier_of(self, market: str) -> str | None:
        """The first tier (file order) that lists ``market``, or None."""
        for name, tier in self.tiers.items():
            if market in tier.markets:
                return name
        return None

    def for_market(self, market: str) -> MarketRules:
        merged = self.defaults
        tier = self.tier_of(market)
        if tier is not None:
            merged = self._merge(self.tiers[tier], f"tiers.{tier}", merged)
        if market in self.markets:
            merged = self._merge(self.markets[market], f"markets.{market}", merged)
        return MarketRules(
            cooldown_ms=round(merged.cooldown_s * 1000),
            lateness_ms=round(merged.allowed_lateness_s * 1000),
            price=merged.price,
            volume=merged.volume,
            flags=merged.flags,
        )

    def max_window_min(self) -> int:
        """Longest price window anywhere in the file (sizes the per-market second ring)."""
        windows = [*self.defaults.price.windows_min]
        for tier in (*self.tiers.values(), *self.markets.values()):
            windows.extend(tier.price.get("windows_min", ()))
        return max(windows)


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"unknown key {key}"
    return f"invalid value for {key}: {first['msg']}"


def load_rules(path: Path | None) -> RulesConfig:
    """Read a rules TOML file (None -> built-in defaults). Raises ConfigError naming the key."""
    if path is None:
        return RulesConfig()
    if not path.is_file():
        raise ConfigError(f"rules file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"rules file {path} is not valid TOML: {exc}") from None
    try:
        return RulesConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "value_error":
            message = str(first["msg"]).removeprefix("Value error, ")
        else:
            message = _describe(exc)
        raise ConfigError(f"rules file {path}: {message}") from None
