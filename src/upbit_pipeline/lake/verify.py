"""``upbit-pipeline lake verify``: does the lake hold each record of the log exactly once?

Reads only the lake (names and a few columns), per channel and partition:

* **units**: files are grouped by first offset (a data file under ``raw/`` and a dead-letter file
  under ``deadletter/`` of the same range share the name). Sorted first offsets f1 < f2 < ...
  say what each unit must hold: ``[f_i, f_{i+1})``, the last one up to its highest offset.
* **duplicate offsets**: a row key (offset, frame_item) seen twice, a record both decoded and
  dead-lettered, or a record outside its unit's range (it overlaps the next unit);
* **missing offsets**: offsets of a unit's range found in neither its rows nor its dead letters;
* **duplicate trades**: (market, sequential_id) seen more than once.

What it cannot see: records before the first file or after the last one (the broker knows those,
and a freshly started consumer may not have flushed them yet). With ``date`` only the units that
have a file in that UTC day are read; unit boundaries still come from all names, so a day's check
stays exact even when late records of that day sit in later offsets.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from upbit_pipeline.lake import layout
from upbit_pipeline.lake.storage import LakeStorage, open_lake

__all__ = ["PartitionReport", "VerifyReport", "verify_lake"]

_EXAMPLES = 5


@dataclass
class PartitionReport:
    """Findings for one (channel, topic, partition)."""

    channel: str
    topic: str
    partition: int
    files: int = 0
    records: int = 0  # rows of decoded messages
    deadletter: int = 0
    first_offset: int | None = None
    last_offset: int | None = None
    duplicate_offsets: int = 0
    missing_offsets: int = 0
    duplicate_trades: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.duplicate_offsets or self.missing_offsets or self.duplicate_trades)

    def note(self, text: str) -> None:
        if len(self.examples) < _EXAMPLES:
            self.examples.append(text)


@dataclass
class VerifyReport:
    """The verification of a lake (or one UTC day of it). ``ok`` decides the exit code."""

    lake: str
    date: str | None
    partitions: list[PartitionReport]
    problems: list[str] = field(default_factory=list)  # files that are not lake files

    @property
    def ok(self) -> bool:
        return not self.problems and all(p.ok for p in self.partitions)

    def to_json(self) -> str:
        body: dict[str, object] = {
            "lake": self.lake,
            "date": self.date,
            "ok": self.ok,
            "problems": self.problems,
            "partitions": [{**asdict(p), "ok": p.ok} for p in self.partitions],
        }
        return json.dumps(body, indent=2)

    def render(self) -> str:
        """A plain-text table, one row per partition, then examples and problems."""
        head = ("channel", "topic[p]", "files", "records", "dead", "offsets", "dup", "miss", "dupT")
        rows = [head]
        for p in self.partitions:
            span = "-" if p.first_offset is None else f"{p.first_offset}..{p.last_offset}"
            rows.append((
                p.channel, f"{p.topic}[{p.partition}]", str(p.files), str(p.records),
                str(p.deadletter), span, str(p.duplicate_offsets), str(p.missing_offsets),
                str(p.duplicate_trades),
            ))  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        out = io.StringIO()
        out.write(f"lake {self.lake}" + (f", date {self.date}" if self.date else "") + "\n")
        for row in rows:
            out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            out.write("\n")
        for p in self.partitions:
            for example in p.examples:
                out.write(f"{p.topic}[{p.partition}]: {example}\n")
        for problem in self.problems:
            out.write(f"problem: {problem}\n")
        out.write("OK\n" if self.ok else "NOT OK\n")
        return out.getvalue()

    def __str__(self) -> str:
        return self.render()


@dataclass
class _Unit:
    data: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)
    in_date: bool = False


def verify_lake(
    lake: str, date: dt.date | None = None, *, storage: LakeStorage | None = None
) -> VerifyReport:
    """Check the lake at ``lake`` (a path or gs:// / s3:// URL); see the module doc."""
    storage = storage or open_lake(lake)
    report = VerifyReport(lake=lake, date=date.isoformat() if date else None, partitions=[])
    day = f"/date={date.isoformat()}/" if date else None
    groups: dict[tuple[str, str, int], dict[int, _Unit]] = defaultdict(dict)
    for area in (layout.RAW, layout.DEADLETTER):
        for path in storage.find(area):
            name = path.rsplit("/", 1)[-1]
            if name.startswith("."):
                continue  # an unfinished local write: invisible to readers, removed by the sink
            key = layout.parse_file_name(name)
            parts = path.split("/")
            if key is None or len(parts) != 5:
                report.problems.append(f"not a lake file: {path}")
                continue
            unit = groups[(parts[1], key.topic, key.partition)].setdefault(
                key.first_offset, _Unit()
            )
            (unit.data if area == layout.RAW else unit.dead).append(path)
            unit.in_date = unit.in_date or day is None or day in f"/{path}"
    for (channel, topic, partition), units in sorted(groups.items()):
        if any(u.in_date for u in units.values()):
            report.partitions.append(_check(storage, channel, topic, partition, units))
    return report


def _check(
    storage: LakeStorage, channel: str, topic: str, partition: int, units: dict[int, _Unit]
) -> PartitionReport:
    rep = PartitionReport(channel, topic, partition)
    firsts = sorted(units)
    trade_keys: list[pa.Table] = []
    for i, first in enumerate(firsts):
        unit = units[first]
        if not unit.in_date:
            continue
        rows, dead_offsets = _read_unit(storage, channel, unit)
        rep.files += len(unit.data) + len(unit.dead)
        rep.records += rows.num_rows
        rep.deadletter += len(dead_offsets)
        if channel == "trade" and rows.num_rows:
            trade_keys.append(rows.select(["market", "sequential_id"]))
        next_first = firsts[i + 1] if i + 1 < len(firsts) else None
        _check_unit(rep, first, next_first, rows, dead_offsets)
    if trade_keys:
        _check_trades(rep, pa.concat_tables(trade_keys))
    return rep


def _read_unit(storage: LakeStorage, channel: str, unit: _Unit) -> tuple[pa.Table, pa.Array]:
    """The unit's decoded rows (offset, item and trade keys) and its dead-letter offsets."""
    columns = ["kafka_offset", "frame_item"]
    if channel == "trade":
        columns += ["market", "sequential_id"]
    blobs = storage.read_many(unit.data + unit.dead)
    data = [pq.read_table(pa.BufferReader(blobs[p]), columns=columns) for p in unit.data]
    dead = [pq.read_table(pa.BufferReader(blobs[p]), columns=["kafka_offset"]) for p in unit.dead]
    empty = pa.table({c: pa.array([], pa.int64()) for c in ("kafka_offset", "frame_item")})
    rows = pa.concat_tables(data).combine_chunks() if data else empty
    dead_offsets = (
        pa.concat_tables(dead)["kafka_offset"].combine_chunks()
        if dead
        else pa.array([], pa.int64())
    )
    return rows, dead_offsets


def _check_unit(
    rep: PartitionReport, first: int, next_first: int | None, rows: pa.Table, dead: pa.Array
) -> None:
    """Duplicates and holes of one unit against its range ``[first, next_first)``."""
    row_offsets = rows["kafka_offset"].combine_chunks()
    keys = pc.add(pc.multiply(row_offsets, 1 << 16), rows["frame_item"].combine_chunks())
    _dups(rep, first, keys, "rows with the same (offset, frame_item)")
    _dups(rep, first, dead, "repeated dead-letter records")
    offsets = pc.unique(pa.concat_arrays([pc.unique(row_offsets), pc.unique(dead)]))
    both = len(pc.unique(row_offsets)) + len(pc.unique(dead)) - len(offsets)
    if both:
        rep.duplicate_offsets += both
        rep.note(f"unit {first}: {both} records both decoded and dead-lettered")
    if not len(offsets):
        return
    low, high = pc.min(offsets).as_py(), pc.max(offsets).as_py()
    end = next_first if next_first is not None else high + 1
    inside = pc.filter(offsets, pc.and_(pc.greater_equal(offsets, first), pc.less(offsets, end)))
    outside = len(offsets) - len(inside)
    if outside:
        rep.duplicate_offsets += outside
        rep.note(f"unit {first}: {outside} records beyond its range (next unit starts {end})")
    missing = (end - first) - len(inside)
    if missing:
        rep.missing_offsets += missing
        have = set(inside.to_pylist())
        gone = [o for o in range(first, end) if o not in have][:_EXAMPLES]
        rep.note(f"unit {first}: {missing} offsets missing before {end}, e.g. {gone}")
    rep.first_offset = low if rep.first_offset is None else min(rep.first_offset, low)
    rep.last_offset = high if rep.last_offset is None else max(rep.last_offset, high)


def _check_trades(rep: PartitionReport, trades: pa.Table) -> None:
    counts = trades.group_by(["market", "sequential_id"]).aggregate([("market", "count")])
    rep.duplicate_trades = trades.num_rows - counts.num_rows
    if rep.duplicate_trades:
        repeated = counts.filter(pc.greater(counts["market_count"], 1)).slice(0, _EXAMPLES)
        pairs = list(
            zip(repeated["market"].to_pylist(), repeated["sequential_id"].to_pylist(), strict=True)
        )
        rep.note(f"{rep.duplicate_trades} repeated trades, e.g. {pairs}")


def _dups(rep: PartitionReport, first: int, keys: pa.Array, what: str) -> None:
    extra = len(keys) - len(pc.unique(keys))
    if extra:
        rep.duplicate_offsets += extra
        rep.note(f"unit {first}: {extra} {what}")
