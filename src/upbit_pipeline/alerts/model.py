"""The alert value: what the engine decides, what goes to ``upbit.alerts``, the lake and Slack.

An :class:`Alert` is a pure function of the input events (no wall-clock field), so a replay of the
same input produces byte-identical alerts. Its ``id`` names the event (rule, market, direction or
flag, and the event time of the trade or ticker that completed the condition): the same event seen
twice (a replay, a restart that re-reads uncommitted records) has the same id and is dropped by
id, never alerted again.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

__all__ = [
    "RULES",
    "SEVERITIES",
    "Alert",
    "DeliveryMark",
    "Severity",
    "decode_alert",
    "encode_alert",
    "market_url",
]

Severity = Literal["info", "warning", "critical"]
SEVERITIES: Final[tuple[str, ...]] = ("info", "warning", "critical")
RULES: Final[tuple[str, ...]] = ("price_move", "volume_spike", "market_warning", "market_caution")


class Alert(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One alert. Prices in KRW, moves in percent, windows in seconds, times epoch ms UTC.

    * price_move: ``direction``, ``window_s``, ``move_pct`` (log return as %, signed),
      ``threshold_pct``, ``price``, ``ref_price`` (the price ``window_s`` earlier).
    * volume_spike: ``krw_60s`` (KRW traded in the 60 s ending at the trade), ``baseline_krw``
      (median KRW per minute of earlier minutes), ``ratio`` = krw_60s / baseline_krw.
    * market_warning / market_caution: ``flag`` (e.g. ``CAUTION``, ``PRICE_FLUCTUATIONS``).
    """

    id: str
    rule: str
    market: str
    severity: Severity
    event_ms: int
    korean_name: str | None = None
    direction: str | None = None
    window_s: int | None = None
    move_pct: float | None = None
    threshold_pct: float | None = None
    price: float | None = None
    ref_price: float | None = None
    krw_60s: float | None = None
    baseline_krw: float | None = None
    ratio: float | None = None
    flag: str | None = None

    def summary(self) -> str:
        """One human line (console, Slack fallback text)."""
        name = f" ({self.korean_name})" if self.korean_name else ""
        head = f"[{self.severity.upper()}] {self.market}{name}"
        if self.rule == "price_move":
            return (
                f"{head} price {self.move_pct:+.2f}% in {(self.window_s or 0) // 60} min "
                f"to {self.price:,.8g} KRW (threshold {self.threshold_pct:.2f}%)"
            )
        if self.rule == "volume_spike":
            return (
                f"{head} volume {self.ratio:.1f}x: {self.krw_60s:,.0f} KRW in 60 s "
                f"(baseline {self.baseline_krw:,.0f} KRW/min)"
            )
        return f"{head} Upbit flag {self.rule} {self.flag} turned on"


class DeliveryMark(msgspec.Struct, frozen=True, kw_only=True, tag="delivery"):
    """A line of the alert log saying what became of an alert's Slack delivery.

    ``status``: ``delivered`` or ``undelivered`` (after ``attempts`` failed tries, or a full
    queue); ``reason`` is the last error, never containing the webhook URL.
    """

    id: str
    status: Literal["delivered", "undelivered"]
    attempts: int
    reason: str = ""
    at_ms: int = 0  # wall clock of the decision (processing time, not part of the alert)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Alert)


def encode_alert(alert: Alert) -> bytes:
    """Compact JSON (the ``upbit.alerts`` record value and one JSONL line)."""
    return _ENCODER.encode(alert)


def decode_alert(data: bytes | str) -> Alert:
    return _DECODER.decode(data)


def market_url(market: str) -> str:
    """The market's page on upbit.com (``KRW-BTC`` -> ...?code=CRIX.UPBIT.KRW-BTC)."""
    return f"https://upbit.com/exchange?code=CRIX.UPBIT.{market}"
