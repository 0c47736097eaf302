"""Lake sink benchmarks: consumer -> Parquet throughput, files per hour, RSS over a run.

* **Throughput** (goal >= 50k trades/s): a real embedded broker is pre-filled with N SIMPLE trade
  frames of 50 markets (with the producer's headers); a fresh consumer group then consumes and
  writes them to a local lake with the default rotation. The clock starts at the partition
  assignment (group-join time is the broker's, not the sink's) and stops when the last file is
  written and committed. A second row times the writer alone (decode + columns + zstd Parquet).
* **Files per hour and average file size** at Upbit's real rate, from the rotation rules and the
  measured Parquet bytes per record of each channel. Assumed mix of ~2,000 frames/s: 800 orderbook
  (platform notes: all 855 books ≈ 800 frames/s), 600 trade, 500 ticker, 100 candle; 3 partitions
  per topic; default settings (60 s flush, 500k records, 128 MiB).
* **RSS** of a consumer process (the sink alone, as in production) while 2,000 frames/s of the
  mix stream through it: sampled each second after a warm-up; the row is growth (last minus first
  sample). ``UPBIT_BENCH_LAKE_RSS_S=600`` runs the 10-minute version with the default 60 s flush
  (default 20 s with a 2 s flush, so that even the short run spans many files).
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
RATE = 2000
MIX = {"orderbook": 800, "trade": 600, "ticker": 500, "candle": 100}
FAST_GROUP = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500}
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


def _writer_only() -> tuple[Result, dict[str, float]]:
    """Writer alone, and Parquet bytes per record of each channel."""
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
    for channel in MIX:
        n = 20_000
        writer = PartitionWriter(f"upbit.{channel}", 0, channel, Rotation())
        for i in range(n):
            key, value, ts = _frame(channel, i)
            writer.add(i, key, value, ts, _headers(i))
        writer.seal()
        (unit,) = writer.take()
        per_record[channel] = sum(len(data) for _, data in unit.files()) / n
    return result, per_record


@dataclass(frozen=True)
class _Layout:
    files_per_hour: float
    avg_file_bytes: float


def _files_per_hour(per_record: dict[str, float], partitions: int = 3) -> _Layout:
    """Files/hour from the rotation rules: per partition the earliest of flush/count/bytes cut."""
    lake = LakeSettings()
    files = 0.0
    total = 0.0
    for channel, rate in MIX.items():
        per_partition = rate / partitions  # records/s
        bytes_per_s = per_partition * per_record[channel]
        seconds_per_file = min(
            lake.flush_interval_s,
            lake.max_records_per_file / per_partition,
            lake.max_bytes_per_file / bytes_per_s,
        )
        # + 1 per hour: the event-hour boundary cuts one more file per partition
        files += partitions * (3600 / seconds_per_file + 1)
        total += partitions * bytes_per_s * 3600
    return _Layout(files, total / files)


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _rss_child(bootstrap: str, lake: str, seconds: float, flush_s: float) -> None:
    """Child process: only the sink; print one RSS sample (MB) per second, then its stats."""
    broker = BrokerSettings(bootstrap_servers=bootstrap)
    settings = Settings(
        broker=broker,
        lake=LakeSettings(path=lake, consumer_group="bench-rss", flush_interval_s=flush_s),
    )
    sink = LakeSink(settings)  # production group settings: a long run must not flap
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(1.0)
        print(f"rss {_rss_mb():.1f}", flush=True)
    stop.set()
    thread.join()
    print(f"stats {sink.stats.records} {sink.stats.files} {sink.stats.assignments}", flush=True)


def _rss_run(broker: EmbeddedBroker, root: Path) -> Result:
    """Stream 2k frames/s (the mix above) into a sink in its own process; sample its RSS."""
    flush_s = 60.0 if RSS_SECONDS >= 300 else 2.0
    warmup = min(10.0, RSS_SECONDS / 2)
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_lake", "rss-child", broker.bootstrap_servers,
         str(root / "rss"), str(warmup + RSS_SECONDS), str(flush_s)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    producer = Producer(producer_config(broker.settings))
    start = time.monotonic()
    sent = 0
    while child.poll() is None and (now := time.monotonic()) < start + warmup + RSS_SECONDS:
        while sent < int((now - start) * RATE):
            channel = _ORDER[_pick(sent)]
            key, value, ts = _frame(channel, sent)
            producer.produce(f"upbit.{channel}", value, key, timestamp=ts, headers=_headers(sent))
            sent += 1
        producer.poll(0)
        time.sleep(0.005)
    producer.flush(30)
    out, _ = child.communicate(timeout=120)
    lines = out.split("\n")
    samples = [float(line.split()[1]) for line in lines if line.startswith("rss ")]
    stats = next(line.split()[1:] for line in lines if line.startswith("stats "))
    steady = samples[int(warmup) :]
    growth = steady[-1] - steady[0]
    return Result(
        f"lake sink RSS growth over {RSS_SECONDS:.0f} s at 2k frames/s",
        growth,
        "MB",
        "flat",
        f"after {warmup:.0f} s warm-up: first {steady[0]:.0f} MB, max {max(steady):.0f} MB, "
        f"last {steady[-1]:.0f} MB; {int(stats[0]):,} records, {stats[1]} files, "
        f"{stats[2]} assignments, flush {flush_s:.0f} s",
    )


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
        broker = EmbeddedBroker(port=0, log_file=root / "tansu.log").start()
        try:
            _produce(broker, "upbit.trade", [trade(i) for i in range(RECORDS)])
            results.append(_throughput(broker, root))
            writer, per_record = _writer_only()
            results.append(writer)
            shape = _files_per_hour(per_record)
            bytes_note = ", ".join(f"{c} {b:,.0f} B" for c, b in per_record.items())
            results.append(
                Result(
                    "lake files per hour at ~2k frames/s (4 topics x 3 partitions)",
                    shape.files_per_hour,
                    "files/h",
                    "",
                    "default rotation: the 60 s flush decides; Parquet per record: " + bytes_note,
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
        # A fresh broker: no backlog, so the samples show the steady state at the real rate.
        broker = EmbeddedBroker(port=0, log_file=root / "tansu-rss.log").start()
        try:
            results.append(_rss_run(broker, root))
        finally:
            broker.stop()
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["rss-child"]:
        _rss_child(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
    else:
        for result in run():
            print(result.row())
