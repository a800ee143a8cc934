"""detectors.claims item rules and decide (SPEC §7, §11): one settlement, no history."""

import pytest

from detectors import claims
from detectors.claims import Hit, decide
from factories import DAY_MS, HOUR_MS, T0_MS, bed, drug, exam, make_settlement, service
from service.rules_io import default_ruleset_from_data

RS = default_ruleset_from_data()
CAT = RS.catalogue
C = RS.claims

PSA, GYN = "250601001", "311201001"          # male-only, female-only
LEVO, GH, MPH, NEWBORN = "XJ01MAL012A001", "XH01ACS077B002", "XN06BAM105A001", "220600001"


@pytest.mark.parametrize(
    "gender, codes, expected",
    [
        ("F", [PSA], (PSA,)),                 # PSA for a woman
        ("M", [PSA], None),
        ("M", [GYN], (GYN,)),                 # gynaecological exam for a man
        ("F", [GYN], None),
        ("M", ["220201001"], None),           # unrestricted item
        ("M", [GYN, GYN, PSA], (GYN,)),       # one item listed once
    ],
)
def test_gender_restricted(gender, codes, expected):
    s = make_settlement(gender=gender, items=[exam(c) for c in codes])
    hit = claims.gender_restricted(C.gender_restricted, CAT, s)
    assert (hit.items if hit else None) == expected
    if hit:
        assert hit.rule == "claim.gender_restricted" and hit.action == "block"


@pytest.mark.parametrize(
    "age, code, hits",
    [
        (17, LEVO, True), (18, LEVO, False), (70, LEVO, False),   # min_age 18
        (18, GH, False), (19, GH, True),                          # max_age 18
        (5, MPH, True), (6, MPH, False), (17, MPH, False), (18, MPH, True),  # 6-17
        (1, NEWBORN, False), (2, NEWBORN, True),                  # max_age 1
        (0, "220201001", False),                                  # not in the catalogue
    ],
)
def test_age_restricted(age, code, hits):
    s = make_settlement(age=age, items=[drug(code)])
    hit = claims.age_restricted(C.age_restricted, CAT, s)
    assert (hit is not None) == hits
    if hit:
        assert hit.items == (code,) and f"aged {age}" in hit.message


@pytest.mark.parametrize(
    "kind, diagnoses, days, hits",
    [
        ("outpatient", ["J06.9"], 7, False),
        ("outpatient", ["J06.9"], 8, True),
        ("outpatient", ["I10"], 30, False),              # chronic list: 30 days
        ("outpatient", ["I10"], 31, True),
        ("outpatient", ["J06.9", "e11.900"], 30, False),  # any diagnosis, any case
        ("outpatient", ["J06.9"], None, False),          # no days_supply: nothing to check
        ("pharmacy", [], 7, False),                      # pharmacy without diagnoses: 7
        ("pharmacy", [], 8, True),
        ("pharmacy", [], 30, True),
        ("pharmacy", ["E11.9"], 30, False),
        ("pharmacy", ["E11.9"], 31, True),
        ("inpatient", ["J18.9"], 60, False),             # inpatient drug lines exempt
    ],
)
def test_over_quantity(kind, diagnoses, days, hits):
    s = make_settlement(kind=kind, diagnoses=diagnoses,
                        items=[service(), drug("XA10BAA002A001", days_supply=days)])
    hit = claims.over_quantity(C.over_quantity, CAT, s)
    assert (hit is not None) == hits
    if hit:
        assert hit.items == ("XA10BAA002A001",) and hit.action == "warn"


@pytest.mark.parametrize(
    "kind, lines, expected",
    [
        ("inpatient", [("250101001", 3)], None),                    # exactly 3 passes
        ("inpatient", [("250101001", 4)], ("250101001",)),
        ("inpatient", [("250101001", 2), ("250101001", 2)], ("250101001",)),  # summed
        ("inpatient", [("250101001", 3), ("220201001", 3)], None),  # per code
        ("inpatient", [("250101001", 2.5), ("250101001", 1)], ("250101001",)),
        ("outpatient", [("250101001", 5)], None),                   # stays only
    ],
)
def test_excessive_exams(kind, lines, expected):
    s = make_settlement(kind=kind, items=[exam(code, quantity=q) for code, q in lines])
    hit = claims.excessive_exams(C.excessive_exams, s)
    assert (hit.items if hit else None) == expected


@pytest.mark.parametrize(
    "stay_hours, bed_service_fen, other_fen, hits",
    [
        (72, 8100, 1900, True),     # 72 h, 81 % bed + service
        (60, 9000, 1000, False),    # too short
        (71.99, 9000, 1000, False),
        (72, 8000, 2000, False),    # exactly 80 % is not over
        (72, 8001, 1999, True),
        (240, 5000, 5000, False),
        (72, 100, 0, True),         # nothing but bed
    ],
)
def test_ghost_bed(stay_hours, bed_service_fen, other_fen, hits):
    items = [bed(unit_price_fen=bed_service_fen // 2),
             service(unit_price_fen=bed_service_fen - bed_service_fen // 2)]
    if other_fen:
        items.append(drug(quantity=1, unit_price_fen=other_fen, days_supply=None))
    s = make_settlement(kind="inpatient", stay_hours=stay_hours, items=items)
    hit = claims.ghost_bed(C.ghost_bed, s)
    assert (hit is not None) == hits
    if hit:
        assert hit.items == ("111000001", "110200003")


def test_ghost_bed_ignores_outpatient_and_zero_totals():
    assert claims.ghost_bed(C.ghost_bed, make_settlement(items=[bed()])) is None
    s = make_settlement(kind="inpatient", stay_hours=100, items=[bed(unit_price_fen=0)])
    assert claims.ghost_bed(C.ghost_bed, s) is None


@pytest.mark.parametrize(
    "actions, expected",
    [([], "pass"), (["warn"], "warn"), (["warn", "warn"], "warn"),
     (["warn", "block"], "block"), (["block", "warn"], "block")],
)
def test_decide(actions, expected):
    assert decide([Hit("claim.x", a, "m", ()) for a in actions]) == expected


def test_hit_round_trip_and_shape():
    h = Hit("claim.split_admission", "warn", "m", (), ("S1",))
    assert h.to_dict() == {"rule": "claim.split_admission", "action": "warn", "message": "m",
                           "items": [], "related": ["S1"]}
    assert Hit.from_dict(h.to_dict()) == h
    assert "related" not in Hit("r", "warn", "m", ("A",)).to_dict()


def test_factory_defaults_are_consistent():
    s = make_settlement(kind="inpatient")
    assert s.visit.discharged_at_ms == s.settled_at_ms == T0_MS
    assert s.visit.admitted_at_ms == T0_MS - 120 * HOUR_MS
    assert s.total_fen == sum(i.amount_fen for i in s.items)
    assert s.settled_at_ms + DAY_MS == make_settlement(at=T0_MS + DAY_MS).settled_at_ms
