"""One trade gap, from ``/v1/trades/ticks`` into the log: day planning, raw paging, publishing.

:func:`backfill_gap` does one gap end to end (fetch, publish, flush) and knows nothing about
consumer groups or offsets; ``backfill.py`` wraps it in the worker that owns the commit policy.

Upbit keeps trades for the current UTC day and the 7 before it, and answers per UTC day: without
``days_ago`` a request reads today, ``days_ago=k`` (1..7) reads the day k days back; ``to``
(``HHmmss``, UTC) is a time *within* that day, and ``cursor`` (a ``sequential_id``) continues with
the trades before that one. Pages are newest first and never cross into the previous day, so a gap
that crosses 00:00 UTC is fetched as one query per day (:func:`plan_days`).

Which day is "today" is the exchange's business, not ours: near midnight, or against a simulator
whose clock runs elsewhere, the local date can be off by a day or more. Every trade carries its
own time, so a page whose trades belong to another day than the one asked for reveals the
exchange's real date (:class:`WrongDayError`); the caller re-plans with it.

The record contract keeps exchange bytes untouched, so a page is split into its elements with
``msgspec.Raw`` (each element's bytes exactly as Upbit spelled them) and decoded once with
:func:`decode_trades_rest` for the fields we filter on; both lists are in response order.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Final, Literal

import msgspec
from confluent_kafka import KafkaError, Message, Producer

from upbit_pipeline.errors import TransientError
from upbit_pipeline.streaming.gaps import GapEvent
from upbit_pipeline.streaming.records import FORMAT_REST, RecordHeaders
from upbit_pipeline.upbit.decode import decode_trades_rest
from upbit_pipeline.upbit.errors import MalformedFrameError, UpbitApiError
from upbit_pipeline.upbit.models import Trade
from upbit_pipeline.upbit.rest import UpbitRestClient

__all__ = [
    "DAY_MS",
    "MAX_DAYS_AGO",
    "TRADE_PAGE_MAX",
    "DayQuery",
    "GapOutcome",
    "GapProgress",
    "GapStatus",
    "RawTrade",
    "WrongDayError",
    "backfill_gap",
    "iter_day_trades",
    "plan_days",
    "split_page",
    "utc_day",
    "wall_utc_day",
]

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
MAX_DAYS_AGO = 7  # Upbit: days_ago 1..7, trades older than that are gone from REST
TRADE_PAGE_MAX = 500

_MAX_WRONG_DAY_RETRIES: Final = 3

GapStatus = Literal["repaired", "truncated", "unrecoverable"]

_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])


def utc_day(ms: int) -> int:
    """UTC day number (days since 1970-01-01) of an epoch-ms instant."""
    return ms // DAY_MS


def wall_utc_day() -> int:
    """Today's UTC day number by the local clock (a first guess at the exchange's date)."""
    return utc_day(time.time_ns() // 1_000_000)


@dataclass(frozen=True)
class RawTrade:
    """One REST trade: the decoded fields and the element's bytes exactly as Upbit sent them."""

    trade: Trade
    raw: bytes


@dataclass(frozen=True)
class DayQuery:
    """One UTC day of a gap: ``days_ago`` (None = today) and ``to`` (None = end of that day)."""

    day: int
    days_ago: int | None
    to: str | None


@dataclass(frozen=True)
class GapOutcome:
    """What :func:`backfill_gap` did; ``today`` is the exchange's UTC day as it turned out."""

    status: GapStatus
    trades_published: int
    rest_requests: int
    today: int
    detail: str = ""


@dataclass
class GapProgress:
    """Counts that must survive an exception half-way through a gap (for the stats)."""

    published: int = 0
    requests: int = 0
    delivery_errors: list[str] = field(default_factory=list)


class WrongDayError(Exception):
    """A page held trades of another UTC day than asked: the exchange's today is ``today``."""

    def __init__(self, asked_day: int, got_day: int, today: int) -> None:
        super().__init__(f"asked for UTC day {asked_day}, got trades of day {got_day}")
        self.asked_day = asked_day
        self.got_day = got_day
        self.today = today


def split_page(body: bytes) -> list[RawTrade]:
    """A trades body as (decoded, raw bytes) pairs in response order."""
    trades = decode_trades_rest(body)
    try:
        raws = _RAW_LIST.decode(body)
    except msgspec.DecodeError as exc:  # decode_trades_rest accepted it, so this is unreachable
        raise MalformedFrameError(f"trades body does not split: {exc}", body) from exc
    if len(raws) != len(trades):
        raise MalformedFrameError("trades body split into a different number of items", body)
    return [RawTrade(trade, bytes(raw)) for trade, raw in zip(trades, raws, strict=True)]


def _to_param(day: int, to_ms: int) -> str | None:
    """``to`` for ``day`` covering trades up to ``to_ms`` inclusive; None = the whole day.

    ``to`` has whole seconds and Upbit does not say whether it is inclusive, so the first whole
    second strictly after ``to_ms`` is sent; the overshoot is filtered locally.
    """
    offset_ms = to_ms + 1 - day * DAY_MS
    if offset_ms >= DAY_MS:
        return None
    seconds = max(1, math.ceil(offset_ms / 1000))
    if seconds >= 86_400:
        return None
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}{minutes:02d}{secs:02d}"


def plan_days(from_ms: int, to_ms: int, today: int) -> tuple[list[DayQuery], bool]:
    """The per-day queries for ``[from_ms, to_ms]``, newest day first, and whether it is truncated.

    Days after ``today`` are skipped (nothing happened there yet); days more than
    :data:`MAX_DAYS_AGO` before ``today`` are out of Upbit's window: they are left out and the
    second value says so (True = some of the gap can never be fetched).
    """
    queries: list[DayQuery] = []
    truncated = False
    for day in range(utc_day(to_ms), utc_day(from_ms) - 1, -1):
        ago = today - day
        if ago < 0:
            continue
        if ago > MAX_DAYS_AGO:
            truncated = True
            break
        queries.append(DayQuery(day, ago or None, _to_param(day, to_ms)))
    return queries, truncated


async def iter_day_trades(
    client: UpbitRestClient,
    market: str,
    query: DayQuery,
    from_ms: int,
    to_ms: int,
    *,
    page_size: int = TRADE_PAGE_MAX,
    progress: GapProgress | None = None,
) -> AsyncIterator[list[RawTrade]]:
    """Yield the trades with ``from_ms <= ts <= to_ms`` page by page, newest first.

    Pages are chained by ``cursor`` = the last ``sequential_id`` received. ``sequential_id`` does
    not order trades, so ids already seen on the previous page are dropped. Stops at an empty or
    short page (the day is exhausted), at a page with nothing new, or at the first trade older
    than ``from_ms``. Raises :class:`WrongDayError` when the trades are not of ``query.day``.
    Every request is counted in ``progress`` before it is sent (failed ones count too).
    """
    cursor: int | None = None
    previous: set[int] = set()
    while True:
        if progress is not None:
            progress.requests += 1
        body = await client.trades_raw(
            market, count=page_size, cursor=cursor, days_ago=query.days_ago, to=query.to
        )
        page = split_page(body)
        fresh = [item for item in page if item.trade.sequential_id not in previous]
        if fresh:
            got = utc_day(fresh[0].trade.trade_timestamp)
            if got != query.day:
                raise WrongDayError(query.day, got, got + (query.days_ago or 0))
        keep = [item for item in fresh if from_ms <= item.trade.trade_timestamp <= to_ms]
        yield keep
        if (
            not fresh
            or len(page) < page_size
            or any(item.trade.trade_timestamp < from_ms for item in fresh)
        ):
            return
        previous = {item.trade.sequential_id for item in page}
        cursor = page[-1].trade.sequential_id


def _headers() -> list[tuple[str, str | bytes | None]]:
    return list(RecordHeaders(time.time_ns(), "rest", FORMAT_REST, backfill=True).encode())


async def _publish(
    producer: Producer, topic: str, items: list[RawTrade], progress: GapProgress
) -> None:
    """Queue one page of trades: key = market, value = Upbit's bytes, timestamp = trade time."""

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            progress.delivery_errors.append(str(error))

    headers = _headers()
    for item in items:
        while True:
            try:
                producer.produce(
                    topic,
                    value=item.raw,
                    key=item.trade.code.encode(),
                    timestamp=item.trade.trade_timestamp,
                    headers=headers,
                    on_delivery=delivered,
                )
                break
            except BufferError:  # the local queue is full: let librdkafka drain it
                await asyncio.to_thread(producer.poll, 0.1)
        progress.published += 1
    producer.poll(0)


async def _flush(producer: Producer, progress: GapProgress) -> None:
    """Wait until every queued record is acknowledged (``acks=all``), or raise to retry the gap."""
    while await asyncio.to_thread(producer.flush, 1.0) > 0:
        pass
    if progress.delivery_errors:
        first = progress.delivery_errors[0]
        raise TransientError(f"{len(progress.delivery_errors)} records not delivered: {first}")


async def _fetch_and_publish(
    gap: GapEvent,
    *,
    client: UpbitRestClient,
    producer: Producer,
    topic: str,
    today: int,
    progress: GapProgress,
    page_size: int,
) -> GapStatus:
    queries, truncated = plan_days(gap.from_ms, gap.to_ms, today)
    if not queries:
        return "unrecoverable" if truncated else "repaired"
    for query in queries:
        async for items in iter_day_trades(
            client,
            gap.market,
            query,
            gap.from_ms,
            gap.to_ms,
            page_size=page_size,
            progress=progress,
        ):
            await _publish(producer, topic, items, progress)
    return "truncated" if truncated else "repaired"


async def backfill_gap(
    gap: GapEvent,
    *,
    client: UpbitRestClient,
    producer: Producer,
    topic: str,
    today: int | None = None,
    page_size: int = TRADE_PAGE_MAX,
    progress: GapProgress | None = None,
) -> GapOutcome:
    """Fetch every trade of ``gap.market`` with ``from_ms <= ts <= to_ms`` and publish it; flush.

    ``today`` is the exchange's UTC day number (default: the local date); never earlier than the
    gap's end. A page from another day than asked corrects it (and the gap is fetched again with
    the right ``days_ago``; duplicates are harmless). Returns ``unrecoverable`` for a gap wholly
    older than Upbit's 7-day window (nothing is requested) and for a terminal
    :class:`UpbitApiError` such as 404 for a delisted market (what was published is kept).
    Transient REST or delivery failures and :class:`BannedError` propagate: retry the gap.
    """
    progress = progress if progress is not None else GapProgress()
    # The exchange has seen ``to_ms``, so its today is no earlier than that day.
    day = max(wall_utc_day() if today is None else today, utc_day(gap.to_ms))
    if gap.to_ms < gap.from_ms:
        return GapOutcome("unrecoverable", 0, 0, day, "to_ms is before from_ms")
    detail = ""
    for _ in range(_MAX_WRONG_DAY_RETRIES):
        try:
            status = await _fetch_and_publish(
                gap,
                client=client,
                producer=producer,
                topic=topic,
                today=day,
                progress=progress,
                page_size=page_size,
            )
        except WrongDayError as exc:
            log.warning(
                "exchange's UTC day is %d, not %d: fetching the gap again",
                exc.today,
                day,
                extra={"market": gap.market},
            )
            day = exc.today
            continue
        except UpbitApiError as exc:
            status, detail = "unrecoverable", str(exc)
        if status == "truncated":
            detail = "older than Upbit's 7-day trade window in part"
        elif status == "unrecoverable" and not detail:
            detail = "older than Upbit's 7-day trade window"
        await _flush(producer, progress)
        return GapOutcome(status, progress.published, progress.requests, day, detail)
    raise TransientError(f"the exchange's UTC day did not settle for {gap.market}")
