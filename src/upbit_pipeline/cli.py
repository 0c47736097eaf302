"""The ``upbit-pipeline`` command: thin shells over library calls.

Every command builds its settings the same way (flags > environment > ``--config`` TOML >
defaults) and every user error ends as one line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
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
    _run_service(lambda stop: run_backfill(settings, stop=stop))


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
    duration: Annotated[int, typer.Option(help="Seconds to run the live part.", min=1)] = 60,
    markets: Annotated[int, typer.Option(help="Simulated KRW markets.", min=1, max=400)] = 20,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 1,
) -> None:
    """Start the simulator and tail its trades, on this machine, with no network."""
    from upbit_pipeline.upbit.simulator import SimConfig, Simulator

    async def run() -> TailStats:
        async with Simulator(SimConfig(port=0, markets=markets, seed=seed)) as simulator:
            stderr.print(f"simulator: {simulator.base_url} ({markets} KRW markets, seed {seed})")
            upbit = UpbitSettings(url=simulator.base_url)
            return await _print_trades(upbit, "all", 0, float(duration))

    stats = asyncio.run(run())
    stderr.print(
        f"demo finished: {stats.trades} trades decoded, {stats.malformed} malformed frames skipped"
    )


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
