"""Lake sink benchmarks: consumer -> Parquet throughput, files per hour, RSS over a run.

* **Throughput** (goal >= 50k trades/s): a real embedded broker is pre-filled with N SIMPLE trade
  frames of 50 markets (with the producer's headers); a fresh consumer group then consumes and
  writes them to a local lake with the default rotation. The clock starts at the partition
  assignment (group-join time is the broker's, not the sink's) and stops when the last file is
  written and committed. A second row times the writer alone (decode + columns + zstd Parquet).
* **Files per hour and average file size** at Upbit's real rate, from the rotation rules and the
  measured Parquet and buffered bytes per record of each channel, simulated over one hour.
  Assumed mix of ~2,000 frames/s: 800 orderbook (platform notes: all 855 books ≈ 800 frames/s),
  600 trade, 500 ticker, 100 candle; 3 partitions per topic; default settings (60 s flush, 500k
  records, 128 MiB per file, 64 MiB buffer budget).
* **RSS** of a consumer process (the sink alone, as in production) while 2,000 frames/s of the mix
  stream through it: sampled each second after a warm-up. ``UPBIT_BENCH_LAKE_RSS_S=600`` runs the
  10-minute version with the default 60 s flush (default 20 s with a 2 s flush, so that even the
  short run spans many files; ``UPBIT_BENCH_LAKE_FLUSH_S`` overrides the flush). "Flat" is a
  number, not a look at a plot: **end − RSS at 2 min ≤ 10 % of RSS at 2 min, and peak ≤ 1.25 ×
  median**, where "end" and "at 2 min" are 30 s means (see :class:`RssShape`; for runs shorter than
  10 min, "2 min" is 20 % into the run). The first row is the drift (end − RSS at 2 min), the
  second the peak over the median; the notes give start, RSS at 2 min, median, peak, end, the
  growth over the last 5 minutes (last half of a shorter run), and the peak of the sink's buffered
  bytes (``upbit_lake_buffered_bytes``). The sink fetches with a 500 ms wait instead of
  production's 10 ms: the embedded broker's memory storage slows as it fills and, polled every 10
  ms, starved the sink after ~4 minutes. A run whose input did not arrive at the rate (fewer than
  95 % of the frames consumed) is marked INVALID in its note.

``UPBIT_BENCH_LAKE_ONLY=rss`` (or ``throughput``) runs one part only, for quick A/B runs;
``UPBIT_BENCH_LAKE_SAMPLES=FILE`` keeps the per-second samples, and
``python -m bench.bench_lake rss-report FILE WARMUP_S FLUSH_S`` recomputes the rows from them.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from bench.bench_decode import TICKER
from bench.common import Result, rate_median
from upbit_pipeline.lake.sink import LakeSink
from upbit_pipeline.lake.writer import PartitionWriter, Rotation
from upbit_pipeline.settings import BrokerSettings, LakeSettings, Settings
from upbit_pipeline.streaming.broker import EmbeddedBroker
from upbit_pipeline.streaming.kafka import producer_config
from upbit_pipeline.streaming.records import RecordHeaders

RECORDS = int(os.environ.get("UPBIT_BENCH_LAKE_RECORDS", "200000"))
RSS_SECONDS = float(os.environ.get("UPBIT_BENCH_LAKE_RSS_S", "20"))
FLUSH_S = os.environ.get("UPBIT_BENCH_LAKE_FLUSH_S")
ONLY = os.environ.get("UPBIT_BENCH_LAKE_ONLY", "")
RATE = 2000
MIX = {"orderbook": 800, "trade": 600, "ticker": 500, "candle": 100}
FAST_GROUP = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500}
RSS_FETCH = {"fetch.wait.max.ms": 500, "fetch.min.bytes": 256 * 1024}
T0 = 1_788_335_180_377
MARKETS = [f"KRW-C{i:03d}" for i in range(50)]


def trade(i: int) -> tuple[bytes, bytes, int]:
    """(key, SIMPLE trade frame, event ms) number ``i``: 50 markets, prices that move."""
    market, ts = MARKETS[i % len(MARKETS)], T0 + i
    price = 1000.0 + (i * 7919) % 5000
    value = (
        f'{{"ty":"trade","cd":"{market}","tms":{ts + 40},"td":"2026-09-02","ttm":"07:46:20",'
        f'"ttms":{ts},"tp":{price},"tv":{(i % 997) / 1000 + 0.0001:.8f},"ab":"{"AB"[i % 2]}ID",'
        f'"pcp":1000.0,"c":"RISE","cp":{price - 1000.0},"sid":{17883351800000000 + i},'
        f'"bap":{price + 1},"bas":0.5,"bbp":{price},"bbs":0.25,"st":"REALTIME"}}'
    ).encode()
    return market.encode(), value, ts


def candle(ts: int) -> bytes:
    return (
        '{"ty":"candle.1m","cd":"KRW-BTC","cdttmu":"2026-09-02T07:46:00",'
        '"cdttmk":"2026-09-02T16:46:00","op":149000000.0,"hp":149100000.0,"lp":148900000.0,'
        f'"tp":149000000.0,"catv":0.33557,"catp":49999.93,"tms":{ts},"st":"REALTIME"}}'
    ).encode()


def orderbook(i: int) -> bytes:
    """A 30-level SIMPLE book whose prices and sizes move from frame to frame (as real ones do)."""
    mid = 116_500_000 + 1000 * ((i * 37) % 400)
    units = ",".join(
        f'{{"ap":{mid + 1000 * (k + 1)},"bp":{mid - 1000 * k},'
        f'"as":{((i * 7919 + k * 104729) % 10**7) / 10**8:.8f},'
        f'"bs":{((i * 104729 + k * 7919) % 10**7) / 10**8:.8f}}}'
        for k in range(30)
    )
    return (
        f'{{"ty":"orderbook","cd":"{MARKETS[i % len(MARKETS)]}","tms":{T0 + i},'
        f'"tas":{(i % 9973) / 100:.8f},"tbs":{(i % 7919) / 100:.8f},"obu":[{units}],'
        '"st":"REALTIME","lv":0}'
    ).encode()


def ticker(i: int) -> bytes:
    """The real DEFAULT ticker of bench_decode with moving price, volume and time."""
    return (
        TICKER.replace(b'"timestamp":1745130655652', f'"timestamp":{T0 + i}'.encode())
        .replace(b'"code":"KRW-BTC"', f'"code":"{MARKETS[i % len(MARKETS)]}"'.encode())
        .replace(b'"trade_price":122902000.00000000', f'"trade_price":{122902000 + i}.0'.encode())
        .replace(b'"acc_trade_volume":160.18173252', f'"acc_trade_volume":{160 + i / 1e4}'.encode())
    )


def _frame(channel: str, i: int) -> tuple[bytes, bytes, int]:
    market = MARKETS[i % len(MARKETS)].encode()
    if channel == "trade":
        return trade(i)
    if channel == "ticker":
        return market, ticker(i), T0 + i
    if channel == "orderbook":
        return market, orderbook(i), T0 + i
    return b"KRW-BTC", candle(T0 + i), T0 + i


def _headers(i: int) -> Any:
    """The producer's headers (typed loosely: confluent-kafka and the writer spell them apart)."""
    return RecordHeaders(time.time_ns(), f"bench-0-{i % 3}", "SIMPLE").encode()


def _produce(broker: EmbeddedBroker, topic: str, frames: list[tuple[bytes, bytes, int]]) -> None:
    producer = Producer(producer_config(broker.settings))
    for i, (key, value, ts) in enumerate(frames):
        while True:
            try:
                producer.produce(topic, value, key, timestamp=ts, headers=_headers(i))
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(60):
        raise RuntimeError("pre-fill did not finish")


def _settings(broker: EmbeddedBroker, lake: str, **lake_options: Any) -> Settings:
    group = f"bench-{uuid.uuid4().hex}"
    return Settings(
        broker=broker.settings,
        lake=LakeSettings(path=lake, consumer_group=group, **lake_options),
    )


def _consume_all(broker: EmbeddedBroker, root: Path, count: int) -> float:
    """Drain ``count`` pre-filled trades through a fresh group; seconds from assignment."""
    sink = LakeSink(_settings(broker, str(root / uuid.uuid4().hex)), kafka_overrides=FAST_GROUP)
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    while not sink.stats.assignments:
        time.sleep(0.001)
    start = time.perf_counter()
    while sink.stats.records < count and thread.is_alive():
        time.sleep(0.001)
    stop.set()
    thread.join()
    elapsed = time.perf_counter() - start
    if sink.stats.commits == 0 or sum(sink.stats.rows.values()) != count:
        raise RuntimeError(f"the sink did not write all {count} records: {sink.stats}")
    return elapsed


def _throughput(broker: EmbeddedBroker, root: Path) -> Result:
    rates = [RECORDS / _consume_all(broker, root, RECORDS) for _ in range(3)]
    return Result(
        "lake sink: trades consumed + written + committed",
        statistics.median(rates),
        "records/s",
        ">= 50k/s",
        f"{RECORDS:,} SIMPLE trades, 3 partitions, zstd, local disk, median of 3",
    )


def _writer_only() -> tuple[Result, dict[str, float], dict[str, float]]:
    """Writer alone; Parquet bytes and buffered (in-memory) bytes per record of each channel."""
    frames = [trade(i) for i in range(100_000)]

    def work() -> int:
        writer = PartitionWriter("upbit.trade", 0, "trade", Rotation())
        for i, (key, value, ts) in enumerate(frames):
            writer.add(i, key, value, ts, _headers(i))
        writer.seal()
        (unit,) = writer.take()
        unit.files()
        return len(frames)

    result = Result(
        "lake writer alone: decode + columns + zstd Parquet (trades)",
        rate_median(work, repeats=3),
        "records/s",
        "",
        "100k SIMPLE trades in one file, one core",
    )
    per_record: dict[str, float] = {}
    buffered: dict[str, float] = {}
    for channel in MIX:
        n = 20_000
        writer = PartitionWriter(f"upbit.{channel}", 0, channel, Rotation())
        for i in range(n):
            key, value, ts = _frame(channel, i)
            writer.add(i, key, value, ts, _headers(i))
        writer.seal()
        buffered[channel] = writer.buffered_bytes / n
        (unit,) = writer.take()
        per_record[channel] = sum(len(data) for _, data in unit.files()) / n
    return result, per_record, buffered


@dataclass(frozen=True)
class _Layout:
    files_per_hour: float
    avg_file_bytes: float
    budget_files: float  # of files_per_hour, those cut by lake.max_buffered_bytes


def _files_per_hour(
    per_record: dict[str, float], buffered: dict[str, float], partitions: int = 3
) -> _Layout:
    """Files/hour from the rotation rules, simulated over one hour in 0.1 s steps.

    Per partition: the 60 s flush; across partitions: the memory budget, largest buffer first
    down to 3/4 of it (as ``LakeSink._relieve``). The count limit is checked too; the bytes
    limit cannot fire first while the budget is below it (value bytes <= buffered bytes).
    """
    lake = LakeSettings()
    rates = [(c, r / partitions) for c, r in MIX.items() for _ in range(partitions)]
    held = [0.0] * len(rates)
    records = [0.0] * len(rates)
    age = [0.0] * len(rates)
    files = budget_files = 0
    dt = 0.1
    for _ in range(int(3600 / dt)):
        for i, (channel, rate) in enumerate(rates):
            held[i] += rate * dt * buffered[channel]
            records[i] += rate * dt
            age[i] += dt
            if age[i] >= lake.flush_interval_s or records[i] >= lake.max_records_per_file:
                files += 1
                held[i] = records[i] = age[i] = 0.0
        if sum(held) > lake.max_buffered_bytes:
            for i in sorted(range(len(rates)), key=held.__getitem__, reverse=True):
                if sum(held) <= lake.max_buffered_bytes * 3 / 4:
                    break
                files += 1
                budget_files += 1
                held[i] = records[i] = age[i] = 0.0
    files += len(rates)  # the event-hour boundary cuts one more file per partition
    total = sum(rate * per_record[channel] * 3600 for channel, rate in rates)
    return _Layout(files, total / files, budget_files)


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _rss_child(bootstrap: str, lake: str, seconds: float, flush_s: float) -> None:
    """Child process: only the sink; print one RSS sample (MB) and the sink's buffered bytes per
    second, then its stats."""
    broker = BrokerSettings(bootstrap_servers=bootstrap)
    settings = Settings(
        broker=broker,
        lake=LakeSettings(path=lake, consumer_group="bench-rss", flush_interval_s=flush_s),
    )
    # Production group settings (a long run must not flap), but fewer, larger fetches: the
    # embedded broker's memory storage slows down as it fills, and at the production 10 ms fetch
    # wait its fetches starved the sink after about 4 minutes of 2k frames/s. The sink's memory
    # does not depend on how records arrive, only on how many it buffers.
    sink = LakeSink(settings, kafka_overrides=RSS_FETCH)
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(1.0)
        buffered = getattr(sink, "buffered_bytes", 0)
        stats = sink.stats
        print(f"rss {_rss_mb():.1f} {buffered} {stats.files} {stats.records}", flush=True)
    stop.set()
    thread.join()
    print(f"stats {sink.stats.records} {sink.stats.files} {sink.stats.assignments}", flush=True)


@dataclass(frozen=True)
class RssShape:
    """The numbers that decide "flat" (module doc), from per-second samples after warm-up.

    "At 2 min", "end" and the point 5 minutes before the end are 30 s means, not single
    samples: under the budget, RSS rises and falls by ~25 MB with each early flush (every ~20 s),
    so one sample measures where in that cycle it fell, not a trend. The last single sample is
    kept as ``last``.
    """

    start: float
    at_2min: float
    median: float
    peak: float
    end: float
    last: float
    growth_last_5min: float

    @classmethod
    def of(cls, samples: list[float]) -> RssShape:
        width = max(1, min(30, len(samples) // 10))  # 30 s, or a tenth of a shorter run

        def around(i: int) -> float:  # mean of the ``width`` samples starting at ``i``
            i = max(0, min(i, len(samples) - width))
            return statistics.fmean(samples[i : i + width])

        ref = min(120, len(samples) // 5)  # "2 min", or 20 % into a shorter run
        tail = min(300, len(samples) // 2)  # the last 5 minutes, or the last half
        end = around(len(samples) - width)
        return cls(
            start=samples[0],
            at_2min=around(ref - width // 2),
            median=statistics.median(samples),
            peak=max(samples),
            end=end,
            last=samples[-1],
            growth_last_5min=end - around(len(samples) - tail - width),
        )

    @property
    def drift(self) -> float:
        return self.end - self.at_2min

    @property
    def flat(self) -> bool:
        return self.drift <= 0.10 * self.at_2min and self.peak <= 1.25 * self.median


def _rss_run(broker: EmbeddedBroker, root: Path) -> list[Result]:
    """Stream 2k frames/s (the mix above) into a sink in its own process; sample its RSS."""
    flush_s = float(FLUSH_S) if FLUSH_S else 60.0 if RSS_SECONDS >= 300 else 2.0
    warmup = min(10.0, RSS_SECONDS / 2)
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_lake", "rss-child", broker.bootstrap_servers,
         str(root / "rss"), str(warmup + RSS_SECONDS), str(flush_s)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    producer = Producer(producer_config(broker.settings))
    delivery = {"ok": 0, "failed": 0}
    errors: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        delivery["failed" if err else "ok"] += 1
        if err and len(errors) < 3:
            errors.append(str(err))

    start = time.monotonic()
    sent = 0
    while child.poll() is None and (now := time.monotonic()) < start + warmup + RSS_SECONDS:
        while sent < int((now - start) * RATE):
            channel = _ORDER[_pick(sent)]
            key, value, ts = _frame(channel, sent)
            producer.produce(
                f"upbit.{channel}", value, key, timestamp=ts, headers=_headers(sent),
                on_delivery=delivered,
            )  # fmt: skip
            sent += 1
        producer.poll(0)
        time.sleep(0.005)
    producer.flush(30)
    out, _ = child.communicate(timeout=120)
    alive = broker.process is not None and broker.process.poll() is None
    if dump := os.environ.get("UPBIT_BENCH_LAKE_SAMPLES"):
        Path(dump).write_text(out)  # the raw per-second samples, for a plot or a closer look
        log = root / "tansu-rss.log"
        if log.exists():
            Path(dump + ".tansu.log").write_bytes(log.read_bytes()[-200_000:])
    consumed = int(next(line.split()[1] for line in out.split("\n") if line.startswith("stats ")))
    # A run whose input stalled (broker trouble, a starved producer) proves nothing about "flat".
    invalid = ""
    if delivery["ok"] < 0.95 * sent or consumed < 0.95 * sent or not alive:
        invalid = (
            f"; INVALID: produced {sent:,}, delivered {delivery['ok']:,}, failed "
            f"{delivery['failed']:,} {errors[:1]}, broker alive: {alive}"
        )
    return _rss_rows(out, warmup, flush_s, invalid)


def _rss_rows(out: str, warmup: float, flush_s: float, invalid: str = "") -> list[Result]:
    """The result rows from the child's output (also ``python -m bench.bench_lake rss-report
    FILE WARMUP FLUSH`` on a file kept with ``UPBIT_BENCH_LAKE_SAMPLES``)."""
    lines = out.split("\n")
    rows = [line.split()[1:] for line in lines if line.startswith("rss ")]
    stats = next(line.split()[1:] for line in lines if line.startswith("stats "))
    shape = RssShape.of([float(row[0]) for row in rows][int(warmup) :])
    seconds = len(rows) - int(warmup)
    buffered = max(int(row[1]) for row in rows) / 2**20
    verdict = "met" if shape.flat else "not met"
    numbers = (
        f"after {warmup:.0f} s warm-up: start {shape.start:.0f} MB, at 2 min "
        f"{shape.at_2min:.0f} MB, median {shape.median:.0f} MB, peak {shape.peak:.0f} MB, end "
        f"{shape.end:.0f} MB (last sample {shape.last:.0f} MB), growth over the last 5 min "
        f"{shape.growth_last_5min:+.0f} MB"
    )
    run = (
        f"{int(stats[0]):,} records, {stats[1]} files, {stats[2]} assignments, flush "
        f"{flush_s:g} s, buffered bytes peak {buffered:.1f} MiB{invalid}"
    )
    return [
        Result(
            f"lake sink RSS drift (end − RSS at 2 min) over {seconds} s at 2k frames/s",
            shape.drift,
            "MB",
            f"≤ 10 % of {shape.at_2min:.0f} MB: "
            + ("met" if shape.drift <= 0.10 * shape.at_2min else "not met"),
            f"{numbers}; {run}",
        ),
        Result(
            "lake sink RSS peak / median over the same run",
            100 * shape.peak / shape.median,
            "%",
            f"≤ 125 %: {'met' if shape.peak <= 1.25 * shape.median else 'not met'}",
            f"flat (both): {verdict}",
        ),
    ]


_ORDER = list(MIX)
_CUMULATIVE = [sum(list(MIX.values())[: i + 1]) for i in range(len(MIX))]


def _pick(n: int) -> int:
    """Channel index of frame ``n``: the MIX proportions, interleaved deterministically."""
    slot = (n * 7919) % RATE
    return next(i for i, edge in enumerate(_CUMULATIVE) if slot < edge)


def run() -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-lake-") as tmp:
        root = Path(tmp)
        if ONLY in ("", "throughput"):
            results += _throughput_rows(root)
        if ONLY in ("", "rss"):
            # A fresh broker: no backlog, so the samples show the steady state at the real rate.
            broker = EmbeddedBroker(port=0, log_file=root / "tansu-rss.log").start()
            try:
                results += _rss_run(broker, root)
            finally:
                broker.stop()
    return results


def _throughput_rows(root: Path) -> list[Result]:
    results: list[Result] = []
    broker = EmbeddedBroker(port=0, log_file=root / "tansu.log").start()
    try:
        _produce(broker, "upbit.trade", [trade(i) for i in range(RECORDS)])
        results.append(_throughput(broker, root))
        writer, per_record, buffered = _writer_only()
        results.append(writer)
        shape = _files_per_hour(per_record, buffered)
        bytes_note = ", ".join(f"{c} {b:,.0f} B" for c, b in per_record.items())
        memory_note = ", ".join(f"{c} {b:,.0f} B" for c, b in buffered.items())
        results.append(
            Result(
                "lake files per hour at ~2k frames/s (4 topics x 3 partitions)",
                shape.files_per_hour,
                "files/h",
                "",
                f"default settings, simulated: {shape.budget_files:,.0f} of them cut by the "
                f"64 MiB buffer budget, the rest by the 60 s flush; buffered per record: "
                f"{memory_note}; Parquet per record: {bytes_note}",
            )
        )
        results.append(
            Result(
                "lake average file size at ~2k frames/s",
                shape.avg_file_bytes / 1024,
                "KiB",
                "",
                "= bytes per hour / files per hour (see the row above)",
            )
        )
    finally:
        broker.stop()
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["rss-child"]:
        _rss_child(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
    elif sys.argv[1:2] == ["rss-report"]:
        text = Path(sys.argv[2]).read_text()
        for result in _rss_rows(text, float(sys.argv[3]), float(sys.argv[4])):
            print(result.row())
    else:
        for result in run():
            print(result.row())
