"""A bounded, append-only disk journal of records that could not go to the broker yet.

Why: while the broker is unreachable the producer must keep reading the sockets (Upbit does not
resend), and RAM is not the place to hold a long outage. Records go to this journal instead; a
drain replays them in order when the broker is back.

Layout (one directory, normally ``settings.producer.spool_dir``)::

    seg-<seq>.log   append-only segments, replayed in ``seq`` order
    cursor.json     {"seq": S, "offset": O}: everything before (S, O) is confirmed by the broker

A record on disk is ``<u32 length><u32 crc32><msgpack payload>``; the payload is a
:class:`SpoolRecord` (topic, key, value, timestamp, headers), so a replayed record is
byte-for-byte the record that would have been produced.

Guarantees:

* **Order**: records are read back exactly in append order, across segments and restarts.
* **Bound**: :meth:`Spool.append` refuses (returns ``False``) once the segments on disk would
  exceed ``max_bytes``; the caller records a gap, nothing is dropped silently here. Space comes
  back when :meth:`commit` deletes fully replayed segments (the partly replayed head segment
  still counts, so segments are small: ``max_bytes / 16``, at most 64 MiB).
* **Durability / fsync policy**: each record is written with one ``write(2)`` on an ``O_APPEND``
  descriptor, so it is in the kernel as soon as :meth:`append` returns and survives a crash or
  SIGKILL of the process. ``fsync`` runs at most every ``fsync_interval_s`` (:meth:`maybe_sync`,
  default 1 s), on segment roll and on :meth:`close`: a power loss or kernel crash can lose the
  last second of appends. A torn tail (short record, bad CRC) is truncated at open.
* **Replay is at-least-once**: the cursor only advances on :meth:`commit`, which the caller calls
  after the broker acknowledged every record read so far. A crash in between replays the
  unacknowledged batch again (duplicates that consumers remove by ``(market, sequential_id)``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import msgspec

__all__ = ["Spool", "SpoolRecord"]

log = logging.getLogger(__name__)

_HEAD = struct.Struct("<II")
_FIRST_SEQ = 1_000_000_000  # room below for prepend() (records older than the whole journal)
_CURSOR = "cursor.json"


class SpoolRecord(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One record exactly as it will be produced."""

    topic: str
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: list[tuple[str, bytes]]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(SpoolRecord)


def encode_record(record: SpoolRecord) -> bytes:
    payload = _encoder.encode(record)
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def _segment_name(seq: int) -> str:
    return f"seg-{seq:012d}.log"


class Spool:
    """The journal; see the module docstring. Not thread-safe: one event loop owns it."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        *,
        segment_bytes: int | None = None,
        fsync_interval_s: float = 1.0,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(64 * 1024, min(64 * 2**20, max_bytes // 16))
        self.fsync_interval_s = fsync_interval_s
        self._sizes: dict[int, int] = {}  # seq -> bytes on disk, ascending seq order
        self._cursor = (_FIRST_SEQ, 0)  # committed: first record not yet acknowledged
        self._read = self._cursor  # next record to hand out by read_batch()
        self._write_fd: int | None = None
        self._write_seq = _FIRST_SEQ
        self._read_fds: dict[int, int] = {}
        self._pending = 0  # records appended and not yet read out
        self._unsynced = False
        self._last_sync = time.monotonic()

    # -- lifecycle ------------------------------------------------------------------------------

    def open(self) -> None:
        """Load the segments and cursor left on disk (truncating torn tails) and get ready."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for tmp in self.directory.glob("*.tmp"):
            tmp.unlink()
        seqs = sorted(int(p.stem.split("-")[1]) for p in self.directory.glob("seg-*.log"))
        cursor = self._load_cursor()
        for seq in seqs:
            if cursor is not None and seq < cursor[0]:
                (self.directory / _segment_name(seq)).unlink()  # replayed, not yet deleted
                continue
            self._sizes[seq] = self._check_segment(seq)
        if self._sizes:
            first = min(self._sizes)
            self._cursor = cursor if cursor is not None and cursor[0] == first else (first, 0)
            self._write_seq = max(self._sizes)
        else:
            self._cursor = (max(seqs[-1] + 1, _FIRST_SEQ) if seqs else _FIRST_SEQ, 0)
            self._write_seq = self._cursor[0]
            self._sizes[self._write_seq] = 0
        self._read = self._cursor
        self._open_writer()
        self._pending = self._count_from(self._cursor)
        if self._pending:
            log.info("spool has %d records (%d bytes) to replay", self._pending, self.bytes)

    def close(self) -> None:
        """fsync and close everything; the cursor on disk is the last committed position."""
        self.sync()
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        for fd in self._read_fds.values():
            os.close(fd)
        self._read_fds.clear()
        self._save_cursor(fsync=True)

    # -- state ----------------------------------------------------------------------------------

    @property
    def bytes(self) -> int:
        """Bytes of all segments on disk (what ``max_bytes`` bounds)."""
        return sum(self._sizes.values())

    @property
    def pending(self) -> int:
        """Records appended and not yet handed out by :meth:`read_batch`."""
        return self._pending

    @property
    def empty(self) -> bool:
        """Nothing to read and nothing read-but-uncommitted."""
        return self._pending == 0 and self._read == self._cursor

    def has_room(self, nbytes: int) -> bool:
        return self.bytes + nbytes + _HEAD.size <= self.max_bytes

    # -- writing --------------------------------------------------------------------------------

    def append(self, record: SpoolRecord) -> bool:
        """Append one record; ``False`` (nothing written) when the bound would be exceeded."""
        data = encode_record(record)
        if self.bytes + len(data) > self.max_bytes:
            return False
        if self._sizes[self._write_seq] >= self.segment_bytes:
            self._roll()
        assert self._write_fd is not None
        os.write(self._write_fd, data)
        self._sizes[self._write_seq] += len(data)
        self._pending += 1
        self._unsynced = True
        return True

    def prepend(self, records: Sequence[SpoolRecord]) -> None:
        """Put ``records`` *before* everything not yet committed (records older than the journal).

        Used at shutdown for records librdkafka still held: they were accepted before anything
        now in the journal. Needs the cursor at a segment start (true whenever records are in
        librdkafka's direct queue, see publisher.py); otherwise they are appended, out of order.
        """
        if not records:
            return
        seq, offset = self._cursor
        if offset != 0 or self._read != self._cursor:
            log.warning("spool cursor mid-segment: %d older records appended instead", len(records))
            for record in records:
                self.append(record)
            return
        new = seq - 1
        data = b"".join(encode_record(r) for r in records)
        path = self.directory / _segment_name(new)
        with path.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        self._sizes = {new: len(data), **self._sizes}
        self._cursor = self._read = (new, 0)
        self._pending += len(records)
        self._save_cursor(fsync=True)

    def maybe_sync(self) -> None:
        """fsync the write segment if it changed and ``fsync_interval_s`` passed."""
        if self._unsynced and time.monotonic() - self._last_sync >= self.fsync_interval_s:
            self.sync()

    def sync(self) -> None:
        if self._write_fd is not None and self._unsynced:
            os.fsync(self._write_fd)
        self._unsynced = False
        self._last_sync = time.monotonic()

    # -- reading --------------------------------------------------------------------------------

    def read_batch(self, max_records: int = 5000, max_bytes: int = 4 * 2**20) -> list[SpoolRecord]:
        """The next records in append order (not yet committed: call :meth:`commit` once acked)."""
        out: list[SpoolRecord] = []
        taken = 0
        while len(out) < max_records and taken < max_bytes and self._pending:
            seq, offset = self._read
            size = self._sizes.get(seq, 0)
            if offset >= size:
                later = [s for s in self._sizes if s > seq]
                if not later:
                    break
                self._read = (min(later), 0)
                continue
            fd = self._reader(seq)
            chunk = os.pread(fd, min(size - offset, max(max_bytes - taken, 64 * 1024)), offset)
            pos = 0
            while pos + _HEAD.size <= len(chunk) and len(out) < max_records:
                length, _crc = _HEAD.unpack_from(chunk, pos)
                end = pos + _HEAD.size + length
                if end > len(chunk):
                    if pos == 0:  # one record larger than the chunk: read exactly it
                        chunk = os.pread(fd, _HEAD.size + length, offset)
                        continue
                    break
                out.append(_decoder.decode(chunk[pos + _HEAD.size : end]))
                pos = end
            offset += pos
            taken += pos
            self._read = (seq, offset)
            if pos == 0:
                break  # defensive: a record that cannot be read (never written torn)
        self._pending = max(0, self._pending - len(out))
        return out

    def commit(self) -> None:
        """Everything handed out by :meth:`read_batch` is acknowledged: free replayed segments."""
        self._cursor = self._read
        seq, offset = self._cursor
        for old in [s for s in self._sizes if s < seq]:
            self._drop_segment(old)
        if self._pending == 0 and offset >= self._sizes.get(seq, 0):
            # fully drained: start a fresh segment so the disk footprint goes back to zero
            if self._write_fd is not None:
                os.close(self._write_fd)
                self._write_fd = None
            for old in list(self._sizes):
                self._drop_segment(old)
            self._write_seq += 1
            self._sizes = {self._write_seq: 0}
            self._cursor = self._read = (self._write_seq, 0)
            self._open_writer()
        self._save_cursor(fsync=False)

    # -- internals ------------------------------------------------------------------------------

    def _roll(self) -> None:
        self.sync()
        if self._write_fd is not None:
            os.close(self._write_fd)
        self._write_seq += 1
        self._sizes[self._write_seq] = 0
        self._open_writer()

    def _open_writer(self) -> None:
        path = self.directory / _segment_name(self._write_seq)
        self._write_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _reader(self, seq: int) -> int:
        fd = self._read_fds.get(seq)
        if fd is None:
            for old in [s for s in self._read_fds if s != seq]:
                os.close(self._read_fds.pop(old))
            fd = os.open(self.directory / _segment_name(seq), os.O_RDONLY)
            self._read_fds[seq] = fd
        return fd

    def _drop_segment(self, seq: int) -> None:
        fd = self._read_fds.pop(seq, None)
        if fd is not None:
            os.close(fd)
        self._sizes.pop(seq, None)
        with contextlib.suppress(FileNotFoundError):
            (self.directory / _segment_name(seq)).unlink()

    def _check_segment(self, seq: int) -> int:
        """Size of the valid prefix of a segment; a torn or corrupt tail is truncated."""
        path = self.directory / _segment_name(seq)
        data = path.read_bytes()
        pos = 0
        while pos + _HEAD.size <= len(data):
            length, crc = _HEAD.unpack_from(data, pos)
            end = pos + _HEAD.size + length
            if end > len(data) or zlib.crc32(data[pos + _HEAD.size : end]) != crc:
                break
            pos = end
        if pos != len(data):
            log.warning("spool segment %s: torn tail of %d bytes truncated", path, len(data) - pos)
            with path.open("r+b") as fh:
                fh.truncate(pos)
        return pos

    def _count_from(self, cursor: tuple[int, int]) -> int:
        count = 0
        for seq in sorted(self._sizes):
            if seq < cursor[0]:
                continue
            data = (self.directory / _segment_name(seq)).read_bytes()
            pos = cursor[1] if seq == cursor[0] else 0
            while pos + _HEAD.size <= len(data):
                pos += _HEAD.size + _HEAD.unpack_from(data, pos)[0]
                count += 1
        return count

    def _load_cursor(self) -> tuple[int, int] | None:
        path = self.directory / _CURSOR
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return int(raw["seq"]), int(raw["offset"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            log.warning("spool cursor %s unreadable: replaying from the first segment", path)
            return None

    def _save_cursor(self, *, fsync: bool) -> None:
        path = self.directory / _CURSOR
        tmp = path.with_suffix(".tmp")
        seq, offset = self._cursor
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump({"seq": seq, "offset": offset}, fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
