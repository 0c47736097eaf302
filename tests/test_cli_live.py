"""The tail command as a real process against a real simulator; the demo's flag checks."""

from __future__ import annotations

import asyncio
import os
import re
import sys

from tests.fixtures.simulator import SimFactory

TRADE_LINE = re.compile(
    r"^\d\d:\d\d:\d\d\.\d{3} KST (KRW-[A-Z0-9]+)\s+(BUY|SELL)\s+[\d,.]+ x [\d.]+\s+[\d,]+ KRW$"
)


async def _run(*args: str, timeout_s: float = 60.0) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPBIT_PIPELINE_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "upbit_pipeline",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**env, "COLUMNS": "200"},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_tail_prints_decoded_trades_of_the_requested_markets(sim_factory: SimFactory) -> None:
    sim = await sim_factory(markets=5, seed=3, speed=5.0)
    code, out, err = await _run(
        "tail", "--upbit-url", sim.base_url, "--markets", "krw-btc,KRW-ETH", "--limit", "8"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 8
    for line in lines:
        match = TRADE_LINE.match(line)
        assert match, line
        assert match.group(1) in {"KRW-BTC", "KRW-ETH"}
    assert "8 trades, 0 malformed" in err


async def test_tail_all_resolves_every_krw_market_over_rest(sim_factory: SimFactory) -> None:
    sim = await sim_factory(markets=4, seed=5, speed=20.0)
    code, out, err = await _run(
        "tail", "--upbit-url", sim.base_url, "--limit", "40", "--duration-s", "30"
    )
    assert code == 0, err
    assert "tailing trades of 4 market(s)" in err
    seen = {m.group(1) for line in out.splitlines() if (m := TRADE_LINE.match(line))}
    assert seen <= set(sim.markets)
    assert len(seen) >= 2


async def test_demo_refuses_a_duration_too_short_to_show_anything() -> None:
    # The demo itself runs end to end in tests/ops/test_demo.py.
    code, _out, err = await _run("demo", "--duration", "3")
    assert code == 2, err
    assert "--duration" in err
    assert "Traceback" not in err


async def test_tail_to_an_unreachable_upbit_is_one_line_error() -> None:
    code, _out, err = await _run("tail", "--upbit-url", "http://127.0.0.1:9", "--limit", "1")
    assert code == 1, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1  # retries before it are logged as warnings
    assert "/market/all" in errors[0]
