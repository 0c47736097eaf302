"""The daily report (issue 7) end to end: constructed REST candles, stream trades and alerts for
five UTC trading days -> the real dbt silver/gold build with its markers -> ``run_report`` ->
a local Slack-compatible receiver, the console and the HTML file.

History (realized volatility per day is ordered by construction, so each market's percentile
against its own previous days is known in advance):

    market    D-4   D-3   D-2   D-1   D       own percentile on D   on D-1
    KRW-AAA   1     2     3     4     10      100 (highest ever)    100
    KRW-BBB   5     6     7     8     5.5*    50  (2 of 4 below)    100
    KRW-CCC   4     3     2     1     0.5     0   (calmest ever)    0

(units of the per-minute swing, x 1e-3; * plus a +5 % jump at 09:30 KST, which lifts BBB's day
above D-4 and D-3.) The report must show these, not "100" everywhere; the test also derives them
independently from the constructed closes.
"""

from __future__ import annotations

import fcntl
import io
import itertools
import json
import math
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.batch.helpers import batch_settings, query, write_trades
from tests.fixtures.slack import SlackReceiver, running_slack_receiver
from upbit_pipeline.alerts.model import Alert
from upbit_pipeline.alerts.sinks import write_lake_alerts
from upbit_pipeline.batch import BatchStepError, build_layer, read_marker, run_step
from upbit_pipeline.batch.markers import write_marker
from upbit_pipeline.batch.raw import candles_table, parquet_bytes
from upbit_pipeline.batch.report import (
    compose,
    load_gold_day,
    open_warehouse,
    resolve_day,
    run_report,
)
from upbit_pipeline.batch.report.data import Resolution
from upbit_pipeline.batch.report.html import percentile_colour
from upbit_pipeline.errors import UserError
from upbit_pipeline.lake.storage import open_lake
from upbit_pipeline.settings import Settings
from upbit_pipeline.upbit.models import Candle

# the first test of a session waits for the shared dbt build (about 30 s, more on a busy host)
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

D = date(2025, 5, 20)
DAYS = [D - timedelta(days=back) for back in range(4, -1, -1)]  # D-4 .. D
MINUTES = 60  # traded minutes per day, 00:00-00:59 UTC
SWING = {  # per-minute swing x 1e-3, per market, per day D-4..D
    "KRW-AAA": [1, 2, 3, 4, 10],
    "KRW-BBB": [5, 6, 7, 8, 5.5],
    "KRW-CCC": [4, 3, 2, 1, 0.5],
}
DRIFT = {  # per-minute drift x 1e-4: sets each day's sign of change
    "KRW-AAA": [1, 1, 1, -2, 3],
    "KRW-BBB": [-1, 1, -1, 2, -2],
    "KRW-CCC": [1, -1, 1, 1, 1],
}
NAMES = {
    "KRW-AAA": ("에이코인", "Acoin"),
    "KRW-BBB": ("비코인", "Bcoin"),
    "KRW-CCC": ("씨코인", "Ccoin"),
}
SPIKE = ("KRW-BBB", D, 30, 0.05)  # +5 % level shift at 00:30 UTC = 09:30 KST on D
EXPECTED_PCT_D = {"KRW-AAA": 100.0, "KRW-BBB": 50.0, "KRW-CCC": 0.0}
EXPECTED_PCT_D1 = {"KRW-AAA": 100.0, "KRW-BBB": 100.0, "KRW-CCC": 0.0}


def _closes(market: str, day: date) -> list[float]:
    i = DAYS.index(day)
    swing, drift = SWING[market][i] * 1e-3, DRIFT[market][i] * 1e-4
    closes = []
    for minute in range(MINUTES):
        log_price = math.log(1000.0) + drift * minute + swing * (-1) ** minute
        if (market, day) == SPIKE[:2] and minute >= SPIKE[2]:
            log_price += math.log(1 + SPIKE[3])
        closes.append(round(math.exp(log_price), 6))
    return closes


def _minute(day: date, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minute)


def _write_day(lake: Path, day: date, with_trades: dict[str, int]) -> None:
    """REST candles (one trade per minute: O=H=L=C), the market list, and the stream trades of
    the first ``with_trades[market]`` minutes (the rest are holes in the stream)."""
    candles, trades = [], []
    for market in SWING:
        for minute, price in enumerate(_closes(market, day)):
            start = _minute(day, minute)
            volume = 1.0 + minute % 3
            candles.append(
                Candle(
                    code=market,
                    interval="1m",
                    start_utc=start,
                    opening_price=price,
                    high_price=price,
                    low_price=price,
                    trade_price=price,
                    candle_acc_trade_price=price * volume,
                    candle_acc_trade_volume=volume,
                    timestamp=int(start.timestamp() * 1000) + 30_000,
                )
            )
            if minute < with_trades.get(market, 0):
                ms = int(start.timestamp() * 1000) + 30_000
                trades.append((market, ms, price, volume, True, ms * 10 + len(trades), False))
    for dataset, data in (
        ("candles_1m", parquet_bytes(candles_table(candles))),
        ("markets", _markets_parquet()),
    ):
        path = lake / "raw" / "rest" / dataset / f"date={day}" / "data.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    if trades:
        write_trades(lake, trades, offset=DAYS.index(day) * 1_000_000)


def _markets_parquet() -> bytes:
    table = pa.table(
        {
            "market": list(NAMES),
            "quote_currency": ["KRW"] * len(NAMES),
            "korean_name": [k for k, _ in NAMES.values()],
            "english_name": [e for _, e in NAMES.values()],
            "warning": [False] * len(NAMES),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _alert(market: str, day: date, minute: int, rule: str = "price_move") -> Alert:
    ms = int(_minute(day, minute).timestamp() * 1000)
    return Alert(
        id=f"{rule}-{market}-{ms}",
        rule=rule,
        market=market,
        severity="warning",
        event_ms=ms,
        move_pct=3.0,
        window_s=60,
    )


@dataclass(frozen=True)
class Built:
    root: Path
    settings: Settings

    def copy(self, dest: Path, webhook: str | None = None) -> Settings:
        """Lake and warehouse copied to ``dest`` (a test that changes them gets its own)."""
        shutil.copytree(self.root / "lake", dest / "lake")
        shutil.copy(self.root / "warehouse.duckdb", dest / "warehouse.duckdb")
        return with_webhook(batch_settings(dest), webhook)


def with_webhook(settings: Settings, webhook: str | None) -> Settings:
    if webhook is None:
        return settings
    return Settings(
        upbit=settings.upbit,
        lake=settings.lake,
        warehouse=settings.warehouse,
        alerts={"slack_webhook": webhook},
    )


def _build(root: Path) -> None:
    """Five days of gold, built the way the batch builds them; D-1 and D by ``run_step`` (so
    each has a real ``ok`` gold marker), the older history by one ranged build."""
    settings = batch_settings(root)
    lake = root / "lake"
    for day in DAYS:
        full = {m: MINUTES for m in SWING} if day == D - timedelta(days=1) else {}
        if day == D:  # holes: BBB's stream misses half the day, CCC's stream is absent
            full = {"KRW-AAA": MINUTES, "KRW-BBB": MINUTES // 2}
        _write_day(lake, day, full)
    write_lake_alerts(
        str(lake),
        [
            _alert("KRW-AAA", D, 5),
            _alert("KRW-AAA", D, 40, "volume_spike"),
            _alert("KRW-CCC", D - timedelta(days=1), 7),
        ],
    )
    build_layer(settings, "silver", DAYS[0], D)
    build_layer(settings, "gold", DAYS[0], DAYS[2])
    run_step(settings, DAYS[3], "gold")
    run_step(settings, D, "gold")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Built:
    """The constructed gold, built once per test session even under xdist: the first worker
    builds it into the shared base folder under an exclusive file lock, the others wait for the
    lock and reuse it. Tests only read it, or copy it (``Built.copy``) before changing it."""
    if worker_id == "master":
        root = tmp_path_factory.mktemp("report-gold")
        _build(root)
        return Built(root, batch_settings(root))
    root = tmp_path_factory.getbasetemp().parent / "report-gold"
    with open(root.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (root / "built.ok").exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            _build(root)
            (root / "built.ok").touch()
    return Built(root, batch_settings(root))


@pytest.fixture
def receiver() -> Iterator[SlackReceiver]:
    """tests/fixtures/slack.py's threaded receiver (the report posts synchronously)."""
    with running_slack_receiver() as running:
        yield running


def _all_text(post: dict[str, Any]) -> str:
    """Every string in a Slack payload, in order (for asserting on what a reader sees)."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(post)
    return "\n".join(out)


def _expected_vol(market: str, day: date) -> float:
    closes = _closes(market, day)
    return math.sqrt(sum(math.log(b / a) ** 2 for a, b in itertools.pairwise(closes)))


def _mid_rank(market: str, day: date) -> float:
    i = DAYS.index(day)
    today = _expected_vol(market, day)
    history = [_expected_vol(market, d) for d in DAYS[:i]]
    below = sum(1 for h in history if h < today - 1e-15)
    equal = sum(1 for h in history if abs(h - today) <= 1e-15)
    return 100 * (below + 0.5 * equal) / len(history)


# -- percentiles ---------------------------------------------------------------------------------


def test_percentiles_are_right_on_constructed_histories(built: Built) -> None:
    with open_warehouse(Path(built.settings.warehouse.path)) as (con, error):
        assert con is not None and error is None
        for day, expected in ((D, EXPECTED_PCT_D), (DAYS[3], EXPECTED_PCT_D1)):
            gold = load_gold_day(con, day)
            got = {m.market: m.own_percentile for m in gold.markets}
            independent = {m: _mid_rank(m, day) for m in SWING}
            assert got == pytest.approx(independent) == expected
            assert {m.market: m.history_days for m in gold.markets} == dict.fromkeys(
                SWING, DAYS.index(day)
            )
            if day == D:  # not one value for all, and not always 100
                assert sorted(p or 0.0 for p in got.values()) == [0.0, 50.0, 100.0]
            vols = {m.market: m.realized_vol for m in gold.markets}
            assert vols == pytest.approx({m: _expected_vol(m, day) for m in SWING}, rel=1e-9)
        first = load_gold_day(con, DAYS[0])
    assert all(m.own_percentile is None for m in first.markets)  # no history: no percentile


def test_a_market_without_history_says_new_not_100(built: Built) -> None:
    lake = open_lake(built.settings.lake.path)
    with open_warehouse(Path(built.settings.warehouse.path)) as (con, _):
        assert con is not None
        gold = load_gold_day(con, DAYS[0])
        resolution = Resolution("normal", DAYS[0], DAYS[0], (resolve_day(lake, con, D).checks[0],))
    report = compose(resolution, gold)
    from upbit_pipeline.batch.report.slack import slack_message

    text = _all_text(slack_message(report))
    assert "new (no history)" in text and "p100" not in text


# -- the three cases at a Slack receiver -------------------------------------------------------


def test_normal_day_at_slack_receiver(
    built: Built, tmp_path: Path, receiver: SlackReceiver
) -> None:
    settings = built.copy(tmp_path, receiver.url)
    out = io.StringIO()
    outcome = run_report(settings, D, ["slack", "console", "html"], console=out)
    assert (outcome.kind, outcome.shown, outcome.exit_code, outcome.slack) == (
        "normal",
        D,
        0,
        "sent",
    )
    [post] = receiver.posts
    assert (
        post["text"].splitlines()[0]
        == "Upbit trading day 2025-05-20 (05-20 09:00 – 05-21 09:00 KST)"
    )
    assert post["attachments"][0]["color"] == "#2EB67D"
    text = _all_text(post)
    # top 10 by volatility, most volatile first, each with its own percentile
    top = [line for line in text.splitlines() if line[:3] in ("1. ", "2. ", "3. ")]
    assert [line.split("*")[1].split()[0] for line in top] == ["KRW-AAA", "KRW-BBB", "KRW-CCC"]
    assert "p100 of own 4d" in top[0] and "p50 of own 4d" in top[1] and "p0 of own 4d" in top[2]
    assert "에이코인" in text and "상승 / Up" in text and "하락 / Down" in text
    # market-wide summary: AAA and CCC up, BBB down (its +5 % spike outweighs? no: drift < 0)
    changes = {m: _closes(m, D)[-1] / _closes(m, D)[0] - 1 for m in SWING}
    up = sum(1 for c in changes.values() if c > 0)
    assert f"{up} / 3" in text
    # largest 1-minute move: BBB's +5 % jump at 00:30 UTC = 09:30 KST
    moves = text.split("Largest 1-minute moves*\n")[1].splitlines()
    assert moves[0].startswith("KRW-BBB") and "05-20 09:30 KST" in moves[0]
    assert (
        f"{100 * math.log(_closes('KRW-BBB', D)[30] / _closes('KRW-BBB', D)[29]):+.2f}%" in moves[0]
    )
    # v1 alert counts of D (two for AAA) and the completeness warning (BBB and CCC have holes)
    assert "Real-time alerts (v1)*: 2 (1 markets)" in text
    assert "Data completeness warning*: 2 of 3 markets have holes" in text
    assert f"{MINUTES // 2 + MINUTES} min missing in stream" in text
    # console: same first line, and the HTML path
    lines = out.getvalue().splitlines()
    assert lines[0] == post["text"].splitlines()[0]
    assert f"HTML report: {outcome.html_path}" in lines and "Slack: sent" in lines
    assert receiver.secret not in out.getvalue()


def test_gold_failed_falls_back_to_previous_day_with_its_figures(
    built: Built, tmp_path: Path, receiver: SlackReceiver
) -> None:
    settings = built.copy(tmp_path, receiver.url)
    # force gold for D to fail: the rank model's var is broken, gold_market_daily still builds
    with pytest.raises(BatchStepError):
        run_step(settings, D, "gold", dbt_vars={"rank_history_days": "not-a-number"})
    marker = read_marker(open_lake(settings.lake.path), D, "gold")
    assert marker is not None and marker.status == "failed"
    rows = query(
        Path(settings.warehouse.path), f"select * from gold_market_daily where trading_date = '{D}'"
    )
    assert len(rows) == 3  # rows for D exist; the marker, not their presence, decides

    outcome = run_report(settings, D, ["slack", "console"], console=io.StringIO())
    assert (outcome.kind, outcome.shown, outcome.exit_code) == ("fallback", DAYS[3], 3)
    [post] = receiver.posts
    assert post["text"].splitlines()[0] == "data for 2025-05-20 unavailable — showing 2025-05-19"
    assert post["blocks"][0]["text"]["text"].startswith(
        ":warning: *data for 2025-05-20 unavailable — showing 2025-05-19*"
    )
    assert post["attachments"][0]["color"] == "#ECB22E"
    text = _all_text(post)
    assert "gold build for 2025-05-20 failed at" in text
    assert "Market summary* — 2025-05-19" in text
    # D-1's figures: its percentiles, its single alert (CCC), no stream holes on D-1
    top = [line for line in text.splitlines() if line[:3] in ("1. ", "2. ", "3. ")]
    assert [line.split("*")[1].split()[0] for line in top] == ["KRW-BBB", "KRW-AAA", "KRW-CCC"]
    assert "p100 of own 3d" in top[0] and "p100 of own 3d" in top[1] and "p0 of own 3d" in top[2]
    assert "Real-time alerts (v1)*: 1 (1 markets)" in text and "KRW-CCC 1" in text
    assert "Data completeness warning" not in text
    assert "09:30 KST" not in text  # D's spike is not in D-1's report


@pytest.mark.parametrize("damage", ["marker_missing", "counts_disagree", "empty_day"])
def test_missing_or_incomplete_gold_falls_back(built: Built, tmp_path: Path, damage: str) -> None:
    settings = built.copy(tmp_path)
    lake = open_lake(settings.lake.path)
    marker = read_marker(lake, D, "gold")
    assert marker is not None and marker.ok
    if damage == "marker_missing":
        lake.delete(f"_batch/date={D}/gold.json")
        expected = "gold for 2025-05-20 was never built"
    elif damage == "counts_disagree":  # the warehouse is not what the build vouched for
        counts = {**marker.counts, "gold_market_daily_rank": 99}
        write_marker(lake, marker.__class__(**{**marker.__dict__, "counts": counts}))
        expected = "gold_market_daily_rank holds 3 rows, its build recorded 99"
    else:
        counts = {**marker.counts, "gold_market_daily": 0}
        write_marker(lake, marker.__class__(**{**marker.__dict__, "counts": counts}))
        expected = "gold for 2025-05-20 is empty"
    outcome = run_report(settings, D, ["console"], console=io.StringIO())
    assert (outcome.kind, outcome.shown, outcome.exit_code) == ("fallback", DAYS[3], 3)
    assert outcome.console_text is not None
    assert outcome.console_text.splitlines()[0].endswith(
        "data for 2025-05-20 unavailable — showing 2025-05-19"
    )
    assert expected in outcome.console_text


def test_nothing_built_sends_the_no_data_message(tmp_path: Path, receiver: SlackReceiver) -> None:
    settings = with_webhook(batch_settings(tmp_path), receiver.url)
    out = io.StringIO()
    outcome = run_report(settings, D, None, console=out)  # None: slack (configured), console, html
    assert (outcome.kind, outcome.shown, outcome.exit_code, outcome.slack) == (
        "no_data",
        None,
        4,
        "sent",
    )
    [post] = receiver.posts
    assert post["text"].splitlines()[0].startswith("no data: nothing usable for 2025-05-20")
    assert post["attachments"][0]["color"] == "#E01E5A"
    text = _all_text(post)
    assert "데이터 없음 / No data" in text and "does not exist" in text
    assert not (tmp_path / "warehouse.duckdb").exists()  # reading never creates the warehouse
    assert outcome.html_path is not None and Path(outcome.html_path).is_file()
    assert out.getvalue().startswith("NO DATA: no data")


def test_failed_days_only_give_no_data(built: Built, tmp_path: Path) -> None:
    settings = built.copy(tmp_path)
    lake = open_lake(settings.lake.path)
    for day in (D, DAYS[3]):
        marker = read_marker(lake, day, "gold")
        assert marker is not None
        write_marker(
            lake, marker.__class__(**{**marker.__dict__, "status": "failed", "error": "X"})
        )
    outcome = run_report(settings, D, ["console"], console=io.StringIO())
    assert (outcome.kind, outcome.exit_code) == ("no_data", 4)
    assert outcome.console_text is not None
    # D-2..D-4 were built by a ranged dbt run without markers: never trusted
    assert "gold for 2025-05-18 was never built" in outcome.console_text


# -- HTML -----------------------------------------------------------------------------------------


def test_html_report_exists_and_contains_its_charts(built: Built, tmp_path: Path) -> None:
    settings = built.copy(tmp_path)
    outcome = run_report(settings, D, ["html"])
    assert outcome.html_path == str(tmp_path / "lake" / "reports" / f"date={D}" / "report.html")
    document = Path(outcome.html_path).read_text(encoding="utf-8")
    assert document.startswith("<!doctype html>") and 'data-kind="normal"' in document
    svgs = {}
    for chunk in document.split("<svg ")[1:]:
        svg = ET.fromstring("<svg " + chunk.split("</svg>")[0] + "</svg>")
        svgs[svg.get("id")] = svg
    assert set(svgs) == {"volatility-chart", "percentile-heatmap"}
    ns = "{http://www.w3.org/2000/svg}"
    bars = svgs["volatility-chart"].findall(f"{ns}rect")
    assert [b.get("data-market") for b in bars] == ["KRW-AAA", "KRW-BBB", "KRW-CCC"]
    widths = [float(b.get("width", "0")) for b in bars]
    assert widths[0] > widths[1] > widths[2] > 0
    assert bars[0].get("fill") == percentile_colour(100.0)
    cells = svgs["percentile-heatmap"].findall(f"{ns}rect")
    assert len(cells) == 3 * 14  # markets x days
    on_d = {
        c.get("data-market"): c.get("data-percentile") for c in cells if c.get("data-day") == str(D)
    }
    assert on_d == {m: f"{p:.1f}" for m, p in EXPECTED_PCT_D.items()}
    early = [c for c in cells if c.get("data-day") == str(DAYS[0])]
    assert {c.get("data-percentile") for c in early} == {""}  # no history: grey, not 100
    assert "에이코인" in document and "KST" in document


# -- outputs and delivery -----------------------------------------------------------------------


def test_outputs_are_validated(tmp_path: Path) -> None:
    settings = batch_settings(tmp_path)
    with pytest.raises(UserError, match="needs a webhook"):
        run_report(settings, D, ["slack"])
    with pytest.raises(UserError, match="comma list"):
        run_report(settings, D, ["email"])
    outcome = run_report(settings, D, None, console=io.StringIO())
    assert outcome.slack == "not requested" and outcome.html_path is not None


def test_slack_refusal_is_exit_1_and_never_leaks_the_webhook(
    built: Built,
    tmp_path: Path,
    receiver: SlackReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = built.copy(tmp_path, receiver.url)
    receiver.fail(403)
    out = io.StringIO()
    with caplog.at_level("DEBUG"):
        outcome = run_report(settings, D, None, console=out)
    assert outcome.kind == "normal" and outcome.exit_code == 1 and outcome.slack == "failed"
    assert outcome.errors == ("Slack refused the report: HTTP 403",)
    assert outcome.html_path is not None and Path(outcome.html_path).is_file()
    assert "Slack: failed" in out.getvalue()
    assert receiver.secret not in out.getvalue() + caplog.text
    assert json.dumps(receiver.refused[0][1])  # the message was offered
