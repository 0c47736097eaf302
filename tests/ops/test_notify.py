"""``ops notify-failure`` / ``notify-recovery`` post the expected messages to a local Slack."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from tests.fixtures.slack import SlackReceiver
from upbit_pipeline.ops.notify import FailureEvent, notify_failure, notify_recovery

UNIT = "upbit-pipeline-producer.service"


@pytest.fixture
def fake_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``journalctl`` on PATH that prints what this machine's empty journal cannot."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "journalctl"
    script.write_text(
        "#!/bin/sh\n"
        'echo "args: $*"\n'
        'echo "Traceback (most recent call last):"\n'
        'echo "connecting with password=hunter2 to the broker"\n'
        'echo "RuntimeError: boom"\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return script


async def test_crash_from_systemd_environment_is_posted_with_journal_lines(
    slack_receiver: SlackReceiver, tmp_path: Path, fake_journal: Path
) -> None:
    env = {"SERVICE_RESULT": "exit-code", "EXIT_CODE": "exited", "EXIT_STATUS": "1"}
    event = FailureEvent.from_env(UNIT, env)
    result = await asyncio.to_thread(
        notify_failure, event, slack_receiver.url, state_dir=tmp_path, journal_lines=10
    )
    assert result.posted
    [text] = slack_receiver.texts()
    assert UNIT in text
    assert "result exit-code" in text and "exit exited/1" in text
    assert socket.gethostname() in text
    assert f"--unit {UNIT} --lines 10" in text  # the journal was asked for this unit
    assert "RuntimeError: boom" in text
    assert "hunter2" not in text and "password=<redacted>" in text
    assert "systemd restarts it" in text
    assert slack_receiver.url not in text


async def test_watchdog_kill_then_recovery(slack_receiver: SlackReceiver, tmp_path: Path) -> None:
    env = {"SERVICE_RESULT": "watchdog", "EXIT_CODE": "killed", "EXIT_STATUS": "ABRT"}
    for _ in range(2):  # two kills in a row: each one is posted
        await asyncio.to_thread(
            notify_failure, FailureEvent.from_env(UNIT, env), slack_receiver.url,
            state_dir=tmp_path,
        )  # fmt: skip
    assert len(slack_receiver.posts) == 2
    assert all("hung" in t and "result watchdog" in t for t in slack_receiver.texts())
    back = await asyncio.to_thread(notify_recovery, UNIT, slack_receiver.url, state_dir=tmp_path)
    assert back.posted
    assert "is back" in slack_receiver.texts()[-1] and "2 failure(s)" in slack_receiver.texts()[-1]
    again = await asyncio.to_thread(notify_recovery, UNIT, slack_receiver.url, state_dir=tmp_path)
    assert again.skipped and len(slack_receiver.posts) == 3  # the marker is gone


async def test_clean_stop_posts_nothing_and_final_failure_is_loud(
    slack_receiver: SlackReceiver, tmp_path: Path
) -> None:
    clean = FailureEvent.from_env(UNIT, {"SERVICE_RESULT": "success", "EXIT_CODE": "exited"})
    result = await asyncio.to_thread(notify_failure, clean, slack_receiver.url, state_dir=tmp_path)
    assert result.skipped and slack_receiver.posts == []
    assert not (await asyncio.to_thread(notify_recovery, UNIT, slack_receiver.url,
                                        state_dir=tmp_path)).posted  # fmt: skip
    final = FailureEvent(UNIT, final=True)  # what PREFIX-notify@UNIT.service runs
    result = await asyncio.to_thread(notify_failure, final, slack_receiver.url, state_dir=tmp_path)
    assert result.posted
    assert "FAILED for good" in slack_receiver.texts()[-1]


async def test_slack_down_never_raises(slack_receiver: SlackReceiver, tmp_path: Path) -> None:
    slack_receiver.fail(500)
    event = FailureEvent(UNIT, result="signal", exit_code="killed", exit_status="KILL")
    result = await asyncio.to_thread(notify_failure, event, slack_receiver.url, state_dir=tmp_path)
    assert not result.posted and "was killed by a signal" in result.text
    no_hook = await asyncio.to_thread(notify_failure, event, None, state_dir=tmp_path)
    assert not no_hook.posted and UNIT in no_hook.text  # the CLI prints it to the journal


def test_unit_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        notify_failure(FailureEvent("x; rm -rf /", result="signal"), None, state_dir=tmp_path)
