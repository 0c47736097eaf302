"""Rendered systemd units pass ``systemd-analyze verify`` with nothing on stderr.

verify exits 0 even for parse errors (``WatchdogSec=abc`` only prints "Failed to parse ...,
ignoring"), so stderr is the real verdict; and it fails when ExecStart's binary is missing, so the
units are rendered with this venv's ``upbit-pipeline`` and the ``root`` user.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from upbit_pipeline.ops.units import UnitOptions, render_units, write_units

BIN = Path(sys.executable).parent / "upbit-pipeline"
ROOT = Path(__file__).resolve().parents[2]

# systemd-analyze is part of Debian's systemd package, on every machine of this project and CI:
# without it these tests fail rather than skip, because unverified units are the bug they catch.


def _verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=paths[0].parent,
    )


def _options(tmp_path: Path, **changes: object) -> UnitOptions:
    env_file = tmp_path / "upbit-pipeline.env"
    env_file.write_text("UPBIT_PIPELINE_BROKER__BOOTSTRAP_SERVERS=127.0.0.1:9092\n")
    config = tmp_path / "upbit.toml"
    config.write_text("")
    options = {
        "executable": BIN,
        "user": "root",
        "env_file": env_file,
        "config_file": config,
        "read_write_paths": (tmp_path,),
    }
    options.update(changes)
    return UnitOptions(**options)  # type: ignore[arg-type]


def test_rendered_units_verify_without_warnings(tmp_path: Path) -> None:
    written = write_units(tmp_path / "units", _options(tmp_path))
    names = {p.name for p in written}
    assert names == {
        "upbit-pipeline-producer.service",
        "upbit-pipeline-consumer.service",
        "upbit-pipeline-alerts.service",
        "upbit-pipeline-backfill.service",
        "upbit-pipeline-watch.service",
        "upbit-pipeline-broker.service",
        "upbit-pipeline-report.service",
        "upbit-pipeline-report.timer",
        "upbit-pipeline-notify@.service",
    }
    # A template cannot be verified itself; its instance (what OnFailure= starts) can.
    instance = tmp_path / "units" / "upbit-pipeline-notify@upbit-pipeline-producer.service.service"
    instance.symlink_to("upbit-pipeline-notify@.service")
    targets = [p for p in written if "@" not in p.name] + [instance]
    result = _verify(targets)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_verify_check_is_not_vacuous(tmp_path: Path) -> None:
    """The same check catches a parse error and a missing binary (so the test above means it)."""
    unit = tmp_path / "bad.service"
    text = render_units(_options(tmp_path))["upbit-pipeline-producer.service"]
    unit.write_text(text.replace("WatchdogSec=30", "WatchdogSec=abc"))
    assert "Failed to parse" in _verify([unit]).stderr
    missing = _options(tmp_path, executable=tmp_path / "nowhere" / "upbit-pipeline")
    unit.write_text(render_units(missing)["upbit-pipeline-producer.service"])
    result = _verify([unit])
    assert result.returncode != 0 or result.stderr.strip()


def test_long_running_units_have_watchdog_hooks_and_hardening(tmp_path: Path) -> None:
    units = render_units(_options(tmp_path, prefix="upx", user="upbit"))
    for key in ("producer", "consumer", "alerts", "backfill", "watch"):
        text = units[f"upx-{key}.service"]
        for line in (
            "Type=notify",
            "NotifyAccess=main",
            "Restart=on-failure",
            "StartLimitBurst=5",
            "OnFailure=upx-notify@%n.service",
            f"ExecStopPost=-{BIN} --config {tmp_path}/upbit.toml ops notify-failure %n --from-env",
            f"ExecStartPost=-{BIN} --config {tmp_path}/upbit.toml ops notify-recovery %n",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "User=upbit",
            f"EnvironmentFile={tmp_path}/upbit-pipeline.env",
            f"ReadWritePaths={tmp_path}",
            "StateDirectory=upx",
        ):
            assert line in text.splitlines(), f"{key}: missing {line!r}"
        assert any(line.startswith("WatchdogSec=") for line in text.splitlines())
    assert "Type=exec" in units["upx-broker.service"]
    assert "ops notify-failure %i --final" in units["upx-notify@.service"]
    report = units["upx-report.service"]
    assert "Type=oneshot" in report and "SuccessExitStatus=3 4" in report
    assert "OnCalendar=*-*-* 00:30:00 UTC" in units["upx-report.timer"]
    assert 'report --date "$(date -u -d yesterday +%%F)"' in report


@pytest.mark.parametrize(
    "change",
    [
        {"prefix": "bad prefix"},
        {"user": "root\nExecStartPre=/bin/sh"},
        {"env_file": Path("relative.env")},
        {"executable": Path("/opt/with space/upbit-pipeline")},
        {"services": ("producer", "nope")},
        {"report_calendar": "daily\n[Service]"},
    ],
)
def test_options_that_would_inject_or_break_a_unit_are_refused(
    tmp_path: Path, change: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        render_units(_options(tmp_path, **change))


def test_repository_examples_are_the_renderers_output() -> None:
    """deploy/systemd holds the defaults' output; re-render with `ops render-units` after edits."""
    examples = ROOT / "deploy" / "systemd"
    for name, text in render_units(UnitOptions()).items():
        found = (examples / name).read_text(encoding="utf-8")
        if name.startswith("upbit-pipeline-report."):
            # Written by the report's author with their own comments: same directives.
            def directives(unit: str) -> list[str]:
                return [line for line in unit.splitlines() if not line.startswith("#")]

            assert directives(found) == directives(text), name
        else:
            assert found == text, name
