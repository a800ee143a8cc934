"""schemas/*.json: valid draft 2020-12, the SPEC examples validate, and the hand-written
validation (service.validation) agrees with settlement.schema.json where JSON Schema can state
the rule."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from service.validation import Rejection, duplicate, parse_settlement

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
NAMES = ("settlement", "alert", "decision", "dlq")


def load(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load(name), format_checker=Draft202012Validator.FORMAT_CHECKER)


SPEC_EXAMPLE = json.loads("""
{"settlement_id": "610302-20251118-000812", "settled_at": "2025-11-18T10:02:11+08:00",
 "region": "610302",
 "institution": {"id": "H0007", "kind": "hospital", "level": 2, "ownership": "private"},
 "department": {"id": "SURG1", "specialty": "surgery"}, "doctor_id": "D1042",
 "patient": {"id": "p-7f3a91c2", "gender": "F", "age": 61},
 "visit": {"kind": "outpatient", "diagnoses": ["K40.9", "I10"]},
 "items": [
  {"code": "110200003", "name": "门诊诊查费", "category": "service", "quantity": 1, "unit_price": 25.0, "amount": 25.0},
  {"code": "220201001", "name": "B超常规检查", "category": "exam", "quantity": 1, "unit_price": 90.0, "amount": 90.0},
  {"code": "XJ01DCC092A001", "name": "头孢克洛缓释片", "category": "drug", "quantity": 2,
   "unit_price": 29.5, "amount": 59.0, "days_supply": 6, "trace_codes": ["83912005163732421977", "83912005163732421978"]}],
 "total_amount": 174.0, "fund_amount": 104.4}
""")  # verbatim from SPEC §3

SPEC_ALERT = json.loads("""
{"alert_id": "stable hash of rule|entity kind|entity id|visit kind|period|level",
 "status": "firing", "level": "yellow", "rule": "peer.cost_per_visit", "rules_version": "3",
 "entity": {"kind": "doctor", "id": "D1042", "institution_id": "H007", "region": "610302"},
 "visit_kind": "outpatient", "period": "2025-11",
 "observed": 512.30, "peer_mean": 401.20, "ratio": 1.277, "threshold": 1.2,
 "n": 120, "peer_entities": 14, "consecutive_months": 1,
 "evidence": {"settlement_ids": ["…"], "p_value": 0.003},
 "event_time": "2025-11-18T10:02:11+08:00", "emitted_at": "2025-11-18T10:02:11.482+08:00"}
""")  # verbatim from SPEC §6

CLAIM_ALERT = {
    "alert_id": "9f1c0e", "status": "firing", "level": "red", "rule": "claim.trace_code_reuse",
    "rules_version": "3", "entity": {"kind": "patient", "id": "p-7f3a91c2", "region": "610302"},
    "visit_kind": "outpatient", "period": "2025-11-18",
    "evidence": {"settlement_ids": ["610302-20251118-000812"], "items": ["83912005163732421977"]},
    "event_time": "2025-11-18T10:02:11+08:00", "emitted_at": "2025-11-18T10:02:11.482+08:00",
}  # fmt: skip

FUND_ALERT = {
    "alert_id": "77aa", "status": "firing", "level": "red", "rule": "fund.disease_cost_swing",
    "rules_version": "3",
    "entity": {"kind": "diagnosis", "id": "K40", "institution_id": None, "region": "610302"},
    "visit_kind": "inpatient", "period": "2025-10", "observed": 12000.5, "ratio": 1.7,
    "threshold": 1.6, "n": 31, "evidence": {"baseline": 7050.0},
    "event_time": "2025-11-02T00:10:00+08:00", "emitted_at": "2025-11-02T00:10:00.010+08:00",
}  # fmt: skip

DECISION = {
    "settlement_id": "610302-20251118-000812", "decision": "block", "rules_version": "3",
    "hits": [
        {"rule": "claim.trace_code_reuse", "action": "block",
         "message": "trace code already settled in 610302-20251101-000077",
         "items": ["83912005163732421977"]},
        {"rule": "claim.over_quantity", "action": "warn", "message": "days_supply 40 > 30",
         "items": ["XJ01DCC092A001"]},
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = load(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema.get("description")


def test_spec_settlement_example_validates_both_ways() -> None:
    validator("settlement").validate(SPEC_EXAMPLE)
    result = parse_settlement(orjson.dumps(SPEC_EXAMPLE))
    assert isinstance(result, tuple), result


@pytest.mark.parametrize(
    "alert", [SPEC_ALERT, CLAIM_ALERT, FUND_ALERT], ids=["spec", "claim", "fund"]
)
def test_alert_examples_validate(alert: dict) -> None:
    validator("alert").validate(alert)


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "open"},
        {"level": "orange"},
        {"rule": "cost_per_visit"},
        {"alert_id": ""},
        {"emitted_at": "2025-11-18T10:02:11"},
        {"peer_mean": None},
        {"period": "2025-11-18"},
        {"entity": {"kind": "department", "id": "SURG1"}},
    ],
)
def test_alert_schema_rejects(changes: dict) -> None:
    assert not validator("alert").is_valid({**SPEC_ALERT, **changes})


def test_decision_examples() -> None:
    v = validator("decision")
    v.validate(DECISION)
    v.validate({"settlement_id": "s1", "decision": "pass", "rules_version": "3", "hits": []})
    v.validate({**DECISION, "decision": "warn", "hits": DECISION["hits"][1:]})
    assert not v.is_valid({**DECISION, "decision": "pass"})
    assert not v.is_valid({**DECISION, "decision": "warn"})
    assert not v.is_valid({**DECISION, "hits": DECISION["hits"][1:]})
    assert not v.is_valid({**DECISION, "decision": "maybe"})
    assert not v.is_valid({**DECISION, "hits": [{**DECISION["hits"][0], "action": "stop"}]})


DLQ_SAMPLES = [
    (b"\xff\xfe not utf-8", None),
    (b"{not json", {"topic": "settlements", "partition": 0, "offset": 17}),
    (b"[1, 2]", None),
    (orjson.dumps({**SPEC_EXAMPLE, "total_amount": 9.0}), None),
    (orjson.dumps({**SPEC_EXAMPLE, "patient": {"id": "p", "gender": "X", "age": -1}}), None),
    (b"\x00\xff" * 100_000, None),
    (("{" + "医" * 30_000).encode(), {"topic": "settlements", "partition": 5, "offset": 0}),
    (orjson.dumps({**SPEC_EXAMPLE, "items": [{"code": ""}] * 50}), None),
]


@pytest.mark.parametrize(("raw", "source"), DLQ_SAMPLES)
def test_dlq_records_validate(raw: bytes, source: dict | None) -> None:
    rejection = parse_settlement(raw)
    assert isinstance(rejection, Rejection)
    record = rejection.to_dlq(raw, source, rejected_at="2025-11-18T10:02:12.001+08:00")
    validator("dlq").validate(orjson.loads(orjson.dumps(record)))


def test_duplicate_dlq_record_validates() -> None:
    raw = orjson.dumps(SPEC_EXAMPLE)
    validator("dlq").validate(duplicate(SPEC_EXAMPLE["settlement_id"]).to_dlq(raw))


def test_dlq_schema_rejects_unknown_reason() -> None:
    record = duplicate("x").to_dlq(b"{}")
    assert not validator("dlq").is_valid({**record, "reason": "other"})
    assert not validator("dlq").is_valid({**record, "errors": []})


# --- agreement: events both the schema and parse_settlement reject (reason "schema") ------


def put(event: dict, path: str, value: object) -> dict:
    event = copy.deepcopy(event)
    *parents, last = path.split(".")
    target = event
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is DELETE:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return event


DELETE = object()
PHARMACY = {
    **SPEC_EXAMPLE,
    "institution": {"id": "P1", "kind": "pharmacy", "level": 0, "ownership": "private"},
    "department": None, "doctor_id": None, "visit": {"kind": "pharmacy"},
}  # fmt: skip
INPATIENT = {
    **SPEC_EXAMPLE,
    "visit": {"kind": "inpatient", "admitted_at": "2025-11-10T08:00:00+08:00",
              "discharged_at": "2025-11-18T09:00:00+08:00", "diagnoses": ["I63.9"],
              "drg": {"code": "BR23", "weight": 1.2}},
}  # fmt: skip

# Not listed (JSON Schema cannot state them, or only with an optional format checker):
# impossible calendar dates such as month 13, more than 2 decimals on money, discharged_at
# before admitted_at, and the cross-field `amounts` rules. test_validation.py covers them.
AGREE_BAD = [
    (SPEC_EXAMPLE, "settlement_id", DELETE), (SPEC_EXAMPLE, "settlement_id", ""),
    (SPEC_EXAMPLE, "settlement_id", "x" * 65), (SPEC_EXAMPLE, "settlement_id", 7),
    (SPEC_EXAMPLE, "settled_at", "2025-11-18T10:02:11"), (SPEC_EXAMPLE, "settled_at", "2025-11-18"),
    (SPEC_EXAMPLE, "region", ""),
    (SPEC_EXAMPLE, "region", DELETE), (SPEC_EXAMPLE, "institution", None),
    (SPEC_EXAMPLE, "institution.kind", "clinic"), (SPEC_EXAMPLE, "institution.level", 4),
    (SPEC_EXAMPLE, "institution.level", True), (SPEC_EXAMPLE, "institution.level", 1.5),
    (SPEC_EXAMPLE, "institution.ownership", "x"), (SPEC_EXAMPLE, "institution.id", DELETE),
    (SPEC_EXAMPLE, "department", None), (SPEC_EXAMPLE, "department", DELETE),
    (SPEC_EXAMPLE, "department.specialty", "dentistry"), (SPEC_EXAMPLE, "department.id", ""),
    (SPEC_EXAMPLE, "doctor_id", None), (SPEC_EXAMPLE, "doctor_id", DELETE),
    (SPEC_EXAMPLE, "doctor_id", ""), (SPEC_EXAMPLE, "patient.id", ""),
    (SPEC_EXAMPLE, "patient.gender", "U"), (SPEC_EXAMPLE, "patient.age", 131),
    (SPEC_EXAMPLE, "patient.age", -1), (SPEC_EXAMPLE, "patient.age", "61"),
    (SPEC_EXAMPLE, "visit.kind", "er"), (SPEC_EXAMPLE, "visit.diagnoses", []),
    (SPEC_EXAMPLE, "visit.diagnoses", DELETE), (SPEC_EXAMPLE, "visit.diagnoses", [""]),
    (SPEC_EXAMPLE, "visit.diagnoses", None), (PHARMACY, "visit.diagnoses", [""]),
    (INPATIENT, "visit.admitted_at", DELETE), (INPATIENT, "visit.discharged_at", None),
    (INPATIENT, "visit.admitted_at", "2025-11-10 08:00:00"), (INPATIENT, "visit.drg.weight", 0),
    (INPATIENT, "visit.drg.code", DELETE), (INPATIENT, "visit.drg", "BR23"),
    (SPEC_EXAMPLE, "items", []), (SPEC_EXAMPLE, "items", {}), (SPEC_EXAMPLE, "items.0", 25),
    (SPEC_EXAMPLE, "items.0.code", ""), (SPEC_EXAMPLE, "items.0.category", "lab"),
    (SPEC_EXAMPLE, "items.2.quantity", 0), (SPEC_EXAMPLE, "items.2.quantity", 2e6),
    (SPEC_EXAMPLE, "items.2.unit_price", -1), (SPEC_EXAMPLE, "items.2.amount", -0.5),
    (SPEC_EXAMPLE, "items.2.amount", True), (SPEC_EXAMPLE, "items.2.amount", DELETE),
    (SPEC_EXAMPLE, "items.2.days_supply", -1), (SPEC_EXAMPLE, "items.2.days_supply", 2.5),
    (SPEC_EXAMPLE, "items.2.trace_codes", [""]), (SPEC_EXAMPLE, "items.2.trace_codes", "x"),
    (SPEC_EXAMPLE, "items.0.name", 5), (SPEC_EXAMPLE, "total_amount", -1),
    (SPEC_EXAMPLE, "total_amount", 2e9), (SPEC_EXAMPLE, "total_amount", "174"),
    (SPEC_EXAMPLE, "fund_amount", DELETE), (SPEC_EXAMPLE, "fund_amount", -0.01),
    (PHARMACY, "department", "none"), (PHARMACY, "doctor_id", 5),
]  # fmt: skip

AGREE_GOOD = [
    (SPEC_EXAMPLE, "extra_field", {"anything": [1, 2]}), (PHARMACY, "department", DELETE),
    (PHARMACY, "doctor_id", DELETE), (PHARMACY, "visit.diagnoses", []),
    (INPATIENT, "visit.drg", None), (SPEC_EXAMPLE, "settled_at", "2025-11-18T02:02:11Z"),
    (SPEC_EXAMPLE, "patient.age", 61.0), (SPEC_EXAMPLE, "items.2.days_supply", None),
    (SPEC_EXAMPLE, "visit.admitted_at", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("base", "path", "value"), AGREE_BAD, ids=[f"{p}={v!r}"[:40] for _, p, v in AGREE_BAD]
)
def test_schema_and_parser_both_reject(base: dict, path: str, value: object) -> None:
    event = put(base, path, value)
    assert not validator("settlement").is_valid(event)
    result = parse_settlement(orjson.dumps(event))
    assert isinstance(result, Rejection) and result.reason == "schema", result


@pytest.mark.parametrize(
    ("base", "path", "value"), AGREE_GOOD, ids=[f"{p}={v!r}"[:40] for _, p, v in AGREE_GOOD]
)
def test_schema_and_parser_both_accept(base: dict, path: str, value: object) -> None:
    event = put(base, path, value)
    validator("settlement").validate(event)
    assert isinstance(parse_settlement(orjson.dumps(event)), tuple)


@pytest.mark.parametrize(
    "changes", [{"total_amount": 174.02}, {"fund_amount": 174.01}], ids=["sum", "fund_over_total"]
)
def test_amounts_rules_are_beyond_the_schema(changes: dict) -> None:
    """Cross-field money rules are the service's (reason `amounts`); the schema documents them."""
    event = {**SPEC_EXAMPLE, **changes}
    validator("settlement").validate(event)
    result = parse_settlement(orjson.dumps(event))
    assert isinstance(result, Rejection) and result.reason == "amounts"
