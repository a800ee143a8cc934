"""detectors.fund: totals, scopes, the three monitors, outcomes and the alert (SPEC §7b, §6)."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from detectors.alert_identity import alert_id
from detectors.fund import (
    Finding,
    MonitorKey,
    MonitorState,
    MonthTotals,
    diagnosis_category,
    disease_cost_swing,
    expenditure_growth,
    fund_alert,
    fund_updates,
    inpatient_growth,
    outcome_step,
)
from detectors.fund.totals import weight_micro
from detectors.ruleset_sections import (
    DiseaseCostSwingParams,
    ExpenditureGrowthParams,
    InpatientGrowthParams,
)
from factories import make_settlement

EG, DS, IG = ExpenditureGrowthParams(), DiseaseCostSwingParams(), InpatientGrowthParams()
REGION = ("region", "610302")
INST = ("institution", "610302", "H0007")
DIAG = ("diagnosis", "610302", "K40", "inpatient")
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "alert.schema.json")
                    .read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def fund(yuan: int, visits: int = 10) -> MonthTotals:
    return MonthTotals(visits=visits, total_fen=yuan * 150, fund_fen=yuan * 100)


def cases(n: int, cost_per_case_yuan: int) -> MonthTotals:
    return MonthTotals(visits=n, total_fen=n * cost_per_case_yuan * 100)


def inpatient(visits: int, total_yuan: int, weights: tuple[float, ...] = ()) -> MonthTotals:
    return MonthTotals(visits=visits, total_fen=total_yuan * 100, inpatient_visits=visits,
                       inpatient_total_fen=total_yuan * 100, drg_visits=len(weights),
                       drg_weight_micro=sum(weight_micro(w) for w in weights))


def level(f: Finding | None) -> str | None:
    return None if f is None else f.level


# ---- totals and scopes -----------------------------------------------------------------------


def test_totals_of_an_inpatient_settlement_with_drg_weight():
    s = make_settlement(kind="inpatient", drg_code="ES23", drg_weight=1.2345)
    t = MonthTotals.of(s)
    assert (t.visits, t.inpatient_visits, t.drg_visits, t.drg_weight_micro) == (1, 1, 1, 1_234_500)
    assert t.total_fen == t.inpatient_total_fen == s.total_fen and t.fund_fen == s.fund_fen
    assert t.cmi == Fraction(12345, 10000)


@pytest.mark.parametrize(
    ("kind", "weight", "inpatient_visits", "drg_visits"),
    [("outpatient", None, 0, 0), ("outpatient", 1.5, 0, 0), ("inpatient", None, 1, 0),
     ("pharmacy", None, 0, 0)],
)
def test_totals_count_drg_weights_only_for_inpatient_visits(kind, weight, inpatient_visits,
                                                            drg_visits):
    t = MonthTotals.of(make_settlement(kind=kind, drg_weight=weight))
    assert (t.inpatient_visits, t.drg_visits, t.cmi) == (inpatient_visits, drg_visits, None)


def test_totals_merge_add_and_round_trip():
    a, b = make_settlement(), make_settlement(kind="inpatient", drg_weight=0.9)
    t = MonthTotals().add(a).add(b)
    assert t == MonthTotals.of(b).merge(MonthTotals.of(a))
    assert MonthTotals.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    assert MonthTotals().cost_per_case_fen is None
    assert t.cost_per_case_fen == Fraction(a.total_fen + b.total_fen, 2)


@pytest.mark.parametrize(
    ("diagnoses", "category"),
    [(("K40.9", "I10"), "K40"), ((" k40.9",), "K40"), (("I10",), "I10"), (("A0",), "A0"),
     ((), None), (("  ",), None)],
)
def test_diagnosis_category(diagnoses, category):
    assert diagnosis_category(diagnoses) == category


@pytest.mark.parametrize(
    ("kwargs", "tz", "scopes", "month"),
    [
        (dict(kind="outpatient", diagnoses=["K40.9", "I10"]), "Asia/Shanghai",
         [REGION, INST, ("diagnosis", "610302", "K40", "outpatient")], "2025-11"),
        (dict(kind="pharmacy"), "Asia/Shanghai",
         [REGION, ("institution", "610302", "P0001")], "2025-11"),
        (dict(kind="pharmacy", diagnoses=["E11.9"]), "Asia/Shanghai",
         [REGION, ("institution", "610302", "P0001"), ("diagnosis", "610302", "E11", "pharmacy")],
         "2025-11"),
        # 2025-12-01 07:00 +08:00 is December in Shanghai, November in UTC.
        (dict(kind="inpatient", at="2025-12-01T07:00:00+08:00"), "UTC",
         [REGION, INST, ("diagnosis", "610302", "J18", "inpatient")], "2025-11"),
    ],
)
def test_fund_updates(kwargs, tz, scopes, month):
    s = make_settlement(**kwargs)
    updates = fund_updates(s, tz)
    assert [u.scope for u in updates] == scopes
    assert {u.month for u in updates} == {month}
    assert all(u.totals == MonthTotals.of(s) for u in updates)


# ---- fund.expenditure_growth -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "scope", "previous", "current", "expected"),
    [
        ("+14 % no card", REGION, fund(100_000), fund(114_000), None),
        ("exactly +15 % no card", REGION, fund(100_000), fund(115_000), None),
        ("+16 % yellow", REGION, fund(100_000), fund(116_000), "yellow"),
        ("exactly +30 % yellow", REGION, fund(100_000), fund(130_000), "yellow"),
        ("+31 % red", REGION, fund(100_000), fund(131_000), "red"),
        ("decline no card", REGION, fund(100_000), fund(60_000), None),
        ("institution +16 % yellow", INST, fund(100_000), fund(116_000), "yellow"),
        ("institution base exactly 50,000 yuan", INST, fund(50_000), fund(65_500), "red"),
        ("tiny region base still counts", REGION, fund(1), fund(2), "red"),
    ],
)
def test_expenditure_growth_levels(case, scope, previous, current, expected):
    f = expenditure_growth(EG, scope, "2025-11", current, previous)
    assert f is not None and f.level == expected, case
    assert f.measure.name == "fund_amount" and f.n == current.visits
    assert f.measure.current == Fraction(current.fund_fen, 100)
    assert f.measure.previous == (Fraction(previous.fund_fen, 100),)


@pytest.mark.parametrize(
    ("case", "scope", "previous", "current"),
    [
        ("institution with base 49,999 yuan no card", INST, fund(49_999), fund(100_000)),
        ("no previous month", REGION, None, fund(100_000)),
        ("previous month without fund spending", REGION, fund(0), fund(100_000)),
        ("no current month", REGION, fund(100_000), None),
    ],
)
def test_expenditure_growth_not_enough_data(case, scope, previous, current):
    assert expenditure_growth(EG, scope, "2025-11", current, previous) is None, case


def test_expenditure_growth_min_base_comes_from_the_rule_set():
    low = dataclasses.replace(EG, min_institution_base_fen=100)
    assert level(expenditure_growth(low, INST, "2025-11", fund(2), fund(1))) == "red"


def test_monitors_refuse_scopes_they_do_not_watch():
    with pytest.raises(ValueError):
        expenditure_growth(EG, DIAG, "2025-11", fund(2), fund(1))
    with pytest.raises(ValueError):
        inpatient_growth(IG, REGION, "2025-11", fund(2), fund(1))


# ---- fund.disease_cost_swing -------------------------------------------------------------------

FLAT = (cases(30, 1000), cases(30, 1000), cases(30, 1000))


@pytest.mark.parametrize(
    ("case", "current", "previous", "expected"),
    [
        ("19 cases no card", cases(19, 2000), FLAT, "none-data"),
        ("20 cases +31 % yellow", cases(20, 1310), FLAT, "yellow"),
        ("exactly +30 % no card", cases(20, 1300), FLAT, None),
        ("exactly +60 % yellow", cases(40, 1600), FLAT, "yellow"),
        ("+61 % red", cases(20, 1610), FLAT, "red"),
        ("cheaper no card", cases(20, 500), FLAT, None),
        # Mean of monthly cost per case (400+1000+1000)/3 = 800 → +31.25 %; a pooled
        # baseline (≈ 994) would give +5.6 %.
        ("mean of previous 3 months baseline", cases(20, 1050),
         (cases(1, 400), cases(50, 1000), cases(50, 1000)), "yellow"),
        ("missing previous month", cases(20, 2000), (FLAT[0], None, FLAT[2]), "none-data"),
        ("previous month without cases", cases(20, 2000), (FLAT[0], FLAT[1], MonthTotals()),
         "none-data"),
        ("no current month", None, FLAT, "none-data"),
    ],
)
def test_disease_cost_swing(case, current, previous, expected):
    f = disease_cost_swing(DS, DIAG, "2025-11", current, previous)
    if expected == "none-data":
        assert f is None, case
        return
    assert f is not None and f.level == expected, case
    assert f.n == current.visits and f.measure.name == "cost_per_case"
    assert len(f.measure.previous) == 3
    assert f.measure.baseline == sum(f.measure.previous) / 3


def test_disease_cost_swing_baseline_value_and_length():
    f = disease_cost_swing(DS, DIAG, "2025-11", cases(20, 1050),
                           (cases(1, 400), cases(50, 1000), cases(50, 1000)))
    assert f is not None and f.measure.baseline == 800 and f.measure.growth == Fraction(5, 16)
    with pytest.raises(ValueError):
        disease_cost_swing(DS, DIAG, "2025-11", cases(20, 1050), FLAT[:2])


# ---- fund.inpatient_growth ---------------------------------------------------------------------

W10 = (1.0,) * 10


@pytest.mark.parametrize(
    ("case", "previous", "current", "expected", "shown", "measured"),
    [
        ("visits +20 % no card", inpatient(100, 100_000), inpatient(120, 100_000), None,
         "inpatient_visits", ("inpatient_visits", "inpatient_total_cost")),
        ("visits +21 % yellow", inpatient(100, 100_000), inpatient(121, 100_000), "yellow",
         "inpatient_visits", ("inpatient_visits", "inpatient_total_cost")),
        ("visits +41 % red", inpatient(100, 100_000), inpatient(141, 100_000), "red",
         "inpatient_visits", ("inpatient_visits", "inpatient_total_cost")),
        ("cost +45 % beats visits +25 %", inpatient(100, 100_000), inpatient(125, 145_000),
         "red", "inpatient_total_cost", ("inpatient_visits", "inpatient_total_cost")),
        ("CMI growth with DRG weights", inpatient(10, 100_000, W10),
         inpatient(10, 100_000, (1.25,) * 10), "yellow", "cmi",
         ("inpatient_visits", "inpatient_total_cost", "cmi")),
        ("CMI exactly +40 % yellow", inpatient(10, 100_000, W10),
         inpatient(10, 100_000, (1.4,) * 10), "yellow", "cmi",
         ("inpatient_visits", "inpatient_total_cost", "cmi")),
        ("CMI without DRG weights this month", inpatient(10, 100_000, W10),
         inpatient(10, 100_000), None, "inpatient_visits",
         ("inpatient_visits", "inpatient_total_cost")),
        ("CMI without DRG weights last month", inpatient(10, 100_000),
         inpatient(10, 100_000, (2.0,) * 10), None, "inpatient_visits",
         ("inpatient_visits", "inpatient_total_cost")),
    ],
)
def test_inpatient_growth(case, previous, current, expected, shown, measured):
    f = inpatient_growth(IG, INST, "2025-11", current, previous)
    assert f is not None and f.level == expected, case
    assert f.measure.name == shown
    assert tuple(m.name for m in f.measures) == measured
    assert f.n == current.inpatient_visits


@pytest.mark.parametrize(
    ("case", "previous", "current"),
    [("no inpatient last month", fund(100_000), inpatient(10, 10_000)),
     ("no previous month", None, inpatient(10, 10_000)),
     ("no current month", inpatient(10, 10_000), None)],
)
def test_inpatient_growth_not_enough_data(case, previous, current):
    assert inpatient_growth(IG, INST, "2025-11", current, previous) is None, case


# ---- outcomes ----------------------------------------------------------------------------------

Y, R = "yellow", "red"


@pytest.mark.parametrize(
    ("case", "state", "new_level", "transitions", "after"),
    [
        ("nothing", MonitorState(), None, (), MonitorState()),
        ("fires yellow", MonitorState(), Y, (("firing", Y),), MonitorState(Y, (Y,))),
        ("unchanged yellow", MonitorState(Y, (Y,)), Y, (), MonitorState(Y, (Y,))),
        ("yellow → red: yellow superseded", MonitorState(Y, (Y,)), R,
         (("firing", R), ("resolved", Y)), MonitorState(R, (Y, R))),
        ("red → yellow (pulled back)", MonitorState(R, (R,)), Y,
         (("firing", Y), ("resolved", R)), MonitorState(Y, (Y, R))),
        ("red → yellow that already fired: red resolves only", MonitorState(R, (Y, R)), Y,
         (("resolved", R),), MonitorState(None, (Y, R))),
        ("yellow → nothing: resolved", MonitorState(Y, (Y,)), None, (("resolved", Y),),
         MonitorState(None, (Y,))),
        ("resolved yellow does not fire twice", MonitorState(None, (Y,)), Y, (),
         MonitorState(None, (Y,))),
        ("resolved yellow, then red", MonitorState(None, (Y,)), R, (("firing", R),),
         MonitorState(R, (Y, R))),
    ],
)
def test_outcome_step(case, state, new_level, transitions, after):
    got_state, got = outcome_step(state, new_level)
    assert (got, got_state) == (transitions, after), case
    assert MonitorState.from_dict(json.loads(json.dumps(got_state.to_dict()))) == got_state


# ---- the alert envelope ------------------------------------------------------------------------

CLOSE = "2025-12-02T00:00:00+08:00"


def alert(params, key, lvl, status, finding):
    a = fund_alert(params, key, lvl, status, finding, "7", CLOSE)
    VALIDATOR.validate({**a, "emitted_at": "2025-12-02T00:00:01.5+08:00"})
    return a


@pytest.mark.parametrize(
    ("params", "key", "finding", "entity", "visit_kind", "threshold", "peer_entities"),
    [
        (EG, MonitorKey("fund.expenditure_growth", REGION, "2025-11"),
         expenditure_growth(EG, REGION, "2025-11", fund(116_000), fund(100_000)),
         {"kind": "region", "id": "610302", "institution_id": None, "region": "610302"},
         None, 1.15, 1),
        (EG, MonitorKey("fund.expenditure_growth", INST, "2025-11"),
         expenditure_growth(EG, INST, "2025-11", fund(116_000), fund(100_000)),
         {"kind": "institution", "id": "H0007", "institution_id": "H0007", "region": "610302"},
         None, 1.15, 1),
        (DS, MonitorKey("fund.disease_cost_swing", DIAG, "2025-11"),
         disease_cost_swing(DS, DIAG, "2025-11", cases(20, 1310), FLAT),
         {"kind": "diagnosis", "id": "K40", "institution_id": None, "region": "610302"},
         "inpatient", 1.3, 3),
        (IG, MonitorKey("fund.inpatient_growth", INST, "2025-11"),
         inpatient_growth(IG, INST, "2025-11", inpatient(121, 100_000), inpatient(100, 100_000)),
         {"kind": "institution", "id": "H0007", "institution_id": "H0007", "region": "610302"},
         "inpatient", 1.2, 1),
    ],
)
def test_fund_alert_envelope(params, key, finding, entity, visit_kind, threshold,
                             peer_entities):
    a = alert(params, key, "yellow", "firing", finding)
    hashed = "610302" if entity["kind"] == "region" else f"610302|{entity['id']}"
    assert a["alert_id"] == alert_id(key.rule, entity["kind"], hashed, visit_kind or "all",
                                     "2025-11", "yellow")
    assert (a["entity"], a["visit_kind"], a["period"]) == (entity, visit_kind, "2025-11")
    assert (a["threshold"], a["peer_entities"], a["consecutive_months"]) == (
        threshold, peer_entities, 1)
    assert a["event_time"] == CLOSE and "emitted_at" not in a
    ev = a["evidence"]
    assert a["observed"] == ev["current"] and a["peer_mean"] == ev["baseline"]
    assert a["n"] == ev["n"] == finding.n
    assert a["ratio"] == round(a["observed"] / a["peer_mean"], 4)
    assert len(ev["previous"]) == len(ev["previous_months"]) == peer_entities
    assert ev["previous_months"][0] == "2025-10" and ev["growth"] > 0
    assert ("measures" in ev) == (key.rule == "fund.inpatient_growth")


def test_fund_alert_values():
    key = MonitorKey("fund.expenditure_growth", REGION, "2025-11")
    a = alert(EG, key, "red", "firing",
              expenditure_growth(EG, REGION, "2025-11", fund(131_000, visits=42), fund(100_000)))
    assert (a["observed"], a["peer_mean"], a["ratio"], a["threshold"], a["n"]) == (
        131_000.0, 100_000.0, 1.31, 1.3, 42)
    assert a["evidence"] == {"measure": "fund_amount", "current": 131_000.0,
                             "previous": [100_000.0], "previous_months": ["2025-10"],
                             "baseline": 100_000.0, "growth": 0.31, "level": "red", "n": 42}


@pytest.mark.parametrize(
    ("lvl", "finding", "reason"),
    [
        ("yellow", expenditure_growth(EG, REGION, "2025-11", fund(140_000), fund(100_000)),
         "superseded"),
        ("red", expenditure_growth(EG, REGION, "2025-11", fund(120_000), fund(100_000)),
         "downgraded"),
        ("yellow", expenditure_growth(EG, REGION, "2025-11", fund(101_000), fund(100_000)),
         "below_threshold"),
        ("yellow", None, "insufficient_data"),
    ],
)
def test_resolved_alert_says_why(lvl, finding, reason):
    key = MonitorKey("fund.expenditure_growth", REGION, "2025-11")
    a = alert(EG, key, lvl, "resolved", finding)
    assert a["status"] == "resolved" and a["evidence"]["reason"] == reason
    firing = fund_alert(EG, key, lvl, "firing", finding, "7", CLOSE)
    assert firing["alert_id"] == a["alert_id"] and "reason" not in firing["evidence"]


def test_two_regions_never_share_an_alert_id():
    other = ("diagnosis", "610303", "K40", "inpatient")
    f = disease_cost_swing(DS, DIAG, "2025-11", cases(20, 1310), FLAT)
    a = fund_alert(DS, MonitorKey("fund.disease_cost_swing", DIAG, "2025-11"), "yellow",
                   "firing", f, "7", CLOSE)
    b = fund_alert(DS, MonitorKey("fund.disease_cost_swing", other, "2025-11"), "yellow",
                   "firing", f, "7", CLOSE)
    assert a["alert_id"] != b["alert_id"]
