"""Settings precedence, validation messages and secret redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from upbit_pipeline.errors import ConfigError
from upbit_pipeline.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for var in list(os.environ):
        if var.startswith("UPBIT_PIPELINE_"):
            monkeypatch.delenv(var)


def test_defaults_are_the_embedded_ones() -> None:
    s = load_settings()
    assert s.upbit.url == "https://api.upbit.com"
    assert s.upbit.rest_base_url == "https://api.upbit.com/v1"
    assert s.upbit.websocket_url == "wss://api.upbit.com/websocket/v1"
    assert s.broker.bootstrap_servers == "127.0.0.1:9092"
    assert s.lake.path == "./data/lake"
    assert s.warehouse.path == Path("data/warehouse.duckdb")
    assert s.alerts.console is True
    assert s.alerts.jsonl_path == Path("data/alerts.jsonl")
    assert s.alerts.slack_webhook is None


def test_plain_http_base_gives_ws_scheme() -> None:
    s = load_settings(overrides={"upbit.url": "http://127.0.0.1:8080/"})
    assert s.upbit.rest_base_url == "http://127.0.0.1:8080/v1"
    assert s.upbit.websocket_url == "ws://127.0.0.1:8080/websocket/v1"


def test_precedence_flags_over_env_over_toml_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[upbit]\nurl = "http://toml:1"\n'
        '[broker]\nbootstrap_servers = "toml:9092"\nsecurity_protocol = "SASL_SSL"\n'
        '[lake]\npath = "gs://bucket/lake"\n'
    )
    monkeypatch.setenv("UPBIT_PIPELINE_BROKER__BOOTSTRAP_SERVERS", "env:9092")
    monkeypatch.setenv("UPBIT_PIPELINE_UPBIT__URL", "http://env:1")
    s = load_settings(toml, {"upbit.url": "http://flag:1", "lake.path": None})
    assert s.upbit.url == "http://flag:1"  # flag beats env and TOML
    assert s.broker.bootstrap_servers == "env:9092"  # env beats TOML
    assert s.broker.security_protocol == "SASL_SSL"  # TOML beats default, sibling keys kept
    assert s.lake.path == "gs://bucket/lake"  # an absent flag (None) does not override


@pytest.mark.parametrize(
    ("toml", "env", "expected"),
    [
        ("[broker]\nbootstrap = 1\n", {}, "unknown setting 'broker.bootstrap'"),
        ("[brokers]\nx = 1\n", {}, "unknown setting 'brokers'"),
        ("", {"UPBIT_PIPELINE_BROKR__X": "1"}, "UPBIT_PIPELINE_BROKR__X"),
        ("", {"UPBIT_PIPELINE_UPBIT__URL": "ftp://x"}, "invalid setting upbit.url"),
        ('[upbit]\nws_format = "XML"\n', {}, "invalid setting upbit.ws_format"),
        ("[upbit\n", {}, "is not valid TOML"),
    ],
)
def test_bad_input_names_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, env: dict[str, str], expected: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(Path("/nonexistent/upbit.toml"))


def test_secrets_are_redacted_and_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = "https://hooks.slack.com/services/T000/B000/SECRETSECRET"
    s = load_settings(overrides={"alerts.slack_webhook": hook, "broker.sasl_password": "hunter2"})
    assert s.alerts.slack_webhook is not None
    assert s.alerts.slack_webhook.get_secret_value() == hook
    dumped = str(s.redacted()) + repr(s) + str(s)
    assert "SECRETSECRET" not in dumped
    assert "hunter2" not in dumped
    monkeypatch.setenv("UPBIT_PIPELINE_ALERTS__SLACK_WEBHOOK", "not-a-url-SECRETSECRET")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "alerts.slack_webhook" in str(info.value)
    assert "SECRETSECRET" not in str(info.value)


def test_every_setting_is_documented() -> None:
    from upbit_pipeline.settings import Settings, _known_keys

    doc = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    missing = [key for key in sorted(_known_keys(Settings)) if f"`{key}`" not in doc]
    assert missing == []
