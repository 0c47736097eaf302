"""The ``upbit-pipeline`` command: thin shells over library calls.

Every command builds its settings the same way (flags > environment > ``--config`` TOML >
defaults) and every user error ends as one line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from upbit_pipeline.errors import UpbitPipelineError, UserError
from upbit_pipeline.logs import LogFormat, configure_logging
from upbit_pipeline.settings import Settings, UpbitSettings, load_settings

if TYPE_CHECKING:
    from upbit_pipeline.upbit.models import Trade
    from upbit_pipeline.upbit.tail import TailStats

KST = timezone(timedelta(hours=9), "KST")

app = typer.Typer(
    name="upbit-pipeline",
    help="Upbit market data: streamed, stored exactly once, alerted on and reported.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

stdout = Console()
stderr = Console(stderr=True)

# Flags shared by commands, defined once. None means "not given": lower sources then apply.
UpbitUrl = Annotated[
    str | None,
    typer.Option(
        "--upbit-url", metavar="BASE", help="Upbit base URL; REST is BASE/v1, WS is /websocket/v1."
    ),
]
BootstrapServers = Annotated[
    str | None, typer.Option("--bootstrap-servers", help="Kafka-protocol broker(s), host:port,...")
]
LakePath = Annotated[
    str | None, typer.Option("--lake", help="Lake root: a folder, gs://... or s3://...")
]
WarehousePath = Annotated[Path | None, typer.Option("--warehouse", help="DuckDB warehouse file.")]
SlackWebhook = Annotated[
    str | None, typer.Option("--slack-webhook", help="Slack incoming-webhook URL (secret).")
]


@dataclass(frozen=True)
class _Global:
    config_file: Path | None


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML settings file (see docs/configuration.md)."),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR.")
    ] = "INFO",
    log_format: Annotated[
        str, typer.Option("--log-format", help="auto (JSON unless a terminal), json or text.")
    ] = "auto",
) -> None:
    if log_format not in ("auto", "json", "text"):
        raise UserError(f"--log-format must be auto, json or text (got {log_format!r})")
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise UserError(f"--log-level must be DEBUG, INFO, WARNING or ERROR (got {log_level!r})")
    fmt: LogFormat = log_format  # type: ignore[assignment]
    configure_logging(log_level, fmt)
    ctx.obj = _Global(config_file=config)


def _settings(ctx: typer.Context, **flags: Any) -> Settings:
    """Settings for a command from its flags (``section.key`` -> value)."""
    overrides = {key.replace("__", "."): value for key, value in flags.items()}
    config_file = ctx.obj.config_file if isinstance(ctx.obj, _Global) else None
    return load_settings(config_file, overrides)


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    upbit_url: UpbitUrl = None,
    bootstrap_servers: BootstrapServers = None,
    lake: LakePath = None,
    warehouse: WarehousePath = None,
    slack_webhook: SlackWebhook = None,
) -> None:
    """Print the effective settings as JSON, secrets redacted."""
    settings = _settings(
        ctx,
        upbit__url=upbit_url,
        broker__bootstrap_servers=bootstrap_servers,
        lake__path=lake,
        warehouse__path=warehouse,
        alerts__slack_webhook=slack_webhook,
    )
    stdout.print_json(json.dumps(settings.redacted()))


@app.command("sim")
def sim(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).", min=0, max=65535)] = 8080,
    markets: Annotated[int, typer.Option(help="Number of KRW markets.", min=1, max=400)] = 20,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same data.")] = 1,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per wall second.", min=0.001)
    ] = 1.0,
    scenario: Annotated[
        Path | None, typer.Option(help="Scenario file (anomalies and faults, TOML or JSON).")
    ] = None,
    idle_timeout_s: Annotated[
        float,
        typer.Option("--idle-timeout-s", help="Close idle WebSockets after this long.", min=0.1),
    ] = 60.0,
) -> None:
    """Run the local Upbit simulator (REST /v1/... and WebSocket /websocket/v1 on one port)."""
    from upbit_pipeline.upbit.simulator import Scenario, SimConfig, run_simulator

    loaded = None
    if scenario is not None:
        try:
            loaded = Scenario.load(scenario)
        except (OSError, ValueError) as exc:
            raise UserError(f"scenario {scenario}: {exc}") from None
    run_simulator(
        SimConfig(
            host=host,
            port=port,
            markets=markets,
            seed=seed,
            speed=speed,
            scenario=loaded,
            idle_timeout_s=idle_timeout_s,
        )
    )


@app.command("broker")
def broker(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 9092,
    storage: Annotated[
        str, typer.Option(help="'memory' (lost on stop) or s3://bucket/ (durable).")
    ] = "memory",
) -> None:
    """Run the embedded Kafka-protocol broker (Tansu) on loopback, with every topic created."""
    from upbit_pipeline.streaming.broker import EmbeddedBroker

    settings = _settings(ctx)
    with EmbeddedBroker(port=port, storage=storage, broker=settings.broker) as embedded:
        stdout.print(embedded.bootstrap_servers, highlight=False)
        _wait_for_termination()


def _wait_for_termination() -> None:
    """Block until SIGTERM or SIGINT (Ctrl-C)."""
    import signal
    import threading

    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    done.wait()


def _run_service(main: Callable[[asyncio.Event], Awaitable[object]]) -> None:
    """Run an async service until SIGTERM/SIGINT sets its stop event (a clean, bounded stop)."""
    import signal

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await main(stop)

    asyncio.run(runner())


ChannelsOpt = Annotated[
    str | None,
    typer.Option("--channels", help="Comma list of trade,ticker,orderbook,candle."),
]
MarketsOpt = Annotated[
    str | None, typer.Option("--markets", help="'all' KRW markets or KRW-BTC,KRW-ETH,...")
]


@app.command("produce")
def produce(
    ctx: typer.Context,
    upbit_url: UpbitUrl = None,
    bootstrap_servers: BootstrapServers = None,
    markets: MarketsOpt = None,
    channels: ChannelsOpt = None,
) -> None:
    """Stream Upbit's WebSocket into the Kafka-protocol log (with gap detection and backfill)."""
    from upbit_pipeline.streaming.producer import run_producer

    settings = _settings(
        ctx,
        upbit__url=upbit_url,
        broker__bootstrap_servers=bootstrap_servers,
        producer__markets=markets,
        producer__channels=channels,
    )
    _run_service(lambda stop: run_producer(settings, stop=stop))


@app.command("backfill")
def backfill(
    ctx: typer.Context,
    upbit_url: UpbitUrl = None,
    bootstrap_servers: BootstrapServers = None,
) -> None:
    """Repair trade gaps: read upbit.gaps, fetch the missed trades over REST, publish them."""
    from upbit_pipeline.streaming.backfill import run_backfill

    settings = _settings(ctx, upbit__url=upbit_url, broker__bootstrap_servers=bootstrap_servers)
    port = settings.producer.backfill_metrics_port
    _run_service(lambda stop: run_backfill(settings, stop=stop, metrics_port=port))


@app.command("consume")
def consume(
    ctx: typer.Context,
    bootstrap_servers: BootstrapServers = None,
    lake: LakePath = None,
) -> None:
    """Write every record of the channel topics into the Parquet lake, exactly once."""
    import signal
    import threading

    from upbit_pipeline.lake import run_consumer

    settings = _settings(ctx, broker__bootstrap_servers=bootstrap_servers, lake__path=lake)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stats = run_consumer(settings, stop=stop)
    stderr.print(f"consumer stopped: {stats}", highlight=False, soft_wrap=True)


lake_app = typer.Typer(help="Inspect the Parquet lake.", no_args_is_help=True)
app.add_typer(lake_app, name="lake")


@lake_app.command("verify")
def lake_verify(
    ctx: typer.Context,
    lake: LakePath = None,
    date: Annotated[
        str | None, typer.Option("--date", help="One UTC trading day, YYYY-MM-DD.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Report duplicate and missing offsets per partition, and duplicate trades.

    Exit code 0 when the lake holds every record exactly once, 1 otherwise.
    """
    import datetime as dt

    from upbit_pipeline.lake import verify_lake

    settings = _settings(ctx, lake__path=lake)
    day = None
    if date is not None:
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            raise UserError(f"--date must be YYYY-MM-DD (got {date!r})") from None
    report = verify_lake(settings.lake.path, day)
    if as_json:
        stdout.print(report.to_json(), highlight=False, soft_wrap=True)
    else:
        stdout.print(report.render(), highlight=False, soft_wrap=True)
    raise typer.Exit(0 if report.ok else 1)


batch_app = typer.Typer(
    help="The batch medallion for one UTC trading day (00:00 UTC = 09:00 KST).",
    no_args_is_help=True,
)
app.add_typer(batch_app, name="batch")

DateOpt = Annotated[str, typer.Option("--date", help="UTC trading day D, YYYY-MM-DD.")]


def _trading_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--date must be YYYY-MM-DD (got {value!r})") from None


@batch_app.command("raw")
def batch_raw(
    ctx: typer.Context,
    day: DateOpt,
    markets: MarketsOpt = None,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="Skip markets already fetched for D.")
    ] = True,
    upbit_url: UpbitUrl = None,
    lake: LakePath = None,
) -> None:
    """Fetch D's market list, 1-minute and day candles from REST into the raw lake."""
    from upbit_pipeline.batch import BatchStepError, run_step

    settings = _settings(ctx, upbit__url=upbit_url, lake__path=lake)
    try:
        marker = run_step(
            settings, _trading_day(day), "raw", markets=_market_list(markets), resume=resume
        )
    except BatchStepError as exc:
        raise UpbitPipelineError(str(exc)) from None
    stdout.print_json(json.dumps(marker.__dict__, default=str))


@batch_app.command("run")
def batch_run(
    ctx: typer.Context,
    day: DateOpt,
    steps: Annotated[
        str, typer.Option("--steps", help="Comma list of raw,silver,gold (in that order).")
    ] = "raw,silver,gold",
    markets: MarketsOpt = None,
    upbit_url: UpbitUrl = None,
    lake: LakePath = None,
    warehouse: WarehousePath = None,
) -> None:
    """Run raw -> silver -> gold for D in-process (dbt runs programmatically); no Airflow needed.

    Exit code 0 when every step succeeded, 1 otherwise (each step writes its build marker).
    """
    from upbit_pipeline.batch import STEPS, run_batch

    wanted = [step.strip() for step in steps.split(",") if step.strip()]
    unknown = sorted(set(wanted) - set(STEPS))
    if unknown or not wanted:
        raise UserError(f"--steps must be a comma list of {', '.join(STEPS)} (got {steps!r})")
    settings = _settings(ctx, upbit__url=upbit_url, lake__path=lake, warehouse__path=warehouse)
    result = run_batch(settings, _trading_day(day), wanted, markets=_market_list(markets))
    stdout.print_json(json.dumps(result.as_dict(), default=str))
    raise typer.Exit(0 if result.ok else 1)


ops_app = typer.Typer(help="Operations: systemd units, failure notices, watchdogs.")
app.add_typer(ops_app, name="ops")


@ops_app.command("render-units")
def ops_render_units(
    output: Annotated[Path, typer.Option("--output", help="Directory to write the units to.")],
    prefix: Annotated[str, typer.Option(help="Unit name prefix.")] = "upbit-pipeline",
    user: Annotated[str, typer.Option(help="Dedicated service user.")] = "upbit",
    group: Annotated[str | None, typer.Option(help="Group (default: the user's).")] = None,
    env_file: Annotated[
        Path | None, typer.Option("--env-file", help="EnvironmentFile= with settings/secrets.")
    ] = Path("/etc/upbit-pipeline/upbit-pipeline.env"),
    config_file: Annotated[
        Path | None, typer.Option("--config-file", help="TOML settings passed as --config.")
    ] = None,
    executable: Annotated[Path, typer.Option(help="The installed upbit-pipeline binary.")] = Path(
        "/opt/upbit-pipeline/venv/bin/upbit-pipeline"
    ),
    read_write_path: Annotated[
        list[Path] | None,
        typer.Option("--read-write-path", help="Writable path (repeat), e.g. the lake folder."),
    ] = None,
    watchdog_s: Annotated[int, typer.Option("--watchdog-s", help="WatchdogSec=.", min=1)] = 30,
    services: Annotated[str | None, typer.Option(help="Comma list (default: all).")] = None,
) -> None:
    """Write systemd units (with watchdogs and failure notices) for this install."""
    from upbit_pipeline.ops import UnitOptions, write_units

    extra: dict[str, Any] = {}
    if services:
        extra["services"] = tuple(x.strip() for x in services.split(",") if x.strip())
    try:
        options = UnitOptions(
            prefix=prefix,
            user=user,
            group=group,
            env_file=env_file,
            config_file=config_file,
            executable=executable,
            read_write_paths=tuple(read_write_path or ()),
            watchdog_s=watchdog_s,
            **extra,
        )
        written = write_units(output, options)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    for path in written:
        stdout.print(str(path), highlight=False)


@ops_app.command("notify-failure")
def ops_notify_failure(
    ctx: typer.Context,
    unit: Annotated[str, typer.Argument(help="The unit that stopped (%n).")],
    from_env: Annotated[
        bool, typer.Option("--from-env", help="Read SERVICE_RESULT/EXIT_* set by systemd.")
    ] = False,
    final: Annotated[
        bool, typer.Option("--final", help="OnFailure=: systemd gave up restarting.")
    ] = False,
    result: Annotated[str, typer.Option(help="Result when not --from-env.")] = "unknown",
    journal_lines: Annotated[int, typer.Option(help="Journal lines to attach.", min=0)] = 20,
) -> None:
    """Post a crash or hang of UNIT to Slack (an ExecStopPost=/OnFailure= hook; exits 0)."""
    from upbit_pipeline.ops import FailureEvent, notify_failure

    settings = _settings(ctx)
    if from_env:
        event = FailureEvent.from_env(unit)
        if final:
            event = dataclasses.replace(event, final=True)
    else:
        event = FailureEvent(unit, result=result, final=final)
    outcome = notify_failure(
        event,
        settings.ops.webhook(settings.alerts),
        state_dir=settings.ops.state_dir,
        journal_lines=journal_lines,
    )
    if outcome.text and not outcome.posted:
        stdout.print(outcome.text, highlight=False, soft_wrap=True)


@ops_app.command("notify-recovery")
def ops_notify_recovery(
    ctx: typer.Context, unit: Annotated[str, typer.Argument(help="The unit that started.")]
) -> None:
    """After a start: when UNIT had failed, post that it is back (an ExecStartPost= hook)."""
    from upbit_pipeline.ops import notify_recovery

    settings = _settings(ctx)
    outcome = notify_recovery(
        unit, settings.ops.webhook(settings.alerts), state_dir=settings.ops.state_dir
    )
    if outcome.text and not outcome.posted:
        stdout.print(outcome.text, highlight=False, soft_wrap=True)


@ops_app.command("watch")
def ops_watch(ctx: typer.Context, bootstrap_servers: BootstrapServers = None) -> None:
    """Data-level watchdogs: no trades for a while, or a stalled lake consumer -> Slack."""
    import signal
    import threading

    from upbit_pipeline.ops import Watcher, WatchOptions
    from upbit_pipeline.service import Liveness

    settings = _settings(ctx, broker__bootstrap_servers=bootstrap_servers)
    ops = settings.ops
    options = WatchOptions(
        interval_s=ops.watch_interval_s,
        no_trades_s=ops.no_trades_s,
        consumer_stall_s=ops.consumer_stall_s,
        repeat_s=ops.repeat_s,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    Watcher(settings, ops.webhook(settings.alerts), options).run(stop, Liveness.from_env())


@app.command("status")
def status(
    ctx: typer.Context,
    bootstrap_servers: BootstrapServers = None,
    lake: LakePath = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    part: Annotated[
        list[str] | None,
        typer.Option(
            help="Only these checks: broker, channels, consumer, lake, alerts, batch, report."
        ),
    ] = None,
) -> None:
    """Health of every part as a table. Exit code 1 when any check fails."""
    from upbit_pipeline.ops import StatusOptions, collect_status

    settings = _settings(ctx, broker__bootstrap_servers=bootstrap_servers, lake__path=lake)
    report = collect_status(
        settings, StatusOptions(stale_after_s=settings.ops.status_stale_after_s), parts=part or ()
    )
    if as_json:
        stdout.print(report.to_json(), highlight=False, soft_wrap=True)
    else:
        stdout.print(report.render())
    raise typer.Exit(1 if report.state == "fail" else 0)


@app.command("report")
def report(
    ctx: typer.Context,
    day: Annotated[
        str | None,
        typer.Option("--date", help="UTC trading day D, YYYY-MM-DD (default: yesterday, UTC)."),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Comma list of slack,console,html (default: all available)."),
    ] = None,
    lake: LakePath = None,
    warehouse: WarehousePath = None,
    slack_webhook: SlackWebhook = None,
) -> None:
    """The daily volatility report for D, with an explicit fallback; never silent.

    Exit codes: 0 normal, 3 fallback to an earlier day, 4 no data, 1 an output failed.
    """
    from upbit_pipeline.batch.report import run_report

    settings = _settings(
        ctx, lake__path=lake, warehouse__path=warehouse, alerts__slack_webhook=slack_webhook
    )
    when = _trading_day(day) if day else datetime.now(UTC).date() - timedelta(days=1)
    outputs = None if to is None else [x.strip() for x in to.split(",") if x.strip()]
    outcome = run_report(settings, when, outputs)
    raise typer.Exit(outcome.exit_code)


alert_app = typer.Typer(
    help="Real-time anomaly alerts (observational: they never trade).",
    invoke_without_command=True,
)
app.add_typer(alert_app, name="alert")


def _utc_time(value: str, flag: str) -> datetime:
    """``2025-05-15`` or ``2025-05-15T09:35`` (UTC unless an offset is given) -> aware UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(
            f"{flag} must be an ISO date or time, e.g. 2025-05-15T09:00 (got {value!r})"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _market_list(spec: str | None) -> list[str] | None:
    if spec is None or spec.strip().lower() == "all":
        return None
    return [code.strip().upper() for code in spec.split(",") if code.strip()]


@alert_app.callback()
def alert(
    ctx: typer.Context,
    upbit_url: UpbitUrl = None,
    bootstrap_servers: BootstrapServers = None,
    lake: LakePath = None,
    slack_webhook: SlackWebhook = None,
    replay: Annotated[
        str | None,
        typer.Option("--replay", help="Replay a capture file or 'lake' (with --from/--to)."),
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="Replay start, UTC.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Replay end, UTC.")] = None,
    markets: MarketsOpt = None,
) -> None:
    """Run the alert worker on upbit.trade and upbit.ticker (or --replay history)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings(
        ctx,
        upbit__url=upbit_url,
        broker__bootstrap_servers=bootstrap_servers,
        lake__path=lake,
        alerts__slack_webhook=slack_webhook,
    )
    if replay is not None:
        from upbit_pipeline.alerts import run_replay

        result = run_replay(
            settings,
            replay,
            start=_utc_time(start, "--from") if start else None,
            end=_utc_time(end, "--to") if end else None,
            markets=_market_list(markets),
        )
        stdout.print(str(result), highlight=False, soft_wrap=True)
        return
    from upbit_pipeline.alerts import run_alert_worker

    _run_service(lambda stop: run_alert_worker(settings, stop=stop))


@alert_app.command("backtest")
def alert_backtest(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--from", help="Start, UTC (inclusive).")],
    end: Annotated[str, typer.Option("--to", help="End, UTC (exclusive).")],
    markets: MarketsOpt = None,
    source: Annotated[
        str, typer.Option(help="'lake', 'rest' (1-minute candles) or a candle CSV/JSON file.")
    ] = "lake",
    upbit_url: UpbitUrl = None,
    lake: LakePath = None,
) -> None:
    """Run the alert rules over history and print the alerts they would have raised."""
    from upbit_pipeline.alerts import run_backtest

    settings = _settings(ctx, upbit__url=upbit_url, lake__path=lake)
    result = run_backtest(
        settings,
        _utc_time(start, "--from"),
        _utc_time(end, "--to"),
        _market_list(markets),
        source,
    )
    stdout.print(str(result), highlight=False, soft_wrap=True)


def _number(value: float) -> str:
    """Thousands separators, no exponent, no trailing zeros (Upbit prices span 1e-4..1e8)."""
    return f"{value:,.8f}".rstrip("0").rstrip(".")


def _trade_line(trade: Trade) -> str:
    """One readable line: KST time (Upbit's local time), market, side, price, size, KRW value."""
    when = datetime.fromtimestamp(trade.trade_timestamp / 1000, KST).strftime("%H:%M:%S.%f")[:-3]
    side = "[green]BUY [/]" if trade.ask_bid == "BID" else "[red]SELL[/]"
    value = trade.trade_price * trade.trade_volume
    return (
        f"{when} KST {trade.code:<11} {side} {_number(trade.trade_price):>13} "
        f"x {_number(trade.trade_volume):<15} {value:>12,.0f} KRW"
    )


async def _print_trades(
    upbit: UpbitSettings, spec: str, limit: int, duration_s: float
) -> TailStats:
    from upbit_pipeline.upbit.tail import TailStats, resolve_markets, stream_trades

    codes = await resolve_markets(upbit, spec)
    if not codes:
        raise UserError(f"no markets to tail (--markets {spec!r})")
    stderr.print(f"tailing trades of {len(codes)} market(s) from {upbit.websocket_url}")
    stats = TailStats()

    async def run() -> None:
        async for trade in stream_trades(upbit, codes, stats):
            stdout.print(_trade_line(trade), highlight=False, soft_wrap=True)
            if limit and stats.trades >= limit:
                return

    with contextlib.suppress(TimeoutError):  # --duration-s elapsed: a normal end
        await asyncio.wait_for(run(), timeout=duration_s or None)
    return stats


@app.command("tail")
def tail(
    ctx: typer.Context,
    upbit_url: UpbitUrl = None,
    markets: Annotated[
        str, typer.Option(help="'all' (every KRW market) or a list: KRW-BTC,KRW-ETH.")
    ] = "all",
    limit: Annotated[
        int, typer.Option(help="Stop after this many trades (0 = no limit).", min=0)
    ] = 0,
    duration_s: Annotated[
        float,
        typer.Option("--duration-s", help="Stop after this many seconds (0 = no limit).", min=0),
    ] = 0.0,
) -> None:
    """Print a live, readable tail of decoded trades."""
    settings = _settings(ctx, upbit__url=upbit_url)
    stats = asyncio.run(_print_trades(settings.upbit, markets, limit, duration_s))
    stderr.print(f"{stats.trades} trades, {stats.malformed} malformed frames skipped")


@app.command("demo")
def demo(
    duration: Annotated[
        int, typer.Option(help="Seconds of streaming (batch and the report follow).", min=30)
    ] = 120,
    markets: Annotated[int, typer.Option(help="Simulated KRW markets.", min=1, max=400)] = 20,
    seed: Annotated[int, typer.Option(help="Simulator seed: same seed, same data.")] = 1,
    live: Annotated[
        bool, typer.Option("--live", help="Stream from real Upbit (api.upbit.com), not the sim.")
    ] = False,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Folder for everything the demo writes (emptied).")
    ] = Path("./data/demo"),
) -> None:
    """The whole pipeline on this machine: simulator, broker, producer, consumer, alerts, batch.

    Exit code 0 when the lake verified, batch built and the report came out normal; 1 otherwise.
    """
    from upbit_pipeline.ops.demo import DemoOptions, run_demo

    options = DemoOptions(
        duration_s=float(duration), markets=markets, seed=seed, live=live, data_dir=data_dir
    )
    result = run_demo(options, stdout)
    raise typer.Exit(result.exit_code)


def main() -> None:
    """Entry point: known errors become one line on stderr, never a traceback.

    Exit codes: 2 for a user error (bad flag, setting or file), 1 for an operational failure the
    user did not cause (Upbit unreachable after retries, a ban), 130 for Ctrl-C.
    """
    try:
        app()
    except UserError as exc:
        stderr.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except UpbitPipelineError as exc:
        stderr.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
