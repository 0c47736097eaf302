"""The deployment files hold together. ``docker compose config`` validates the compose file
where the Docker client has the compose plugin; without it (this CI) the structure is checked."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def test_compose_has_every_part_with_its_command_and_settings() -> None:
    services = _compose()["services"]
    assert set(services) >= {"redpanda", "console", "producer", "consumer", "alerts", "airflow"}
    for name, command in (("producer", "produce"), ("consumer", "consume"), ("alerts", "alert")):
        svc = services[name]
        assert svc["command"] == [command]
        assert svc["build"]["dockerfile"] == "Dockerfile"
        env = svc["environment"]
        assert env["UPBIT_PIPELINE_BROKER__BOOTSTRAP_SERVERS"] == "redpanda:9092"
        assert svc["depends_on"]["redpanda"]["condition"] == "service_healthy"
        assert svc["restart"] == "unless-stopped"
        assert any(k.endswith("__METRICS_PORT") for k in env)
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert services["airflow"]["build"]["dockerfile"] == "Dockerfile_Worker"
    # Every UPBIT_PIPELINE_ variable must be a known setting: unknown keys stop the services.
    from upbit_pipeline.settings import Settings, _known_keys

    known = _known_keys(Settings)
    for svc in services.values():
        for key in svc.get("environment", {}):
            if key.startswith("UPBIT_PIPELINE_"):
                dotted = key.removeprefix("UPBIT_PIPELINE_").lower().replace("__", ".")
                assert dotted in known, key


def test_dockerfiles_name_what_exists() -> None:
    for name in ("Dockerfile", "Dockerfile_Worker"):
        text = (ROOT / name).read_text(encoding="utf-8")
        for line in text.splitlines():
            if line.startswith("COPY ") and "--from" not in line:
                source = line.split()[-2]
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
        assert "USER " in text, f"{name} must not run as root"


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client")
def test_docker_compose_config_where_available() -> None:
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip("docker client without the compose plugin")
    run = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
