"""Gap detection: notice every place where a market's stream may have holes, say why and where.

Per ``(market, channel)`` the producer remembers the exchange time of the last event it accepted
and the connection it came on. A :class:`GapEvent` (``from_ms`` = last event before, ``to_ms`` =
first event after, both exchange time) is due when:

* the next event arrives on a **different connection**: the old one ended; the reason
  (``reconnect`` or ``silence``) comes from the WebSocket client's :class:`ConnEvent`, reported
  before any frame of the new connection;
* the connection's subscription was **replaced** (``resubscribe``, after a market-list change):
  resolved by the first SNAPSHOT frame on that connection, which starts the new subscription;
* frames were **dropped because the spool was full** (``spool_overflow``): resolved by the next
  frame that is accepted;
* the **producer restarted**: the checkpoint file holds, per (market, channel), the exchange time
  of the last record the broker acknowledged (or the spool holds); the first event after start
  closes the gap from there (``producer_restart``).

Guarantee: every accepted event after an interruption of one of these kinds yields exactly one
gap for its (market, channel); gaps may be empty (``from_ms == to_ms``) when nothing was missed,
because the producer cannot prove that. Gaps are recorded for every channel; only trade gaps are
repaired downstream. The checkpoint is written atomically (temp file + rename), every second and
at shutdown, so after a crash it is at most ~1 s old, which only widens the restart gap.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from upbit_pipeline.streaming.gaps import GapEvent, GapReason
from upbit_pipeline.upbit.ws.client import ConnEvent

__all__ = ["CHECKPOINT_FILE", "Continuity"]

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.json"
_MAX_ENDED = 10_000

Key = tuple[str, str]  # (market, channel)


class _State:
    __slots__ = ("conn_id", "last_ms", "pending")

    def __init__(self, last_ms: int, conn_id: str) -> None:
        self.last_ms = last_ms
        self.conn_id = conn_id
        self.pending: GapReason | None = None


class Continuity:
    """Per (market, channel) continuity state plus the restart checkpoint; see module docstring."""

    def __init__(self, checkpoint_path: Path) -> None:
        self.checkpoint_path = checkpoint_path
        self._state: dict[Key, _State] = {}
        self._ended: dict[str, GapReason] = {}  # conn_id -> why it ended
        self._restart: dict[Key, int] = {}  # from the previous process, not yet resolved
        self.previous_written_ns = 0

    # -- restart checkpoint ---------------------------------------------------------------------

    def load(self) -> int:
        """Read the previous process's checkpoint; returns how many (market, channel) it had."""
        try:
            raw = json.loads(self.checkpoint_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0
        except ValueError:
            log.warning("checkpoint %s unreadable; no restart gaps", self.checkpoint_path)
            return 0
        self.previous_written_ns = int(raw.get("written_ns", 0))
        for market, channels in dict(raw.get("last_ms", {})).items():
            for channel, ms in dict(channels).items():
                self._restart[(str(market), str(channel))] = int(ms)
        return len(self._restart)

    def save(self, durable: Mapping[Key, int]) -> None:
        """Write the checkpoint: ``durable`` last times, plus restart entries not yet resolved."""
        merged: dict[str, dict[str, int]] = {}
        for (market, channel), ms in [*self._restart.items(), *durable.items()]:
            per = merged.setdefault(market, {})
            per[channel] = max(ms, per.get(channel, ms))
        tmp = self.checkpoint_path.with_suffix(".tmp")
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump({"version": 1, "written_ns": time.time_ns(), "last_ms": merged}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.checkpoint_path)

    # -- connection events ----------------------------------------------------------------------

    def on_conn_event(self, event: ConnEvent) -> None:
        """Record why a connection was interrupted (called by the WebSocket client)."""
        if event.reason == "resubscribe":
            codes = set(event.codes)
            for (market, _channel), state in self._state.items():
                if state.conn_id == event.conn_id and market in codes and state.pending is None:
                    state.pending = "resubscribe"
            return
        if len(self._ended) >= _MAX_ENDED:
            for old in list(self._ended)[: _MAX_ENDED // 2]:
                del self._ended[old]
        self._ended[event.conn_id] = event.reason

    # -- the hot path ---------------------------------------------------------------------------

    def observe(
        self, market: str, channel: str, ts_ms: int, conn_id: str, snapshot: bool
    ) -> GapEvent | None:
        """An event is being accepted: returns the gap it closes, if any, and moves on."""
        key = (market, channel)
        state = self._state.get(key)
        if state is None:
            self._state[key] = _State(ts_ms, conn_id)
            before = self._restart.pop(key, None)
            if before is None:
                return None
            return self._gap(key, before, ts_ms, "producer_restart", "")
        reason: GapReason | None = None
        if state.pending == "spool_overflow":
            reason = "spool_overflow"
        elif state.conn_id != conn_id:
            reason = self._ended.get(state.conn_id, "reconnect")
        elif state.pending == "resubscribe" and snapshot:
            reason = "resubscribe"
        gap = None
        if reason is not None:
            gap = self._gap(key, state.last_ms, ts_ms, reason, state.conn_id)
            state.pending = None
        state.last_ms = ts_ms
        state.conn_id = conn_id
        return gap

    def dropped(self, market: str, channel: str) -> None:
        """An event was dropped (spool full): the next accepted one closes a spool_overflow gap."""
        state = self._state.get((market, channel))
        if state is not None:
            state.pending = "spool_overflow"
        # no state: nothing was accepted before in this process; a restart entry (if any) or
        # nothing at all stays the reference, which is the same range.

    @staticmethod
    def _gap(key: Key, from_ms: int, to_ms: int, reason: GapReason, conn_id: str) -> GapEvent:
        return GapEvent(
            market=key[0],
            channel=key[1],
            from_ms=from_ms,
            to_ms=max(to_ms, from_ms),
            reason=reason,
            conn_id=conn_id,
            detected_ns=time.time_ns(),
        )
