"""REST raw ingestion for one UTC trading day D (``upbit-pipeline batch raw --date D``).

What it fetches, for D = [D 00:00 UTC, D+1 00:00 UTC) = [D 09:00 KST, D+1 09:00 KST):

* ``markets``: the ``/v1/market/all?is_details=true`` snapshot taken when the run starts (Upbit
  has no historical market list; a market delisted before the run is not in it);
* ``candles_1m``: every 1-minute candle of D for every market of the snapshot with the quote
  currency (KRW), about 8 pages of 200 per market, paged by ``UpbitRestClient.candles_range``;
* ``candles_1d``: Upbit's own day candle of D per market (one request each).

Minutes without trades are absent from the raw data, as Upbit returns them; silver makes them
explicit. All requests go through the client's per-group limiter, so the run stays at Upbit's 10
requests/s ceiling without 429s, and a 418 ban stops it at once (:class:`BannedError`).

Delivery: exactly-once partitions. Each market's rows are first staged under
``raw/rest/_staging/...`` (so an interrupted run **resumes**: staged markets are skipped), then
every dataset is written as one object per day (``paths.rest_raw_path``) in a single atomic write,
and the staging files are removed. A re-run of a finished day refetches and replaces each
partition atomically; readers see the old or the new partition, never a mix. The bytes are a pure
function of the fetched candles (no wall-clock column), so identical answers give identical files.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from upbit_pipeline.lake.layout import (
    rest_raw_path,
    rest_staging_dir,
    rest_staging_path,
)
from upbit_pipeline.lake.storage import LakeStorage, open_lake
from upbit_pipeline.settings import Settings
from upbit_pipeline.upbit.models import Candle, Market
from upbit_pipeline.upbit.rest import UpbitRestClient

__all__ = [
    "CANDLE_SCHEMA",
    "DAY_CANDLE_SCHEMA",
    "MARKET_SCHEMA",
    "RawResult",
    "candles_table",
    "day_bounds",
    "ingest_raw",
    "ingest_raw_async",
    "parquet_bytes",
]

log = logging.getLogger(__name__)

_TS = pa.timestamp("ms", tz="UTC")
_F64 = pa.float64()
CANDLE_SCHEMA = pa.schema(
    [
        ("market", pa.string()),
        ("candle_date_time_utc", _TS),  # candle start, UTC
        ("opening_price", _F64),  # quote currency (KRW)
        ("high_price", _F64),
        ("low_price", _F64),
        ("trade_price", _F64),  # close
        ("candle_acc_trade_price", _F64),  # turnover, quote currency (KRW)
        ("candle_acc_trade_volume", _F64),  # base currency
        ("timestamp", _TS),  # time of the candle's last trade, UTC
    ]
)
DAY_CANDLE_SCHEMA = pa.schema(
    [
        *CANDLE_SCHEMA,
        ("prev_closing_price", _F64),
        ("change_price", _F64),
        ("change_rate", _F64),  # fraction, not percent
    ]
)
MARKET_SCHEMA = pa.schema(
    [
        ("market", pa.string()),
        ("quote_currency", pa.string()),
        ("korean_name", pa.string()),
        ("english_name", pa.string()),
        ("warning", pa.bool_()),
        ("caution_flags", pa.list_(pa.string())),  # flags that are on, sorted
    ]
)


@dataclass(frozen=True)
class RawResult:
    """What one ingestion wrote. Only paths and counts: this is what Airflow's XCom carries."""

    date: str
    paths: dict[str, str]  # dataset -> lake-relative path
    markets: int  # markets whose candles were ingested
    resumed_markets: int  # of which taken from an earlier, interrupted run
    candles_1m: int
    candles_1d: int
    requests: int
    responses_429: int
    elapsed_s: float  # the whole run, commit included
    fetch_s: float  # the request phase only (what the rate limiter paces)

    @property
    def requests_per_s(self) -> float:
        """Sustained request rate of the fetch phase (Upbit's ceiling: 10/s per group)."""
        return self.requests / self.fetch_s if self.fetch_s > 0 else 0.0

    def counts(self) -> dict[str, int]:
        return {
            "markets": self.markets,
            "resumed_markets": self.resumed_markets,
            "candles_1m": self.candles_1m,
            "candles_1d": self.candles_1d,
            "requests": self.requests,
            "responses_429": self.responses_429,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """``[D 00:00 UTC, D+1 00:00 UTC)``: Upbit's trading day (09:00 KST to 09:00 KST)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def parquet_bytes(table: pa.Table) -> bytes:
    """Deterministic Parquet bytes (zstd, no write-time metadata): same rows -> same bytes."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", write_statistics=True)
    return sink.getvalue()


def _read_table(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def candles_table(candles: Sequence[Candle], *, day_fields: bool = False) -> pa.Table:
    """Candles as rows of :data:`CANDLE_SCHEMA` (or :data:`DAY_CANDLE_SCHEMA`), oldest first."""
    rows = sorted(candles, key=lambda c: (c.code, c.start_utc))
    columns: dict[str, Any] = {
        "market": [c.code for c in rows],
        "candle_date_time_utc": [c.start_utc for c in rows],
        "opening_price": [c.opening_price for c in rows],
        "high_price": [c.high_price for c in rows],
        "low_price": [c.low_price for c in rows],
        "trade_price": [c.trade_price for c in rows],
        "candle_acc_trade_price": [c.candle_acc_trade_price for c in rows],
        "candle_acc_trade_volume": [c.candle_acc_trade_volume for c in rows],
        "timestamp": [c.timestamp for c in rows],
    }
    schema = CANDLE_SCHEMA
    if day_fields:
        columns["prev_closing_price"] = [c.prev_closing_price for c in rows]
        columns["change_price"] = [c.change_price for c in rows]
        columns["change_rate"] = [c.change_rate for c in rows]
        schema = DAY_CANDLE_SCHEMA
    columns["timestamp"] = pa.array(columns["timestamp"], pa.int64()).cast(_TS)
    return pa.table(columns, schema=schema)


def _flags(market: Market) -> list[str]:
    caution = market.market_event.caution if market.market_event else {}
    return sorted(name for name, on in caution.items() if on)


def _markets_table(markets: Sequence[Market]) -> pa.Table:
    rows = sorted(markets, key=lambda m: m.market)
    return pa.table(
        {
            "market": [m.market for m in rows],
            "quote_currency": [m.quote for m in rows],
            "korean_name": [m.korean_name for m in rows],
            "english_name": [m.english_name for m in rows],
            "warning": [bool(m.market_event and m.market_event.warning) for m in rows],
            "caution_flags": [_flags(m) for m in rows],
        },
        schema=MARKET_SCHEMA,
    )


def _concat(tables: Sequence[pa.Table], schema: pa.Schema) -> pa.Table:
    if not tables:
        return schema.empty_table()
    table = pa.concat_tables([t.cast(schema) for t in tables])
    return table.sort_by([("market", "ascending"), ("candle_date_time_utc", "ascending")])


class _Run:
    """One ingestion: the client, the lake, the counters and the progress display."""

    def __init__(self, client: UpbitRestClient, lake: LakeStorage, day: date) -> None:
        self.client = client
        self.lake = lake
        self.day = day
        self.start, self.end = day_bounds(day)

    async def market_list(self, quote: str, only: Sequence[str] | None) -> list[str]:
        """The snapshot of this run: staged by the first attempt, so a resume keeps its set."""
        staged = self.lake.read(f"{rest_staging_dir('markets', self.day)}/data.parquet")
        if staged is None:
            table = _markets_table(await self.client.markets(details=True))
            self.lake.write(
                f"{rest_staging_dir('markets', self.day)}/data.parquet", parquet_bytes(table)
            )
        else:
            table = _read_table(staged)
        self.markets_table = table
        codes: list[str] = [
            code
            for code, q in zip(
                table.column("market").to_pylist(),
                table.column("quote_currency").to_pylist(),
                strict=True,
            )
            if q == quote
        ]
        if only is not None:
            wanted = set(only)
            codes = [code for code in codes if code in wanted]
        return codes

    async def fetch_market(self, market: str) -> tuple[int, int]:
        """Fetch and stage one market: its day candle first, its minutes last (the done mark)."""
        day_page = await self.client.candles(market, "1d", to=self.end, count=1)
        day = [c for c in day_page if c.start_utc == self.start]
        minutes = [c async for c in self.client.candles_range(market, "1m", self.start, self.end)]
        self.lake.write(
            rest_staging_path("candles_1d", self.day, market),
            parquet_bytes(candles_table(day, day_fields=True)),
        )
        self.lake.write(
            rest_staging_path("candles_1m", self.day, market), parquet_bytes(candles_table(minutes))
        )
        return len(minutes), len(day)

    def staged_markets(self) -> set[str]:
        done = self.lake.find(rest_staging_dir("candles_1m", self.day))
        return {path.rsplit("/", 1)[-1].removesuffix(".parquet") for path in done}

    def commit(self, markets: Sequence[str]) -> dict[str, str]:
        """Replace each dataset's partition with one atomic write, then drop the staging."""
        paths: dict[str, str] = {}
        for dataset, schema in (("candles_1d", DAY_CANDLE_SCHEMA), ("candles_1m", CANDLE_SCHEMA)):
            rels = [rest_staging_path(dataset, self.day, m) for m in markets]
            blobs = self.lake.read_many(rels)
            table = _concat([_read_table(blobs[rel]) for rel in rels], schema)
            paths[dataset] = rest_raw_path(dataset, self.day)
            self.lake.write(paths[dataset], parquet_bytes(table))
        paths["markets"] = rest_raw_path("markets", self.day)
        self.lake.write(paths["markets"], parquet_bytes(self.markets_table))
        _drop_staging(self.lake, self.day)
        return paths

    def count_rows(self, paths: dict[str, str]) -> tuple[int, int]:
        def rows(rel: str) -> int:
            data = self.lake.read(rel)
            return 0 if data is None else int(pq.ParquetFile(io.BytesIO(data)).metadata.num_rows)

        return rows(paths["candles_1m"]), rows(paths["candles_1d"])


def _drop_staging(lake: LakeStorage, day: date) -> None:
    """Remove the staged files of ``day`` (and, locally, their empty folders)."""
    for dataset in ("candles_1m", "candles_1d", "markets"):
        folder = rest_staging_dir(dataset, day)
        for rel in lake.find(folder):
            lake.delete(rel)
        if lake.local:
            with contextlib.suppress(OSError):
                os.rmdir(lake.full(folder))


def _totals(client: UpbitRestClient) -> tuple[int, int]:
    """Requests and 429 answers so far, over every rate-limit group."""
    stats = client.stats().values()
    return sum(s.requests for s in stats), sum(s.responses_429 for s in stats)


def _progress(enabled: bool | None) -> Progress:
    console = Console(stderr=True)
    if enabled is None:
        enabled = sys.stderr.isatty()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


async def ingest_raw_async(
    day: date,
    *,
    base_url: str,
    lake: LakeStorage | str,
    quote: str = "KRW",
    markets: Sequence[str] | None = None,
    concurrency: int = 8,
    resume: bool = True,
    progress: bool | None = None,
    client: UpbitRestClient | None = None,
) -> RawResult:
    """Ingest D's market snapshot, 1-minute and day candles into the lake (see module doc).

    ``markets`` restricts the run to those codes (tests, a partial re-fetch); ``resume=False``
    throws away the staging of an interrupted run first. ``concurrency`` workers share the one
    rate limiter: enough to keep the 10 requests/s ceiling busy across network round trips.
    ``progress``: a rich progress bar on stderr; None = only when stderr is a terminal.
    """
    storage = open_lake(lake) if isinstance(lake, str) else lake
    own_client = client is None
    rest = client if client is not None else UpbitRestClient(base_url)
    began = time.monotonic()
    base_requests, base_429 = _totals(rest)
    run = _Run(rest, storage, day)
    try:
        if not resume:
            _drop_staging(storage, day)
        if run.end > datetime.now(UTC):
            log.warning("trading day %s is not over yet: its candles are incomplete", day)
        fetch_began = time.monotonic()
        codes = await run.market_list(quote, markets)
        staged = run.staged_markets() & set(codes)
        todo = [code for code in codes if code not in staged]
        log.info(
            "raw %s: %d %s markets, %d already staged, %d to fetch",
            day,
            len(codes),
            quote,
            len(staged),
            len(todo),
        )
        queue: asyncio.Queue[str] = asyncio.Queue()
        for code in todo:
            queue.put_nowait(code)
        with _progress(progress) as bar:
            task = bar.add_task(f"candles {day}", total=len(codes), completed=len(staged), rate="")

            async def worker() -> None:
                while True:
                    try:
                        code = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    await run.fetch_market(code)
                    sent = _totals(rest)[0] - base_requests
                    rate = sent / max(time.monotonic() - began, 1e-9)
                    bar.update(task, advance=1, rate=f"{rate:4.1f} req/s")

            await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        fetch_s = time.monotonic() - fetch_began
        paths = run.commit(codes)
        n_1m, n_1d = run.count_rows(paths)
    finally:
        if own_client:
            await rest.aclose()
    requests, responses_429 = _totals(rest)
    requests -= base_requests
    responses_429 -= base_429
    result = RawResult(
        date=day.isoformat(),
        paths=paths,
        markets=len(codes),
        resumed_markets=len(staged),
        candles_1m=n_1m,
        candles_1d=n_1d,
        requests=requests,
        responses_429=responses_429,
        elapsed_s=time.monotonic() - began,
        fetch_s=fetch_s,
    )
    log.info(
        "raw %s: %d markets, %d 1m candles, %d requests in %.1f s (%.2f/s, %d x 429)",
        day,
        result.markets,
        result.candles_1m,
        result.requests,
        result.elapsed_s,
        result.requests_per_s,
        result.responses_429,
    )
    return result


def ingest_raw(
    settings: Settings,
    day: date,
    *,
    markets: Sequence[str] | None = None,
    resume: bool = True,
    progress: bool | None = None,
    concurrency: int = 8,
) -> RawResult:
    """Synchronous entry point for the CLI and Airflow: :func:`ingest_raw_async` with settings."""
    return asyncio.run(
        ingest_raw_async(
            day,
            base_url=settings.upbit.url,
            lake=settings.lake.path,
            markets=markets,
            resume=resume,
            progress=progress,
            concurrency=concurrency,
        )
    )
