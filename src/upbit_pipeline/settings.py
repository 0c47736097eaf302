"""The one typed settings tree.

Precedence, highest first: CLI flags > environment (``UPBIT_PIPELINE_<SECTION>__<KEY>``) > a TOML
file given with ``--config`` > the embedded defaults below. The defaults make everything run on one
machine with no setup; production parts come by configuration alone.

Unknown keys are errors wherever they come from (TOML table, environment variable), because a
silently ignored key is a setting the user believes is in force and is not. Secrets are
``SecretStr`` so that no log line, repr or ``config show`` ever prints them.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from upbit_pipeline.errors import ConfigError

ENV_PREFIX = "UPBIT_PIPELINE_"
ENV_NESTED_DELIMITER = "__"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def rest_root(base_url: str) -> str:
    """Upbit's quotation REST root for a host root: ``BASE/v1`` (the one place for ``/v1``)."""
    return f"{base_url.rstrip('/')}/v1"


class UpbitSettings(_Section):
    """Where Upbit is. The same code talks to api.upbit.com and to the local simulator."""

    url: str = Field(
        default="https://api.upbit.com",
        description="Base URL. REST is BASE/v1/..., WebSocket is ws(s)://same-host/websocket/v1.",
    )
    ws_format: Literal["SIMPLE", "DEFAULT"] = Field(
        default="SIMPLE", description="WebSocket response format; SIMPLE is about 40% fewer bytes."
    )

    @field_validator("url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an http(s) URL such as https://api.upbit.com")
        return value.rstrip("/")

    @property
    def rest_base_url(self) -> str:
        """REST root: ``BASE/v1`` (Upbit's quotation API lives under /v1)."""
        return rest_root(self.url)

    @property
    def websocket_url(self) -> str:
        """Quotation WebSocket: the same host, ``ws``/``wss`` scheme, path ``/websocket/v1``."""
        parts = urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path + "/websocket/v1", "", ""))


class BrokerSettings(_Section):
    """Kafka-protocol broker: the embedded Tansu by default, Redpanda/Kafka in production."""

    bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    topic_prefix: str = Field(
        default="upbit", pattern=r"^[A-Za-z0-9._-]+$", description="Topics are PREFIX.trade, ..."
    )
    partitions: int = Field(default=3, ge=1, le=1000)
    replication_factor: int = Field(default=1, ge=1, le=10)
    retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=-1, description="-1 = forever")


class ProducerSettings(_Section):
    """The WebSocket -> Kafka producer (``upbit-pipeline produce``)."""

    markets: str = Field(default="all", description="'all' KRW markets or KRW-BTC,KRW-ETH,...")
    channels: Annotated[tuple[Literal["trade", "ticker", "orderbook", "candle"], ...], NoDecode] = (
        "trade",
        "ticker",
        "orderbook",
    )
    compression: Literal["zstd", "lz4"] = "zstd"
    linger_ms: int = Field(default=5, ge=0, le=1000)
    spool_dir: Path = Path("./data/spool")
    spool_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024 * 1024)
    dedup_window: int = Field(
        default=200_000, ge=1000, description="trades remembered per process to drop repeats"
    )
    market_refresh_s: float = Field(default=300.0, ge=5.0)
    backfill: bool = Field(default=True, description="run the gap backfill worker in-process")
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    backfill_metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="metrics of a standalone `backfill` worker"
    )

    @field_validator("channels", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


class LakeSettings(_Section):
    """Parquet lake root: a local folder by default, ``gs://`` or ``s3://`` in production."""

    path: str = Field(default="./data/lake", min_length=1)
    consumer_group: str = Field(default="upbit-lake", min_length=1)
    flush_interval_s: float = Field(
        default=60.0, gt=0, description="maximum latency before buffered records become a file"
    )
    max_records_per_file: int = Field(default=500_000, ge=1)
    max_bytes_per_file: int = Field(default=128 * 1024 * 1024, ge=1024)
    # 64 MiB: about 20 s of Upbit's ~2k frames/s as buffered Arrow (~3.5 MB/s, 30-level books
    # are 3/4 of it). The sink then holds ~250 MB RSS flat instead of a 60 s saw-tooth up to
    # ~670 MB; mostly the orderbook partitions are cut early, into files of ~4 MiB of Parquet
    # (docs/benchmarks.md). Below max_bytes_per_file, this budget is what bounds a file at
    # high rates.
    max_buffered_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="process-wide budget of buffered records; the largest buffers flush first",
    )
    metrics_port: int | None = Field(default=None, ge=0, le=65535)


class WarehouseSettings(_Section):
    """DuckDB warehouse file used by dbt's default target."""

    path: Path = Path("./data/warehouse.duckdb")


class AlertSettings(_Section):
    """Where alerts go: console and a JSONL file always, Slack when a webhook is set."""

    console: bool = True
    jsonl_path: Path = Path("./data/alerts.jsonl")
    slack_webhook: SecretStr | None = Field(
        default=None, description="Slack incoming-webhook URL (secret: never printed)."
    )
    rules_file: Path | None = Field(
        default=None, description="TOML file of alert rules and overrides (docs/alerts.md)."
    )
    consumer_group: str = Field(default="upbit-alerts", min_length=1)
    slack_max_attempts: int = Field(default=6, ge=1, le=100)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)

    @field_validator("slack_webhook")
    @classmethod
    def _webhook_is_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlsplit(value.get_secret_value()).scheme not in {"http", "https"}:
            raise ValueError("must be an http(s) URL")
        return value


class OpsSettings(_Section):
    """Operations: failure notices, application watchdogs and ``status`` thresholds."""

    slack_webhook: SecretStr | None = Field(
        default=None, description="webhook for ops notices; none = alerts.slack_webhook"
    )
    state_dir: Path | None = Field(
        default=None, description="none = $STATE_DIRECTORY/ops under systemd, else ./data/ops"
    )
    watch_interval_s: float = Field(default=30.0, gt=0)
    no_trades_s: float = Field(default=300.0, gt=0)
    consumer_stall_s: float = Field(default=300.0, gt=0)
    repeat_s: float = Field(default=3600.0, gt=0)
    status_stale_after_s: float = Field(default=120.0, gt=0)

    def webhook(self, alerts: AlertSettings) -> str | None:
        """The webhook ops notices go to: its own, else the alerts one, else none."""
        secret = self.slack_webhook or alerts.slack_webhook
        return secret.get_secret_value() if secret is not None else None


class Settings(BaseSettings):
    """Every setting of upbit-pipeline. docs/configuration.md lists them all."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    upbit: UpbitSettings = UpbitSettings()
    broker: BrokerSettings = BrokerSettings()
    producer: ProducerSettings = ProducerSettings()
    lake: LakeSettings = LakeSettings()
    warehouse: WarehouseSettings = WarehouseSettings()
    alerts: AlertSettings = AlertSettings()
    ops: OpsSettings = OpsSettings()

    _toml_file: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_file))
        return tuple(sources)

    def redacted(self) -> dict[str, Any]:
        """Settings as plain data with every secret replaced by ``**********``."""
        return self.model_dump(mode="json")


def _known_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _known_keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def _check_env_keys(environ: dict[str, str]) -> None:
    known = _known_keys(Settings)
    for var in sorted(environ):
        if not var.upper().startswith(ENV_PREFIX):
            continue
        key = var[len(ENV_PREFIX) :].lower().replace(ENV_NESTED_DELIMITER, ".")
        if key not in known:
            raise ConfigError(f"unknown setting in environment variable {var} (no key {key!r})")


def _check_toml(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    known = _known_keys(Settings)
    sections = {key.split(".")[0] for key in known}
    for section, table in data.items():
        if section not in sections:
            raise ConfigError(f"unknown setting {section!r} in {path}")
        if not isinstance(table, dict):
            raise ConfigError(f"setting {section!r} in {path} must be a table ([{section}])")
        for key in table:
            if f"{section}.{key}" not in known:
                raise ConfigError(f"unknown setting '{section}.{key}' in {path}")


def _nest(overrides: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        nested.setdefault(section, {})[key] = value
    return nested


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "settings"
    message = first["msg"]
    value = first.get("input")
    secret = any(word in key for word in ("password", "webhook", "secret", "key"))
    shown = "" if secret or isinstance(value, dict) else f" (got {value!r})"
    more = f"; and {len(error.errors()) - 1} more" if len(error.errors()) > 1 else ""
    return f"invalid setting {key}: {message}{shown}{more}"


def load_settings(
    config_file: Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Build the settings from flags (dotted ``overrides``), environment, TOML and defaults.

    Raises :class:`ConfigError` with one line that names the offending key.
    """
    _check_env_keys(dict(os.environ))
    if config_file is not None:
        _check_toml(config_file)
    nested = _nest(overrides or {})
    # Sections given on the command line are merged field by field with lower sources by
    # pydantic-settings' deep update, so a flag overrides one key and leaves the rest.
    previous = Settings._toml_file
    Settings._toml_file = config_file
    try:
        return Settings(**nested)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    except SettingsError as exc:  # e.g. an environment value that is not valid JSON
        raise ConfigError(str(exc).splitlines()[0]) from None
    finally:
        Settings._toml_file = previous
