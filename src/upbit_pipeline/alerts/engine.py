"""The rule engine: trades, tickers and market flags in event time -> :class:`Alert` values.

Pure and deterministic: no clock, no I/O, no randomness. The same events in the same order give
the same alerts, which is what makes ``alert backtest`` and ``--replay`` trustworthy and lets the
worker rebuild its state by feeding history through it quietly.

Hot path (every trade, goal >= 100k trades/s on one core): update the market's bars and compare
the price with two cached bounds and the 60-s KRW value with one cached trigger. The bounds are
recomputed only when the second changes (reference prices move) and the trigger when the minute
changes (baseline moves), so a trade that completes an anomaly is decided on arrival.

Rules (docs/alerts.md has the maths and defaults):

* ``price_move``: r_W = ln(price / price W minutes earlier) for each window W; alert when
  |r_W| >= max(floor_W, vol_multiple * sigma_1m * sqrt(W)); the reported window is the one
  crossed by the widest margin among the armed directions, and ``direction`` is the sign of its
  r_W (so "up" exactly when price > ref_price). One alert per event: after an alert
  the (market, direction) is disarmed until |r_W| falls below ``rearm_fraction`` of the threshold
  in every window, and a cooldown (event time) applies on top.
* ``volume_spike``: KRW of the last 60 s >= max(k * baseline, baseline + mad_multiple * 1.4826 *
  MAD, min_krw), baseline = median KRW/minute of previous minutes only (never the current one).
* ``market_warning``: a ticker's ``market_warning`` turning from NONE to CAUTION.
* ``market_caution``: a ``market_event`` flag (``warning`` or a ``caution`` entry) turning on
  in the market list.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from upbit_pipeline.alerts.bars import MarketBars
from upbit_pipeline.alerts.config import MarketRules, RulesConfig
from upbit_pipeline.alerts.model import Alert, Severity
from upbit_pipeline.upbit.models import Market

__all__ = ["AlertEngine", "EngineStats"]

_INF = math.inf
_NO_ALERTS: list[Alert] = []
_SEEN_MAX = 100_000


@dataclass
class EngineStats:
    """Counters: trades seen, dropped as too late, alerts raised and suppressed."""

    trades: int = 0
    late: int = 0
    invalid: int = 0
    tickers: int = 0
    alerts: int = 0
    suppressed: int = 0  # raised while quiet (warm-up) or duplicates of a known id
    by_rule: dict[str, int] = field(default_factory=dict)


class _State:
    """Bars plus the cached decision bounds of one market."""

    __slots__ = (
        "armed_dn",
        "armed_up",
        "armed_vol",
        "bars",
        "cool_dn",
        "cool_up",
        "cool_vol",
        "hi",
        "lo",
        "refs",
        "rehi",
        "relo",
        "rules",
        "thrs",
        "vol_rearm",
        "vol_trigger",
    )

    def __init__(self, rules: MarketRules, ring_s: int) -> None:
        self.rules = rules
        self.bars = MarketBars(
            ring_s=ring_s,
            baseline_min=rules.volume.baseline_min,
            lateness_ms=rules.lateness_ms,
            vol_halflife_min=rules.price.vol_halflife_min,
        )
        self.hi = _INF
        self.lo = -_INF
        self.rehi = _INF
        self.relo = -_INF
        self.refs: list[float] = []
        self.thrs: list[float] = []
        self.vol_trigger = _INF
        self.vol_rearm = _INF
        self.armed_up = self.armed_dn = self.armed_vol = True
        self.cool_up = self.cool_dn = self.cool_vol = -(1 << 62)


class AlertEngine:
    """Feed events in event-time order; each call returns the alerts it completes (often none).

    ``quiet = True`` runs the rules without returning alerts (state, arming and cooldowns still
    advance): the worker's warm-up from history, so an event that already alerted before a restart
    does not alert again after it.
    """

    def __init__(self, rules: RulesConfig | None = None) -> None:
        self.config = rules or RulesConfig()
        self.ring_s = self.config.max_window_min() * 60 + 60
        self.stats = EngineStats()
        self.quiet = False
        self.names: dict[str, str] = {}
        self._states: dict[str, _State] = {}
        self._warning: dict[str, str] = {}
        self._flags: dict[tuple[str, str], bool] = {}
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()

    # -- inputs --------------------------------------------------------------------------------

    def on_trade(self, market: str, ts_ms: int, price: float, volume: float) -> list[Alert]:
        """One trade (price in KRW, volume in the base coin). Returns the alerts it completes."""
        st = self._states.get(market)
        if st is None:
            st = self._states[market] = _State(self.config.for_market(market), self.ring_s)
        self.stats.trades += 1
        if not price > 0.0:
            self.stats.invalid += 1
            return _NO_ALERTS
        bars = st.bars
        s = ts_ms // 1000
        if s > bars.last_s:
            new_minute = bars.advance(s)
            if new_minute:
                self._minute_cache(st)
            self._second_cache(st, s)
        if not bars.add(ts_ms, price, price * volume):
            self.stats.late += 1
            return _NO_ALERTS
        alerts = _NO_ALERTS
        if not st.lo < price < st.hi or not st.armed_up or not st.armed_dn:
            alerts = self._price(market, st, ts_ms, price)
        if bars.roll_krw >= st.vol_trigger or not st.armed_vol:
            found = self._volume(market, st, ts_ms, price)
            if found is not None:
                alerts = [*alerts, found]
        return alerts

    def on_ticker(self, market: str, ts_ms: int, market_warning: str | None) -> list[Alert]:
        """A ticker's ``market_warning`` (NONE/CAUTION). The first value seen sets the state."""
        self.stats.tickers += 1
        if market_warning is None:
            return _NO_ALERTS
        before = self._warning.get(market)
        self._warning[market] = market_warning
        rules = self._rules(market)
        if before is None or market_warning in (before, "NONE"):
            return _NO_ALERTS
        if not rules.flags.market_warning:
            return _NO_ALERTS
        alert = Alert(
            id=f"market_warning:{market}:{market_warning}:{ts_ms}",
            rule="market_warning",
            market=market,
            severity="warning",
            event_ms=ts_ms,
            korean_name=self.names.get(market),
            flag=market_warning,
        )
        return self._emit([alert])

    def on_markets(self, markets: Iterable[Market], ts_ms: int) -> list[Alert]:
        """The market list (``/v1/market/all?is_details=true``) observed at ``ts_ms``.

        Learns Korean names; alerts when a ``market_event`` flag turns on. The first list seen
        sets the state without alerting (a flag already on is not news).
        """
        out: list[Alert] = []
        for market in markets:
            self.names[market.market] = market.korean_name
            event = market.market_event
            if event is None:
                continue
            flags = {"warning": event.warning, **event.caution}
            rules = self._rules(market.market).flags
            for flag, on in flags.items():
                key = (market.market, flag)
                before = self._flags.get(key)
                self._flags[key] = on
                enabled = rules.warning if flag == "warning" else rules.caution
                if before is False and on and enabled:
                    out.append(
                        Alert(
                            id=f"market_caution:{market.market}:{flag}:{ts_ms}",
                            rule="market_caution",
                            market=market.market,
                            severity="critical" if flag == "warning" else "warning",
                            event_ms=ts_ms,
                            korean_name=market.korean_name,
                            flag=flag.upper(),
                        )
                    )
        return self._emit(out) if out else _NO_ALERTS

    def remember(self, alerts: Iterable[Alert]) -> None:
        """Alerts already raised (read back from the lake after a restart): never again, and
        their cooldowns hold."""
        for alert in alerts:
            self._remember_id(alert.id)
            st = self._states.get(alert.market)
            if st is None:
                st = self._states[alert.market] = _State(
                    self.config.for_market(alert.market), self.ring_s
                )
            if alert.rule == "price_move" and alert.direction == "up":
                st.cool_up = max(st.cool_up, alert.event_ms)
            elif alert.rule == "price_move":
                st.cool_dn = max(st.cool_dn, alert.event_ms)
            elif alert.rule == "volume_spike":
                st.cool_vol = max(st.cool_vol, alert.event_ms)

    def bars(self, market: str) -> MarketBars | None:
        st = self._states.get(market)
        return None if st is None else st.bars

    def markets(self) -> list[str]:
        return sorted(self._states)

    # -- caches ----------------------------------------------------------------------------------

    def _minute_cache(self, st: _State) -> None:
        """New minute: volume trigger from the baseline of previous minutes."""
        rule, bars = st.rules.volume, st.bars
        if not rule.enabled or bars.base_med < 0.0 or bars.base_n < rule.min_baseline_min:
            st.vol_trigger = st.vol_rearm = _INF
            return
        base = max(bars.base_med, rule.baseline_floor_krw)
        trigger = max(rule.k * base, base + rule.mad_multiple * 1.4826 * bars.base_mad)
        trigger = max(trigger, rule.min_krw)
        st.vol_trigger = trigger
        st.vol_rearm = trigger * rule.rearm_fraction

    def _second_cache(self, st: _State, s: int) -> None:
        """New second: reference prices and thresholds of every window -> four price bounds."""
        rule, bars = st.rules.price, st.bars
        if not rule.enabled:
            st.hi, st.lo, st.rehi, st.relo = _INF, -_INF, _INF, -_INF
            return
        sigma = bars.sigma_1m if bars.var_n >= rule.min_vol_minutes else 0.0
        z = rule.vol_multiple
        hi = rehi = _INF
        lo = relo = -_INF
        refs, thrs = [], []
        rf = rule.rearm_fraction
        for w, floor in zip(rule.windows_min, rule.floors_pct, strict=True):
            ref, ref_s = bars.price_at(s - w * 60)
            # The reference may be older than W in a quiet market: the move it measures spans
            # its true age, so the volatility term uses that age (the floor stays the floor).
            age_min = max(w, (s - ref_s) / 60.0)
            thr = max(floor / 100.0, z * sigma * math.sqrt(age_min))
            refs.append(ref)
            thrs.append(thr)
            if ref > 0.0:
                hi = min(hi, ref * math.exp(thr))
                lo = max(lo, ref * math.exp(-thr))
                rehi = min(rehi, ref * math.exp(thr * rf))
                relo = max(relo, ref * math.exp(-thr * rf))
        st.refs, st.thrs = refs, thrs
        st.hi, st.lo, st.rehi, st.relo = hi, lo, rehi, relo

    # -- rules ---------------------------------------------------------------------------------

    def _price(self, market: str, st: _State, ts_ms: int, price: float) -> list[Alert]:
        if not st.armed_up and price < st.rehi:
            st.armed_up = True
        if not st.armed_dn and price > st.relo:
            st.armed_dn = True
        if st.lo < price < st.hi:
            return _NO_ALERTS
        # The window that crossed by the widest margin (|r| relative to its threshold), among the
        # armed directions. Both bounds can be crossed at once (hi < lo when the windows'
        # reference prices differ widely: up over 1 min, yet down over 15), so the direction is
        # that window's own sign of ln(price / ref), never which bound happened to be tested.
        best, best_score, best_r = -1, 0.0, 0.0
        armed_up, armed_dn = st.armed_up, st.armed_dn
        for idx, (ref, thr) in enumerate(zip(st.refs, st.thrs, strict=True)):
            if ref <= 0.0:
                continue
            r = math.log(price / ref)
            if not (armed_up if r > 0.0 else armed_dn):
                continue
            score = abs(r) / thr
            if score >= 1.0 and score > best_score:
                best, best_score, best_r = idx, score, r
        if best < 0:
            return _NO_ALERTS
        up = best_r > 0.0
        windows = st.rules.price.windows_min
        if up:
            st.armed_up = False
        else:
            st.armed_dn = False
        last = st.cool_up if up else st.cool_dn
        if ts_ms - last < st.rules.cooldown_ms:
            return _NO_ALERTS
        if up:
            st.cool_up = ts_ms
        else:
            st.cool_dn = ts_ms
        ref, thr = st.refs[best], st.thrs[best]
        direction = "up" if up else "down"
        severity: Severity = (
            "critical" if best_score >= st.rules.price.critical_multiple else ("warning")
        )
        alert = Alert(
            id=f"price_move:{market}:{direction}:{ts_ms}",
            rule="price_move",
            market=market,
            severity=severity,
            event_ms=ts_ms,
            korean_name=self.names.get(market),
            direction=direction,
            window_s=windows[best] * 60,
            move_pct=round(100.0 * best_r, 4),
            threshold_pct=round(100.0 * thr, 4),
            price=price,
            ref_price=ref,
        )
        return self._emit([alert])

    def _volume(self, market: str, st: _State, ts_ms: int, price: float) -> Alert | None:
        roll = st.bars.roll_krw
        if not st.armed_vol:
            if roll < st.vol_rearm:
                st.armed_vol = True
            return None
        if roll < st.vol_trigger:
            return None
        st.armed_vol = False
        if ts_ms - st.cool_vol < st.rules.cooldown_ms:
            return None
        st.cool_vol = ts_ms
        rule, bars = st.rules.volume, st.bars
        base = max(bars.base_med, rule.baseline_floor_krw)
        ratio = roll / base
        critical = roll >= st.vol_trigger * rule.critical_multiple
        alert = Alert(
            id=f"volume_spike:{market}:{ts_ms}",
            rule="volume_spike",
            market=market,
            severity="critical" if critical else "warning",
            event_ms=ts_ms,
            korean_name=self.names.get(market),
            price=price,
            krw_60s=round(roll, 2),
            baseline_krw=round(base, 2),
            ratio=round(ratio, 4),
        )
        found = self._emit([alert])
        return found[0] if found else None

    # -- output ----------------------------------------------------------------------------------

    def _rules(self, market: str) -> MarketRules:
        st = self._states.get(market)
        if st is None:
            st = self._states[market] = _State(self.config.for_market(market), self.ring_s)
        return st.rules

    def _remember_id(self, alert_id: str) -> bool:
        if alert_id in self._seen:
            return False
        self._seen.add(alert_id)
        self._seen_order.append(alert_id)
        if len(self._seen_order) > _SEEN_MAX:
            self._seen.discard(self._seen_order.popleft())
        return True

    def _emit(self, alerts: list[Alert]) -> list[Alert]:
        out = []
        for alert in alerts:
            if not self._remember_id(alert.id) or self.quiet:
                self.stats.suppressed += 1
                continue
            self.stats.alerts += 1
            self.stats.by_rule[alert.rule] = self.stats.by_rule.get(alert.rule, 0) + 1
            out.append(alert)
        return out or _NO_ALERTS
