"""detectors.claims patient rules and patient_step (SPEC §7, §11): history-based checks."""

import dataclasses

import pytest

from detectors import claims
from detectors.claims import PatientHistory, evaluate_patient, patient_step
from detectors.ruleset import load_ruleset
from detectors.ruleset_sections import FrozenMap
from factories import DAY_MS, HOUR_MS, T0_MS, drug, exam, make_settlement, service
from service.rules_io import default_ruleset_from_data

RS = default_ruleset_from_data()
MIN_MS = 60_000
PATIENT = "p-7f3a91c2"


def run(*settlements, rs=RS):
    """Apply settlements in arrival order; return the hits of each, as a list."""
    history, out = PatientHistory(), []
    for s in settlements:
        history, hits = patient_step(rs, history, s)
        for h in hits:
            assert PATIENT not in h.message
        out.append(hits)
    return out


def rules_of(hits):
    return [h.rule for h in hits]


def stay(inst="H0001", adm=0, dis=5 * DAY_MS, sid=None, **kw):
    return make_settlement(kind="inpatient", institution_id=inst, settlement_id=sid,
                           admitted_at=T0_MS + adm, discharged_at=T0_MS + dis,
                           at=T0_MS + dis, **kw)


def visit(inst="H0002", at=0, sid=None, kind="outpatient", **kw):
    return make_settlement(kind=kind, institution_id=inst, at=T0_MS + at, settlement_id=sid, **kw)


# ---- claim.split_admission ---------------------------------------------------------------

@pytest.mark.parametrize(
    "gap_ms, inst, hits",
    [
        (15 * DAY_MS, "H0001", True),        # exactly 15 x 24 h
        (15 * DAY_MS + 1, "H0001", False),
        (20 * DAY_MS, "H0001", False),
        (0, "H0001", True),                  # same-instant readmission
        (2 * DAY_MS, "H0002", False),        # another institution
    ],
)
def test_split_admission(gap_ms, inst, hits):
    first = stay(sid="A", adm=0, dis=5 * DAY_MS)
    second = stay(inst=inst, sid="B", adm=5 * DAY_MS + gap_ms, dis=8 * DAY_MS + gap_ms)
    out = run(first, second)
    assert out[0] == ()
    split = [h for h in out[1] if h.rule == "claim.split_admission"]
    assert bool(split) == hits
    if hits:
        assert split[0].related == ("A",) and split[0].items == ()


def test_split_admission_late_arrival_of_the_earlier_stay():
    later = stay(sid="B", adm=10 * DAY_MS, dis=12 * DAY_MS)
    earlier = stay(sid="A", adm=0, dis=5 * DAY_MS)
    out = run(later, earlier)
    assert out[0] == ()
    assert [h.related for h in out[1] if h.rule == "claim.split_admission"] == [("B",)]


# ---- claim.overlapping_stay ----------------------------------------------------------------

@pytest.mark.parametrize(
    "other, order, hit_expected",
    [
        (lambda: visit("H0002", at=2 * DAY_MS, sid="V"), "visit_first", True),
        (lambda: visit("H0002", at=2 * DAY_MS, sid="V"), "stay_first", True),
        (lambda: visit("H0001", at=2 * DAY_MS, sid="V"), "stay_first", False),  # same place
        (lambda: visit("H0002", at=5 * DAY_MS + HOUR_MS, sid="V"), "stay_first", False),
        (lambda: visit("H0002", at=-HOUR_MS, sid="V"), "visit_first", False),
        (lambda: visit("H0002", at=5 * DAY_MS, sid="V"), "stay_first", True),  # inclusive
        (lambda: visit("P0001", at=DAY_MS, sid="V", kind="pharmacy"), "stay_first", True),
        (lambda: stay("H0002", adm=3 * DAY_MS, dis=9 * DAY_MS, sid="V"), "stay_first", True),
        (lambda: stay("H0002", adm=3 * DAY_MS, dis=9 * DAY_MS, sid="V"), "visit_first", True),
        (lambda: stay("H0002", adm=5 * DAY_MS, dis=9 * DAY_MS, sid="V"), "stay_first", False),
    ],
)
def test_overlapping_stay(other, order, hit_expected):
    inpatient = stay("H0001", adm=0, dis=5 * DAY_MS, sid="S")
    o = other()
    out = run(inpatient, o) if order == "stay_first" else run(o, inpatient)
    assert out[0] == () or "claim.overlapping_stay" not in rules_of(out[0])
    found = [h for h in out[1] if h.rule == "claim.overlapping_stay"]
    assert bool(found) == hit_expected
    if found:
        assert found[0].related == ("S" if order == "stay_first" else "V",)


# ---- claim.impossible_travel ---------------------------------------------------------------

@pytest.mark.parametrize(
    "region, delta_ms, hits",
    [
        ("610303", 119 * MIN_MS, True),
        ("610303", 120 * MIN_MS, False),      # "less than 2 h apart"
        ("610303", -30 * MIN_MS, True),       # late arrival of an earlier settlement
        ("610302", 10 * MIN_MS, False),       # same region
    ],
)
def test_impossible_travel(region, delta_ms, hits):
    a = visit("H0002", at=0, sid="A")
    b = visit("H0009", at=delta_ms, sid="B", region=region)
    out = run(a, b)
    found = [h for h in out[1] if h.rule == "claim.impossible_travel"]
    assert bool(found) == hits
    if found:
        assert found[0].related == ("A",)


# ---- claim.pharmacy_frequency --------------------------------------------------------------

def sale(hours_after, sid=None):
    return visit("P0001", at=round(hours_after * HOUR_MS), sid=sid, kind="pharmacy")


@pytest.mark.parametrize(
    "times_h, last_hits",
    [
        ([0, 8, 16], False),                 # 3 in 24 h pass
        ([0, 8, 16, 23], True),              # the 4th hits
        ([0, 8, 16, 23.99], True),
        ([0, 8, 16, 24], False),             # windows are half-open: [t, t + 24 h)
        ([0, 8, 16, 23, 23.5], True),        # the 5th hits too
        ([10, 11, 12, 9], True),             # late arrival inside the window
        ([0, 30, 60, 90], False),
    ],
)
def test_pharmacy_frequency(times_h, last_hits):
    out = run(*(sale(t) for t in times_h))
    for hits in out[:-1][:3]:
        assert "claim.pharmacy_frequency" not in rules_of(hits)
    found = [h for h in out[-1] if h.rule == "claim.pharmacy_frequency"]
    assert bool(found) == last_hits
    if found:
        assert len(found[0].related) == RS.claims.pharmacy_frequency.count - 1


def test_pharmacy_frequency_ignores_other_visits():
    out = run(sale(0), visit(at=HOUR_MS), visit(at=2 * HOUR_MS), sale(3))
    assert "claim.pharmacy_frequency" not in rules_of(out[-1])


# ---- claim.duplicate_item ------------------------------------------------------------------

EXAM = "220201001"


@pytest.mark.parametrize(
    "items, expected",
    [
        ([exam(EXAM), exam(EXAM)], (EXAM,)),                 # two lines of one exam code
        ([exam(EXAM, quantity=2)], None),                    # quantity 2 on one line
        ([service(), service()], ("110200003",)),
        ([drug(), drug()], None),                            # drugs are not watched
        ([exam(EXAM), exam("250101001")], None),
    ],
)
def test_duplicate_item_within_one_settlement(items, expected):
    hits = run(visit(items=items))[0]
    found = [h for h in hits if h.rule == "claim.duplicate_item"]
    assert (found[0].items if found else None) == expected


@pytest.mark.parametrize(
    "first_at, second_at, inst2, rs, hits",
    [
        ("2025-11-18T09:00:00+08:00", "2025-11-18T16:00:00+08:00", "H0002", RS, True),
        ("2025-11-18T09:00:00+08:00", "2025-11-19T09:00:00+08:00", "H0002", RS, False),
        ("2025-11-18T09:00:00+08:00", "2025-11-18T16:00:00+08:00", "H0003", RS, False),
        # Same UTC day, different local (Asia/Shanghai) days:
        ("2025-11-18T23:30:00+08:00", "2025-11-19T00:30:00+08:00", "H0002", RS, False),
        # ... but the same day where the region's zone is Asia/Urumqi (UTC+6):
        ("2025-11-18T23:30:00+08:00", "2025-11-19T00:30:00+08:00", "H0002",
         dataclasses.replace(RS, timezones=FrozenMap({"610302": "Asia/Urumqi"})), True),
    ],
)
def test_duplicate_item_across_settlements(first_at, second_at, inst2, rs, hits):
    a = make_settlement(settlement_id="A", at=first_at, institution_id="H0002",
                        items=[service(), exam(EXAM)])
    b = make_settlement(settlement_id="B", at=second_at, institution_id=inst2,
                        items=[exam(EXAM), drug()])
    out = run(a, b, rs=rs)
    found = [h for h in out[1] if h.rule == "claim.duplicate_item"]
    assert bool(found) == hits
    if found:
        assert found[0].items == (EXAM,) and found[0].related == ("A",)


# ---- patient_step / evaluate_patient -------------------------------------------------------

def test_redelivery_returns_same_state_and_hits_even_after_a_rule_change():
    a = stay(sid="A")
    b = stay(sid="B", adm=6 * DAY_MS, dis=9 * DAY_MS)
    h1, _ = patient_step(RS, PatientHistory(), a)
    h2, hits = patient_step(RS, h1, b)
    assert rules_of(hits) == ["claim.split_admission"]
    off = load_ruleset('version = "2"\n[rules."claim.split_admission"]\nenabled = false\n'
                       '[catalogue]\n')
    again, hits_again = patient_step(off, h2, b)
    assert again is h2 and hits_again == hits
    assert evaluate_patient(off, h2, b) == hits
    assert evaluate_patient(off, h1, b) == ()


def test_evaluate_patient_matches_step_and_changes_nothing():
    history, _ = patient_step(RS, PatientHistory(), stay(sid="A"))
    snapshot = history.to_dict()
    b = visit("H0002", at=DAY_MS, sid="B", items=[exam(EXAM), exam(EXAM)])
    hits = evaluate_patient(RS, history, b)
    assert history.to_dict() == snapshot
    assert patient_step(RS, history, b)[1] == hits
    assert rules_of(hits) == ["claim.duplicate_item", "claim.overlapping_stay"]


def test_disabled_rules_do_not_hit_but_history_is_kept():
    rs = load_ruleset('version = "x"\n[rules."claim.split_admission"]\nenabled = false\n'
                      '[catalogue]\n')
    h, _ = patient_step(rs, PatientHistory(), stay(sid="A"))
    h, hits = patient_step(rs, h, stay(sid="B", adm=6 * DAY_MS, dis=9 * DAY_MS))
    assert hits == () and len(h.entries) == 2
    assert rules_of(evaluate_patient(RS, h, stay(sid="C", adm=10 * DAY_MS, dis=11 * DAY_MS))) \
        == ["claim.split_admission"]


def test_history_is_pruned_by_event_time_and_capped():
    retention = RS.patient_history.retention_ms
    h, _ = patient_step(RS, PatientHistory(), visit(at=0, sid="old"))
    h, _ = patient_step(RS, h, visit(at=retention, sid="edge"))
    assert [e.settlement_id for e in h.entries] == ["old", "edge"]   # exactly at the limit
    h, _ = patient_step(RS, h, visit(at=retention + 1, sid="new"))
    assert [e.settlement_id for e in h.entries] == ["edge", "new"]
    h, _ = patient_step(RS, h, visit(at=-DAY_MS, sid="late"))          # too late to keep
    assert [e.settlement_id for e in h.entries] == ["edge", "new"]
    small = dataclasses.replace(RS, patient_history=dataclasses.replace(
        RS.patient_history, max_entries=8))
    h = PatientHistory()
    for i in range(20):
        h, _ = patient_step(small, h, visit(at=i * HOUR_MS, sid=f"V{i:02d}"))
    assert [e.settlement_id for e in h.entries] == [f"V{i:02d}" for i in range(12, 20)]


def test_messages_never_name_the_patient():
    s = [stay(sid="A"), stay(sid="B", adm=6 * DAY_MS, dis=9 * DAY_MS, gender="M",
                             items=[exam("311201001"), exam("250101001", quantity=9)]),
         visit("H0002", at=9 * DAY_MS - 30 * MIN_MS, region="610399")]
    out = run(*s)  # run() asserts the patient id is absent from every message
    assert {"claim.gender_restricted", "claim.split_admission", "claim.excessive_exams"} <= set(
        rules_of(out[1]))
    assert {"claim.overlapping_stay", "claim.impossible_travel"} <= set(rules_of(out[2]))
    assert claims.decide(out[1]) == "block" and claims.decide(out[2]) == "warn"
