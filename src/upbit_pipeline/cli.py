"""The ``upbit-pipeline`` command: thin shells over library calls.

Every command builds its settings the same way (flags > environment > ``--config`` TOML >
defaults) and every user error ends as one line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from upbit_pipeline.errors import UserError
from upbit_pipeline.logs import LogFormat, configure_logging
from upbit_pipeline.settings import Settings, load_settings

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

    loaded = Scenario.load(scenario) if scenario is not None else None
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
    from upbit_pipeline.upbit.tail import tail_trades

    settings = _settings(ctx, upbit__url=upbit_url)
    asyncio.run(tail_trades(settings.upbit, markets, stdout, limit=limit, duration_s=duration_s))


@app.command("demo")
def demo(
    duration: Annotated[int, typer.Option(help="Seconds to run the live part.", min=1)] = 60,
    markets: Annotated[int, typer.Option(help="Simulated KRW markets.", min=1, max=400)] = 20,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 1,
) -> None:
    """Run the simulator and a live tail of its trades, on this machine, with no network."""
    from upbit_pipeline.upbit.tail import demo_tail

    asyncio.run(demo_tail(stdout, duration_s=float(duration), markets=markets, seed=seed))


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()
    except UserError as exc:
        stderr.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
