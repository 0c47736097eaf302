"""The rules file: defaults, tier and market overrides, unknown keys named."""

from __future__ import annotations

from pathlib import Path

import pytest

from upbit_pipeline.alerts.config import load_rules
from upbit_pipeline.errors import ConfigError

RULES = """
[defaults]
cooldown_s = 300
[defaults.volume]
k = 12.0

[tiers.majors]
markets = ["KRW-BTC", "KRW-ETH"]
price = { floors_pct = [1.0, 2.0, 3.0] }
volume = { min_krw = 500_000_000 }

[markets.KRW-BTC]
volume = { k = 6.0 }
cooldown_s = 120
"""


def test_overrides_merge_market_over_tier_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    rules = load_rules(path)
    btc, eth, doge = (rules.for_market(m) for m in ("KRW-BTC", "KRW-ETH", "KRW-DOGE"))
    assert (btc.volume.k, btc.volume.min_krw, btc.cooldown_ms) == (6.0, 500_000_000, 120_000)
    assert (eth.volume.k, eth.volume.min_krw, eth.cooldown_ms) == (12.0, 500_000_000, 300_000)
    assert eth.price.floors_pct == (1.0, 2.0, 3.0)
    assert (doge.volume.k, doge.volume.min_krw, doge.price.floors_pct) == (
        12.0,
        50_000_000,
        (1.5, 3.0, 5.0),
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[defaults.volume]\nkk = 3", "defaults.volume.kk"),
        ("[defaults]\ncooldown = 3", "defaults.cooldown"),
        ("[markets.KRW-BTC]\nvolume = { kk = 3 }", "markets.KRW-BTC: unknown key volume.kk"),
        ("[tiers.a]\nmarkets=['KRW-A']\nprice = { floors_pct = [1.0] }", "tiers.a"),
        ("[alerts]\nx = 1", "alerts"),
    ],
)
def test_unknown_or_invalid_keys_are_errors_naming_the_key(
    tmp_path: Path, text: str, named: str
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_rules(path)


def test_no_file_means_the_documented_defaults() -> None:
    rules = load_rules(None).for_market("KRW-BTC")
    assert rules.price.windows_min == (1, 5, 15)
    assert rules.price.floors_pct == (1.5, 3.0, 5.0)
    assert rules.volume.k == 10.0
    assert rules.cooldown_ms == 600_000
