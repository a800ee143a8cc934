"""Invariants of the fund monitors (SPEC §7b): exact totals, round trips, idempotent outcomes."""

from __future__ import annotations

import dataclasses
import json
from functools import reduce

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.fund import (
    MonitorKey,
    MonitorState,
    MonthTotals,
    RegionClock,
    fund_updates,
    is_closed,
    observe,
    outcome_step,
)
from detectors.fund.offline import run_fund_monitors
from detectors.fund.outcomes import key_from_dict, key_to_dict
from detectors.fund.totals import WEIGHT_SCALE
from detectors.months import month_of
from detectors.ruleset import default_ruleset
from factories import DAY_MS, T0_MS, make_settlement

TZ = "Asia/Shanghai"
RS = default_ruleset("p")


@st.composite
def settlements(draw):
    kind = draw(st.sampled_from(["outpatient", "inpatient", "pharmacy"]))
    weight = None
    if kind == "inpatient" and draw(st.booleans()):
        weight = draw(st.integers(1, 50_000)) / 10_000  # DRG weights with 4 decimals
    s = make_settlement(
        kind=kind, at=T0_MS + draw(st.integers(-120, 120)) * DAY_MS // 4,
        institution_id=draw(st.sampled_from(["H1", "H2", "P1"])),
        region=draw(st.sampled_from(["610302", "610303"])),
        diagnoses=draw(st.sampled_from([None, ["K40.9"], ["I10", "K40.9"]])),
        drg_code=None if weight is None else "ES23", drg_weight=weight)
    total = draw(st.integers(0, 10_000_000))
    return dataclasses.replace(s, total_fen=total, fund_fen=draw(st.integers(0, total)))


def brute_force(ss) -> MonthTotals:
    inp = [s for s in ss if s.visit.kind == "inpatient"]
    weighted = [s for s in inp if s.visit.drg_weight is not None]
    return MonthTotals(
        visits=len(ss), total_fen=sum(s.total_fen for s in ss),
        fund_fen=sum(s.fund_fen for s in ss), inpatient_visits=len(inp),
        inpatient_total_fen=sum(s.total_fen for s in inp), drg_visits=len(weighted),
        drg_weight_micro=sum(round(s.visit.drg_weight * WEIGHT_SCALE) for s in weighted))


@settings(max_examples=150, deadline=None)
@given(st.lists(settlements(), max_size=25), st.randoms(use_true_random=False),
       st.integers(0, 25))
def test_totals_are_order_independent_and_equal_brute_force(ss, rnd, cut):
    expected = brute_force(ss)
    assert reduce(MonthTotals.add, ss, MonthTotals()) == expected
    shuffled = list(ss)
    rnd.shuffle(shuffled)
    assert reduce(MonthTotals.add, shuffled, MonthTotals()) == expected
    left = reduce(MonthTotals.add, shuffled[:cut], MonthTotals())
    right = reduce(MonthTotals.add, shuffled[cut:], MonthTotals())
    assert right.merge(left) == left.merge(right) == expected
    assert MonthTotals.from_dict(json.loads(json.dumps(expected.to_dict()))) == expected
    if expected.drg_visits:
        weights = [s.visit.drg_weight for s in ss if s.visit.kind == "inpatient"
                   and s.visit.drg_weight is not None]
        assert abs(float(expected.cmi) - sum(weights) / len(weights)) < 1e-9


@settings(max_examples=100, deadline=None)
@given(st.lists(settlements(), max_size=25))
def test_scope_totals_equal_brute_force_per_scope(ss):
    totals: dict = {}
    for s in ss:
        for u in fund_updates(s, TZ):
            totals[u.key] = totals.get(u.key, MonthTotals()).merge(u.totals)
    for s in ss:
        for u in fund_updates(s, TZ):
            members = [x for x in ss if u.key in {v.key for v in fund_updates(x, TZ)}]
            assert totals[u.key] == brute_force(members)
            assert u.month == month_of(s.settled_at_ms, TZ)


LEVEL = st.sampled_from([None, "yellow", "red"])


@settings(max_examples=300, deadline=None)
@given(st.lists(LEVEL, max_size=12))
def test_outcomes_emit_changes_only_and_never_twice(levels):
    state, seen, net = MonitorState(), [], {}
    for lv in levels:
        state, out = outcome_step(state, lv)
        again, repeat = outcome_step(state, lv)
        assert repeat == () and again == state  # re-evaluation with unchanged inputs
        seen.extend(out)
        for status, level in out:
            net[level] = status
        firing = [lvl for lvl, status in net.items() if status == "firing"]
        assert firing == ([] if state.firing is None else [state.firing])
        assert state.firing in (None, lv)
        assert MonitorState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert len(seen) == len(set(seen))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-90, 90), min_size=1, max_size=30), st.sampled_from([0, DAY_MS]))
def test_clock_closes_each_month_once_and_flags_late_events(offsets_days, lateness):
    clock, announced = RegionClock(), []
    for d in offsets_days:
        t = T0_MS + d * DAY_MS
        was_closed = is_closed(clock, month_of(t, TZ), TZ, lateness)
        clock, change = observe(clock, t, TZ, lateness)
        assert RegionClock.from_dict(json.loads(json.dumps(clock.to_dict()))) == clock
        if change is None:
            assert not was_closed
            continue
        assert (change.late is not None) == was_closed
        announced.extend(change.closed)
        assert all(is_closed(clock, m, TZ, lateness) for m in change.closed)
    assert announced == sorted(set(announced))


@settings(max_examples=40, deadline=None)
@given(st.lists(settlements(), max_size=40))
def test_offline_runner_is_deterministic_and_rerunning_a_month_emits_nothing_new(ss):
    ordered = sorted(ss, key=lambda s: s.settled_at_ms)
    first = run_fund_monitors(ordered, RS)
    assert first == run_fund_monitors(ordered, RS)
    pairs = [(a["alert_id"], a["status"]) for a in first]
    assert len(pairs) == len(set(pairs))
    # Feeding the same settlements again as "late" duplicates never re-emits a pair.
    doubled = run_fund_monitors(ordered + ordered, RS)
    pairs2 = [(a["alert_id"], a["status"]) for a in doubled]
    assert len(pairs2) == len(set(pairs2))


def test_monitor_key_round_trip():
    key = MonitorKey("fund.disease_cost_swing", ("diagnosis", "610302", "K40", "inpatient"),
                     "2025-11")
    assert key_from_dict(json.loads(json.dumps(key_to_dict(key)))) == key
    assert key.key == "fund.disease_cost_swing|diagnosis|610302|K40|inpatient|2025-11"
