"""The fund monitors run in-process over settlements (no Kafka): the reference runner.

Uses only the pure functions the streaming shell uses, keyed the same way (clocks by
region and lateness, totals by scope-month, outcome states by rule/scope/month), so the
shell's output can be checked against it. Per settlement, in input order:

1. fold its contribution into every scope-month it touches (:func:`fund_updates`);
2. advance its region's clock(s) (:func:`observe`);
3. for each newly closed month, evaluate every enabled rule on every scope of the region
   with data in that month (scopes sorted, rules in SPEC order);
4. for a late event, re-evaluate the event's scopes for its month and the closed months
   whose baseline includes it (:func:`affected_months`);
5. turn each evaluation into transitions (:func:`outcome_step`) and alerts
   (:func:`fund_alert`, ``event_time`` = the month's close time).

Months still open when the input ends are not evaluated (event time has not passed them).
Memory grows with scopes × months: a reference, not the service.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Protocol

from detectors.domain import Settlement
from detectors.fund.close import RegionClock, affected_months, close_ms, iso_local, observe
from detectors.fund.monitors import RULE_FAMILIES, RULES, baseline_months, evaluate
from detectors.fund.outcomes import MonitorKey, MonitorState, fund_alert, outcome_step
from detectors.fund.scopes import Scope, fund_updates
from detectors.fund.totals import MonthTotals
from detectors.months import months_back


class RuleSetLike(Protocol):
    version: str

    def tz_for(self, region: str) -> str: ...

    def params(self, rule_id: str) -> Any: ...

    def is_enabled(self, rule_id: str) -> bool: ...


def run_fund_monitors(settlements: Iterable[Settlement], ruleset: RuleSetLike
                      ) -> list[dict[str, Any]]:
    """Fund-monitor alerts (without ``emitted_at``), in emission order.

    Args:
        settlements: validated settlements in arrival order (time order for a replay;
            out-of-order arrivals are handled as late events).
        ruleset: the active rule set (``RuleSet``).
    """
    rules = [r for r in RULES if ruleset.is_enabled(r)]
    params = {r: ruleset.params(r) for r in rules}
    latenesses = sorted({params[r].lateness_ms for r in rules})
    totals: dict[tuple[Scope, str], MonthTotals] = {}
    scopes: dict[tuple[str, str], set[Scope]] = defaultdict(set)
    clocks: dict[tuple[str, int], RegionClock] = {}
    states: dict[MonitorKey, MonitorState] = {}
    alerts: list[dict[str, Any]] = []

    def run(rule: str, scope: Scope, month: str, tz: str) -> None:
        p = params[rule]
        previous = tuple(totals.get((scope, m))
                         for m in months_back(month, baseline_months(rule, p)))
        finding = evaluate(rule, p, scope, month, totals.get((scope, month)), previous)
        key = MonitorKey(rule, scope, month)
        state, transitions = outcome_step(states.get(key, MonitorState()),
                                          None if finding is None else finding.level)
        states[key] = state
        event_time = iso_local(close_ms(month, tz, p.lateness_ms), tz)
        alerts.extend(fund_alert(p, key, level, status, finding, ruleset.version, event_time)
                      for status, level in transitions)

    for s in settlements:
        tz = ruleset.tz_for(s.region)
        updates = fund_updates(s, tz)
        for u in updates:
            totals[(u.scope, u.month)] = totals.get((u.scope, u.month), MonthTotals()).merge(
                u.totals)
            scopes[(s.region, u.month)].add(u.scope)
        for lateness in latenesses:
            ck = (s.region, lateness)
            clock, closing = observe(clocks.get(ck, RegionClock()), s.settled_at_ms, tz, lateness)
            clocks[ck] = clock
            if closing is None:
                continue
            due = [r for r in rules if params[r].lateness_ms == lateness]
            for month in closing.closed:
                for scope in sorted(scopes.get((s.region, month), ())):
                    for rule in due:
                        if scope[0] in RULE_FAMILIES[rule]:
                            run(rule, scope, month, tz)
            if closing.late is None:
                continue
            for rule in due:
                lookahead = baseline_months(rule, params[rule])
                for month in affected_months(clock, closing.late, lookahead, tz, lateness):
                    for u in updates:
                        if u.scope[0] in RULE_FAMILIES[rule] and (u.scope, month) in totals:
                            run(rule, u.scope, month, tz)
    return alerts
