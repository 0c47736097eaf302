"""The CLI as a user runs it: a real process, its stdout, stderr and exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("UPBIT_PIPELINE_")}
    return subprocess.run(
        [sys.executable, "-m", "upbit_pipeline", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=60,
        check=False,
    )


def test_config_show_redacts_secrets_and_applies_flags() -> None:
    secret = "https://hooks.slack.com/services/T1/B2/VERYSECRET"
    result = run_cli(
        "config",
        "show",
        "--slack-webhook",
        secret,
        "--upbit-url",
        "http://127.0.0.1:9",
        "--lake",
        "/tmp/l",
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["alerts"]["slack_webhook"] == "**********"
    assert shown["upbit"]["url"] == "http://127.0.0.1:9"
    assert shown["lake"]["path"] == "/tmp/l"
    assert "VERYSECRET" not in result.stdout + result.stderr


def test_bad_setting_is_one_line_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[broker]\nbootstrap = 'x'\n")
    result = run_cli("--config", str(config), "config", "show")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "broker.bootstrap" in lines[0]


def test_bad_env_value_names_the_key() -> None:
    result = run_cli("config", "show", env={"UPBIT_PIPELINE_UPBIT__WS_FORMAT": "XML"})
    assert result.returncode == 2
    assert "upbit.ws_format" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("sim", "tail", "demo", "config"):
        assert command in result.stdout
