"""The fund-monitor stage (SPEC §7b): scope-month totals keyed by region, monthly closes.

Input ``<app>-fund-by-region-v1`` is keyed by region: one message per settlement carrying
its scope updates (region, institution, diagnosis), plus the intake's event-time ticks.
A month closes for a region when the low watermark passes month end + lateness; late
events re-evaluate the months that read them (the alert is updated, never ignored).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson

from detectors.fund.close import close_ms, iso_local
from detectors.fund.monitors import RULE_FAMILIES, RULES, baseline_months, evaluate
from detectors.fund.outcomes import MonitorKey, MonitorState, fund_alert, outcome_step
from detectors.fund.scopes import FundUpdate, scope_from_list, scope_key
from detectors.fund.totals import MonthTotals
from detectors.fund.watermark_close import is_late, months_to_close
from detectors.months import months_back, next_month
from detectors.watermarks import IDLE, Watermarks

from .batching import batched_json_table, consume_batches
from .runtime import Runtime

log = logging.getLogger(__name__)
TOPIC = "fund-by-region-v1"


def fund_updates_to_wire(updates: tuple[FundUpdate, ...]) -> list[list[Any]]:
    return [[list(u.scope), u.month, u.totals.to_dict()] for u in updates]


@dataclass
class RegionMonths:
    """In-memory index of one region (rebuilt from the table): months → scope keys."""

    scopes: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    closed_through: dict[int, str] = field(default_factory=dict)  # by lateness_ms

    @property
    def earliest(self) -> str | None:
        return min(self.scopes) if self.scopes else None


def register(app: faust.App, rt: Runtime) -> faust.TopicT:
    topic = app.topic(f"{rt.settings.app_id}-{TOPIC}", partitions=rt.settings.partitions,
                      internal=True)
    alerts = app.topic(rt.settings.topics.alerts, partitions=rt.settings.partitions)
    rows = batched_json_table(app, "fund-months-v1", rt.settings.partitions)
    watermarks: dict[int, Watermarks] = {}
    # Per partition, the highest real event time any update or tick carried. When every
    # origin is idle the low watermark is IDLE (2**62 ms); months close no further than
    # the data seen (closing through year 9999 would end in a ValueError on every message).
    seen_ms: dict[int, int] = {}
    regions: dict[int, dict[str, RegionMonths]] = {}
    m = rt.metrics

    def rules() -> list[str]:
        return [r for r in RULES if rt.ruleset.is_enabled(r)]

    def totals(scope: tuple, month: str) -> MonthTotals | None:
        raw = rows.get(scope_key(scope, month))
        return MonthTotals.from_dict(raw["totals"]) if raw else None

    async def run(rule: str, key: str, resend: bool = False) -> None:
        row = rows[key]
        scope, month = scope_from_list(row["scope"]), row["month"]
        p = rt.ruleset.params(rule)
        tz = rt.ruleset.tz_for(scope[1])
        previous = tuple(totals(scope, mm) for mm in months_back(month, baseline_months(rule, p)))
        finding = evaluate(rule, p, scope, month, totals(scope, month), previous)
        state = MonitorState.from_dict(row.get("states", {}).get(rule, {}))
        if resend:  # after a restart: what this state has already said, said again
            transitions = tuple(("firing", lv) for lv in state.fired) + tuple(
                ("resolved", lv) for lv in state.fired if lv != state.firing)
        else:
            new_state, transitions = outcome_step(
                state, None if finding is None else finding.level)
            if new_state != state:
                rows[key] = {**row, "states": {**row.get("states", {}),
                                               rule: new_state.to_dict()}}
        event_time = iso_local(close_ms(month, tz, p.lateness_ms), tz)
        for status, level in transitions:
            alert = fund_alert(p, MonitorKey(rule, scope, month), level, status, finding,
                               rt.rules_version, event_time)
            alert["emitted_at"] = rt.now_iso()
            await alerts.send(key=alert["alert_id"].encode(), value=orjson.dumps(alert))
            m.alerts.labels(rule=rule, level=level).inc()

    async def ensure_indexed(q: int) -> None:
        if q in regions:
            return
        index: dict[str, RegionMonths] = defaultdict(RegionMonths)
        for key, row in rows.items():
            if row.get("q") == q:
                index[row["scope"][1]].scopes[row["month"]].add(key)
        regions[q] = index
        watermarks[q] = Watermarks.empty(rt.settings.partitions)
        for region in index.values():
            for keys in region.scopes.values():
                for key in sorted(keys):
                    for rule in rules():
                        if rows[key].get("states", {}).get(rule):
                            await run(rule, key, resend=True)

    async def close_months(q: int) -> None:
        low = watermarks[q].low_ms
        if low is not None:
            low = min(low, seen_ms[q]) if q in seen_ms else None
        for region_id in sorted(regions[q]):
            region = regions[q][region_id]
            tz = rt.ruleset.tz_for(region_id)
            for lateness in sorted({rt.ruleset.params(r).lateness_ms for r in rules()}):
                due = months_to_close(region.earliest, region.closed_through.get(lateness), low,
                                      tz, lateness)
                for month in due:
                    for key in sorted(region.scopes.get(month, ())):
                        for rule in rules():
                            if (rt.ruleset.params(rule).lateness_ms == lateness
                                    and rows[key]["scope"][0] in RULE_FAMILIES[rule]):
                                await run(rule, key)
                    region.closed_through[lateness] = month

    async def late_event(region: RegionMonths, keys: list[str]) -> None:
        """Re-run monitors of months that read a late event's month (itself and after)."""
        for key in keys:
            row = rows[key]
            scope = scope_from_list(row["scope"])
            for rule in rules():
                p = rt.ruleset.params(rule)
                if scope[0] not in RULE_FAMILIES[rule]:
                    continue
                month = row["month"]
                for _ in range(baseline_months(rule, p) + 1):
                    if not is_late(month, region.closed_through.get(p.lateness_ms)):
                        break
                    if (k := scope_key(scope, month)) in rows:
                        await run(rule, k)
                    month = next_month(month)

    @app.agent(topic, name="fund-monitors")
    async def fund_monitors(stream: faust.StreamT) -> None:
        await consume_batches(stream, rows, ensure_indexed, apply)

    async def apply(q: int, msg: dict[str, Any]) -> None:
        if msg["k"] == "u":
            region = regions[q][msg["r"]]
            late_keys = []
            for scope_l, month, totals_d in msg["u"]:
                key = scope_key(scope_from_list(scope_l), month)
                row = rows.get(key) or {"scope": scope_l, "month": month, "q": q,
                                        "totals": MonthTotals().to_dict(), "applied": {}}
                if row["applied"].get(str(msg["p"]), -1) >= msg["o"]:
                    continue  # redelivered: already counted
                merged = MonthTotals.from_dict(row["totals"]).merge(
                    MonthTotals.from_dict(totals_d))
                rows[key] = {**row, "totals": merged.to_dict(),
                             "applied": {**row["applied"], str(msg["p"]): msg["o"]}}
                region.scopes[month].add(key)
                if any(is_late(month, ct) for ct in region.closed_through.values()):
                    late_keys.append(key)
            if late_keys:
                m.late_events.inc()
                await late_event(region, late_keys)
        watermarks[q] = watermarks[q].advance(msg["p"], msg["w"])
        if msg["w"] < IDLE:
            seen_ms[q] = max(seen_ms.get(q, msg["w"]), msg["w"])
        await close_months(q)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: object, revoked: set, **kwargs: object) -> None:
        for tp in revoked:
            if tp.topic == topic.get_topic_name():
                regions.pop(tp.partition, None)
                watermarks.pop(tp.partition, None)
                seen_ms.pop(tp.partition, None)

    return topic
