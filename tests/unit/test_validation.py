"""service.validation: raw bytes -> Settlement or Rejection (SPEC §3, §9, §11). One row per case."""

from __future__ import annotations

import base64
import copy
import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from detectors.domain import Settlement
from service.validation import (
    MAX_RAW_BYTES,
    Rejection,
    duplicate,
    parse_settlement,
    settlement_from_dict,
)

SECRET_PATIENT = "p-7f3a91c2"

SPEC_EXAMPLE = {
    "settlement_id": "610302-20251118-000812",
    "settled_at": "2025-11-18T10:02:11+08:00",
    "region": "610302",
    "institution": {"id": "H0007", "kind": "hospital", "level": 2, "ownership": "private"},
    "department": {"id": "SURG1", "specialty": "surgery"},
    "doctor_id": "D1042",
    "patient": {"id": SECRET_PATIENT, "gender": "F", "age": 61},
    "visit": {"kind": "outpatient", "diagnoses": ["K40.9", "I10"]},
    "items": [
        {"code": "110200003", "name": "门诊诊查费", "category": "service", "quantity": 1,
         "unit_price": 25.0, "amount": 25.0},
        {"code": "220201001", "name": "B超常规检查", "category": "exam", "quantity": 1,
         "unit_price": 90.0, "amount": 90.0},
        {"code": "XJ01DCC092A001", "name": "头孢克洛缓释片", "category": "drug", "quantity": 2,
         "unit_price": 29.5, "amount": 59.0, "days_supply": 6,
         "trace_codes": ["83912005163732421977", "83912005163732421978"]},
    ],
    "total_amount": 174.0,
    "fund_amount": 104.4,
}  # fmt: skip

INPATIENT = {
    **SPEC_EXAMPLE,
    "settlement_id": "610302-20251120-000001",
    "visit": {
        "kind": "inpatient",
        "admitted_at": "2025-11-10T08:00:00+08:00",
        "discharged_at": "2025-11-20T09:30:00+08:00",
        "diagnoses": ["I63.9"],
        "drg": {"code": "BR23", "weight": 1.37},
    },
}

PHARMACY = {
    **SPEC_EXAMPLE,
    "settlement_id": "610302-20251118-P00001",
    "institution": {"id": "P0001", "kind": "pharmacy", "level": 0, "ownership": "private"},
    "department": None,
    "doctor_id": None,
    "visit": {"kind": "pharmacy"},
}

DELETE = object()


def mutate(base: dict, changes: dict) -> dict:
    """A deep copy of ``base`` with ``{"a.b[2].c": value}`` applied (``DELETE`` removes)."""
    event = copy.deepcopy(base)
    for path, value in changes.items():
        target: object = event
        parts = path.replace("[", ".").replace("]", "").split(".")
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        last = parts[-1]
        key = int(last) if isinstance(target, list) else last
        if value is DELETE:
            del target[key]
        else:
            target[key] = value
    return event


def check(event: object) -> tuple[Settlement, dict] | Rejection:
    return parse_settlement(orjson.dumps(event))


# (id, base, changes, expected reason or None for valid, substring of one error)
CASES = [
    # valid
    ("spec_example", SPEC_EXAMPLE, {}, None, None),
    ("inpatient_with_drg", INPATIENT, {}, None, None),
    ("pharmacy_null_department_and_doctor", PHARMACY, {}, None, None),
    ("pharmacy_without_department_doctor_keys", PHARMACY,
     {"department": DELETE, "doctor_id": DELETE}, None, None),
    ("pharmacy_empty_diagnoses", PHARMACY, {"visit.diagnoses": []}, None, None),
    ("pharmacy_with_department", PHARMACY,
     {"department": {"id": "D", "specialty": "other"}}, None, None),
    ("settled_at_z", SPEC_EXAMPLE, {"settled_at": "2025-11-18T02:02:11Z"}, None, None),
    ("settled_at_fraction", SPEC_EXAMPLE, {"settled_at": "2025-11-18T10:02:11.482+08:00"}, None,
     None),
    ("settled_at_lowercase_t_z", SPEC_EXAMPLE, {"settled_at": "2025-11-18t02:02:11z"}, None, None),
    ("settlement_id_64_chars", SPEC_EXAMPLE, {"settlement_id": "x" * 64}, None, None),
    ("level_0_unrated", SPEC_EXAMPLE, {"institution.level": 0}, None, None),
    ("age_0_and_integral_float", SPEC_EXAMPLE, {"patient.age": 0.0}, None, None),
    ("age_130", SPEC_EXAMPLE, {"patient.age": 130}, None, None),
    ("total_exactly_0.01_above", SPEC_EXAMPLE, {"total_amount": 174.01}, None, None),
    ("total_exactly_0.01_below", SPEC_EXAMPLE, {"total_amount": 173.99}, None, None),
    ("fund_equals_total", SPEC_EXAMPLE, {"fund_amount": 174.0}, None, None),
    ("fund_zero", SPEC_EXAMPLE, {"fund_amount": 0}, None, None),
    ("optional_nulls", SPEC_EXAMPLE,
     {"items[0].name": None, "items[2].days_supply": None, "items[2].trace_codes": None}, None,
     None),
    ("optional_item_fields_absent", SPEC_EXAMPLE,
     {"items[2].name": DELETE, "items[2].days_supply": DELETE, "items[2].trace_codes": DELETE},
     None, None),
    ("zero_price_item", SPEC_EXAMPLE,
     {"items[0].unit_price": 0, "items[0].amount": 0, "total_amount": 149.0}, None, None),
    ("fractional_quantity", SPEC_EXAMPLE, {"items[2].quantity": 0.5}, None, None),
    ("inpatient_same_instant", INPATIENT,
     {"visit.discharged_at": "2025-11-10T00:00:00Z"}, None, None),
    # not_json is covered by RAW_CASES; reason "schema", one row per field rule
    ("settlement_id_missing", SPEC_EXAMPLE, {"settlement_id": DELETE}, "schema",
     "settlement_id: required"),
    ("settlement_id_empty", SPEC_EXAMPLE, {"settlement_id": ""}, "schema",
     "settlement_id: must not be empty"),
    ("settlement_id_65_chars", SPEC_EXAMPLE, {"settlement_id": "x" * 65}, "schema",
     "settlement_id: must be at most 64 characters"),
    ("settlement_id_number", SPEC_EXAMPLE, {"settlement_id": 812}, "schema",
     "settlement_id: must be a string, got number"),
    ("settled_at_naive", SPEC_EXAMPLE, {"settled_at": "2025-11-18T10:02:11"}, "schema",
     "settled_at: must be an RFC 3339 date-time with offset"),
    ("settled_at_date_only", SPEC_EXAMPLE, {"settled_at": "2025-11-18"}, "schema", "settled_at:"),
    ("settled_at_space", SPEC_EXAMPLE, {"settled_at": "2025-11-18 10:02:11+08:00"}, "schema",
     "settled_at:"),
    ("settled_at_month_13", SPEC_EXAMPLE, {"settled_at": "2025-13-18T10:02:11+08:00"}, "schema",
     "settled_at: not a valid date-time"),
    ("settled_at_epoch_number", SPEC_EXAMPLE, {"settled_at": 1763431331}, "schema",
     "settled_at: must be an RFC 3339 date-time string, got number"),
    ("region_empty", SPEC_EXAMPLE, {"region": ""}, "schema", "region: must not be empty"),
    ("region_number", SPEC_EXAMPLE, {"region": 610302}, "schema", "region: must be a string"),
    ("institution_not_object", SPEC_EXAMPLE, {"institution": "H0007"}, "schema",
     "institution: must be an object, got string"),
    ("institution_id_missing", SPEC_EXAMPLE, {"institution.id": DELETE}, "schema",
     "institution.id: required"),
    ("institution_kind_unknown", SPEC_EXAMPLE, {"institution.kind": "clinic"}, "schema",
     "institution.kind: must be one of hospital, primary, pharmacy, got 'clinic'"),
    ("institution_level_4", SPEC_EXAMPLE, {"institution.level": 4}, "schema",
     "institution.level: must be between 0 and 3"),
    ("institution_level_negative", SPEC_EXAMPLE, {"institution.level": -1}, "schema",
     "institution.level: must be between 0 and 3"),
    ("institution_level_bool", SPEC_EXAMPLE, {"institution.level": True}, "schema",
     "institution.level: must be an integer, got boolean"),
    ("institution_level_fraction", SPEC_EXAMPLE, {"institution.level": 1.5}, "schema",
     "institution.level: must be an integer"),
    ("institution_ownership", SPEC_EXAMPLE, {"institution.ownership": "mixed"}, "schema",
     "institution.ownership: must be one of public, private"),
    ("hospital_null_department", SPEC_EXAMPLE, {"department": None}, "schema",
     "department: must be an object (null only for pharmacies)"),
    ("hospital_missing_department", SPEC_EXAMPLE, {"department": DELETE}, "schema",
     "department: required (null only for pharmacies)"),
    ("primary_null_department", SPEC_EXAMPLE,
     {"institution.kind": "primary", "department": None}, "schema", "department:"),
    ("department_specialty_unknown", SPEC_EXAMPLE, {"department.specialty": "dentistry"},
     "schema", "department.specialty: must be one of internal, surgery"),
    ("department_id_empty", SPEC_EXAMPLE, {"department.id": ""}, "schema", "department.id:"),
    ("hospital_null_doctor", SPEC_EXAMPLE, {"doctor_id": None}, "schema",
     "doctor_id: must be a string (null only for pharmacies)"),
    ("doctor_empty", SPEC_EXAMPLE, {"doctor_id": ""}, "schema", "doctor_id: must not be empty"),
    ("patient_missing", SPEC_EXAMPLE, {"patient": DELETE}, "schema", "patient: required"),
    ("patient_id_empty", SPEC_EXAMPLE, {"patient.id": ""}, "schema", "patient.id: must not be"),
    ("patient_gender", SPEC_EXAMPLE, {"patient.gender": "X"}, "schema",
     "patient.gender: must be one of M, F"),
    ("patient_age_131", SPEC_EXAMPLE, {"patient.age": 131}, "schema",
     "patient.age: must be between 0 and 130"),
    ("patient_age_negative", SPEC_EXAMPLE, {"patient.age": -1}, "schema", "patient.age:"),
    ("patient_age_string", SPEC_EXAMPLE, {"patient.age": "61"}, "schema",
     "patient.age: must be an integer, got string"),
    ("visit_kind_unknown", SPEC_EXAMPLE, {"visit.kind": "emergency"}, "schema", "visit.kind:"),
    ("visit_not_object", SPEC_EXAMPLE, {"visit": []}, "schema", "visit: must be an object"),
    ("inpatient_missing_admitted", INPATIENT, {"visit.admitted_at": DELETE}, "schema",
     "visit.admitted_at: required for inpatient visits"),
    ("inpatient_null_discharged", INPATIENT, {"visit.discharged_at": None}, "schema",
     "visit.discharged_at: required for inpatient visits"),
    ("inpatient_naive_admitted", INPATIENT, {"visit.admitted_at": "2025-11-10T08:00:00"},
     "schema", "visit.admitted_at: must be an RFC 3339 date-time with offset"),
    ("discharged_before_admitted", INPATIENT, {"visit.discharged_at": "2025-11-09T08:00:00Z"},
     "schema", "visit.discharged_at: must not be before visit.admitted_at"),
    ("outpatient_no_diagnoses", SPEC_EXAMPLE, {"visit.diagnoses": []}, "schema",
     "visit.diagnoses: must have at least 1 entry"),
    ("outpatient_missing_diagnoses", SPEC_EXAMPLE, {"visit.diagnoses": DELETE}, "schema",
     "visit.diagnoses: required"),
    ("diagnosis_empty_string", SPEC_EXAMPLE, {"visit.diagnoses": ["K40.9", ""]}, "schema",
     "visit.diagnoses[1]: must not be empty"),
    ("diagnoses_string", SPEC_EXAMPLE, {"visit.diagnoses": "K40.9"}, "schema",
     "visit.diagnoses: must be an array of strings, got string"),
    ("drg_weight_zero", INPATIENT, {"visit.drg.weight": 0}, "schema",
     "visit.drg.weight: must be > 0"),
    ("drg_code_missing", INPATIENT, {"visit.drg.code": DELETE}, "schema",
     "visit.drg.code: required"),
    ("drg_not_object", INPATIENT, {"visit.drg": "BR23"}, "schema", "visit.drg: must be an object"),
    ("items_empty", SPEC_EXAMPLE, {"items": []}, "schema", "items: must have at least 1 item"),
    ("items_not_array", SPEC_EXAMPLE, {"items": {}}, "schema",
     "items: must be an array, got object"),
    ("item_not_object", SPEC_EXAMPLE, {"items[1]": 90.0}, "schema", "items[1]: must be an object"),
    ("item_code_empty", SPEC_EXAMPLE, {"items[0].code": ""}, "schema",
     "items[0].code: must not be"),
    ("item_category_unknown", SPEC_EXAMPLE, {"items[1].category": "lab"}, "schema",
     "items[1].category: must be one of drug, consumable, exam, treatment, bed, service"),
    ("item_quantity_zero", SPEC_EXAMPLE, {"items[2].quantity": 0}, "schema",
     "items[2].quantity: must be > 0"),
    ("item_quantity_negative", SPEC_EXAMPLE, {"items[2].quantity": -2}, "schema",
     "items[2].quantity: must be > 0"),
    ("item_quantity_absurd", SPEC_EXAMPLE, {"items[2].quantity": 1e7}, "schema",
     "items[2].quantity: must be > 0 and <= 1000000"),
    ("item_quantity_missing", SPEC_EXAMPLE, {"items[2].quantity": DELETE}, "schema",
     "items[2].quantity: required"),
    ("item_unit_price_negative", SPEC_EXAMPLE, {"items[2].unit_price": -29.5}, "schema",
     "items[2].unit_price: must be >= 0"),
    ("item_amount_negative", SPEC_EXAMPLE, {"items[2].amount": -1}, "schema",
     "items[2].amount: must be >= 0"),
    ("item_amount_3_decimals", SPEC_EXAMPLE, {"items[2].amount": 59.005}, "schema",
     "items[2].amount: must have at most 2 decimals, got 59.005"),
    ("item_amount_bool", SPEC_EXAMPLE, {"items[2].amount": True}, "schema",
     "items[2].amount: must be a number, got boolean"),
    ("item_amount_string", SPEC_EXAMPLE, {"items[2].amount": "59.00"}, "schema",
     "items[2].amount: must be a number, got string"),
    ("item_days_supply_negative", SPEC_EXAMPLE, {"items[2].days_supply": -1}, "schema",
     "items[2].days_supply: must be between 0 and 3650"),
    ("item_days_supply_fraction", SPEC_EXAMPLE, {"items[2].days_supply": 1.5}, "schema",
     "items[2].days_supply: must be an integer"),
    ("item_trace_code_empty", SPEC_EXAMPLE, {"items[2].trace_codes": ["8391", ""]}, "schema",
     "items[2].trace_codes[1]: must not be empty"),
    ("item_trace_codes_string", SPEC_EXAMPLE, {"items[2].trace_codes": "8391"}, "schema",
     "items[2].trace_codes: must be an array of strings"),
    ("item_name_number", SPEC_EXAMPLE, {"items[0].name": 5}, "schema",
     "items[0].name: must be a string, got number"),
    ("total_negative", SPEC_EXAMPLE, {"total_amount": -174.0}, "schema",
     "total_amount: must be >= 0"),
    ("total_absurd", SPEC_EXAMPLE, {"total_amount": 2e9}, "schema",
     "total_amount: must be <= 1000000000"),
    ("fund_negative", SPEC_EXAMPLE, {"fund_amount": -0.01}, "schema", "fund_amount: must be >= 0"),
    ("fund_missing", SPEC_EXAMPLE, {"fund_amount": DELETE}, "schema", "fund_amount: required"),
    ("fund_3_decimals", SPEC_EXAMPLE, {"fund_amount": 0.001}, "schema",
     "fund_amount: must have at most 2 decimals"),
    ("schema_wins_over_amounts", SPEC_EXAMPLE, {"total_amount": 999.0, "patient.age": 200},
     "schema", "patient.age:"),
    # reason "amounts": cross-field money rules, in integer fen
    ("total_0.02_above_items", SPEC_EXAMPLE, {"total_amount": 174.02}, "amounts",
     "total_amount: 174.02 differs from the sum of items[].amount 174.00 by 0.02"),
    ("total_0.02_below_items", SPEC_EXAMPLE, {"total_amount": 173.98}, "amounts",
     "total_amount: 173.98 differs"),
    ("fund_above_total", SPEC_EXAMPLE, {"fund_amount": 174.01}, "amounts",
     "fund_amount: 174.01 exceeds total_amount 174.00"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("base", "changes", "reason", "message"),
    [pytest.param(*row[1:], id=row[0]) for row in CASES],
)
def test_field_rules(base: dict, changes: dict, reason: str | None, message: str | None) -> None:
    result = check(mutate(base, changes))
    if reason is None:
        assert isinstance(result, tuple), result
        assert isinstance(result[0], Settlement)
    else:
        assert isinstance(result, Rejection), result
        assert result.reason == reason
        assert any(message in e for e in result.errors), result.errors
        assert all(SECRET_PATIENT not in e for e in result.errors)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (174.0, True), (59.0, True), (29.5, True), (104.4, True), (0.07, True), (0.1, True),
        (0.3, True), (0.1 + 0.2, True), (19.99, True), (1234567.89, True), (999999999.99, True),
        (0, True), (1000000000, True),
        (1.005, False), (0.001, False), (0.125, False), (12.345, False), (999999999.995, False),
        (1234567.891, False),
    ],
)  # fmt: skip
def test_money_at_most_two_decimals(value: float, ok: bool) -> None:
    event = mutate(
        SPEC_EXAMPLE,
        {"items": [{"code": "X", "category": "drug", "quantity": 1, "unit_price": value,
                    "amount": value}], "total_amount": value, "fund_amount": 0},
    )  # fmt: skip
    result = check(event)
    if ok:
        assert isinstance(result, tuple), result
        assert result[0].total_fen == round(value * 100)
    else:
        assert isinstance(result, Rejection) and result.reason == "schema"
        assert "items[0].unit_price: must have at most 2 decimals" in result.errors[0]


RAW_CASES = [
    ("invalid_utf8", b'{"settlement_id": "\xff\xfe"}', "not_json", "not valid UTF-8"),
    ("truncated", orjson.dumps(SPEC_EXAMPLE)[:-5], "not_json", "not valid JSON"),
    ("nan", b'{"total_amount": NaN}', "not_json", "not valid JSON"),
    ("infinity_literal", b'{"total_amount": Infinity}', "not_json", "not valid JSON"),
    ("empty", b"", "not_json", "not valid JSON"),
    ("whitespace", b"  \n", "not_json", "not valid JSON"),
    ("trailing_garbage", orjson.dumps(SPEC_EXAMPLE) + b"}", "not_json", "not valid JSON"),
    ("single_quotes", b"{'a': 1}", "not_json", "not valid JSON"),
    ("top_level_array", b"[1, 2]", "schema", "$: must be a JSON object, got array"),
    ("top_level_string", b'"settlement"', "schema", "$: must be a JSON object, got string"),
    ("top_level_number", b"42", "schema", "$: must be a JSON object, got number"),
    ("top_level_null", b"null", "schema", "$: must be a JSON object, got null"),
    ("deep_nesting", b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "schema", "nesting deeper"),
    ("number_overflows_double", b'{"total_amount": 1e400}', "schema", "number out of range"),
    ("huge_int_amount", orjson.dumps(SPEC_EXAMPLE).replace(b'"total_amount":174.0',
     b'"total_amount":' + b"9" * 400), "schema", "number out of range"),
    ("int_beyond_64_bits", orjson.dumps(SPEC_EXAMPLE).replace(b'"total_amount":174.0',
     b'"total_amount":' + str(2**70).encode()), "schema", "total_amount: must be <= 1000000000"),
    ("huge_int_age", orjson.dumps(SPEC_EXAMPLE).replace(b'"age":61',
     b'"age":' + str(2**70).encode()),
     "schema", "patient.age: must be between 0 and 130"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "reason", "message"), [pytest.param(*r[1:], id=r[0]) for r in RAW_CASES]
)
def test_raw_inputs(raw: bytes, reason: str, message: str) -> None:
    result = parse_settlement(raw)
    assert isinstance(result, Rejection), result
    assert result.reason == reason
    assert any(message in e for e in result.errors), result.errors


def test_none_value_is_not_json() -> None:
    """A Kafka tombstone (null value) is an input like any other."""
    result = parse_settlement(None)  # type: ignore[arg-type]
    assert isinstance(result, Rejection) and result.reason == "not_json"


def test_str_input_is_accepted() -> None:
    result = parse_settlement(orjson.dumps(SPEC_EXAMPLE).decode())
    assert isinstance(result, tuple)


def test_conversion_to_domain() -> None:
    settlement, decoded = parse_settlement(orjson.dumps(INPATIENT))  # type: ignore[misc]
    assert settlement.settlement_id == "610302-20251120-000001"
    assert settlement.settled_at == datetime(2025, 11, 18, 2, 2, 11, tzinfo=UTC)
    assert settlement.settled_at.utcoffset() == timedelta(hours=8)
    assert settlement.settled_at_ms == 1763431331000
    assert (settlement.total_fen, settlement.fund_fen, settlement.drug_fen) == (17400, 10440, 5900)
    item = settlement.items[2]
    assert (item.unit_price_fen, item.amount_fen, item.quantity, item.days_supply) == (
        2950, 5900, 2.0, 6)  # fmt: skip
    assert item.trace_codes == ("83912005163732421977", "83912005163732421978")
    assert settlement.items[0].trace_codes == () and settlement.items[0].days_supply is None
    visit = settlement.visit
    assert visit.diagnoses == ("I63.9",)
    assert visit.admitted_at_ms == 1762732800000
    assert visit.discharged_at_ms == 1763602200000
    assert (visit.drg_code, visit.drg_weight) == ("BR23", 1.37)
    assert settlement.department is not None and settlement.department.specialty == "surgery"
    assert settlement.patient.age == 61 and isinstance(settlement.patient.age, int)
    assert decoded == INPATIENT


def test_pharmacy_domain_values() -> None:
    settlement, _ = parse_settlement(orjson.dumps(PHARMACY))  # type: ignore[misc]
    assert settlement.department is None and settlement.doctor_id is None
    assert settlement.visit.diagnoses == ()


def test_unknown_extra_fields_are_kept() -> None:
    event = mutate(SPEC_EXAMPLE, {"insurance_type": "城镇职工", "items[0].nhsa_class": "甲",
                                  "patient.card": {"kind": "ecard"}})  # fmt: skip
    settlement, decoded = parse_settlement(orjson.dumps(event))  # type: ignore[misc]
    assert decoded["insurance_type"] == "城镇职工"
    assert decoded["items"][0]["nhsa_class"] == "甲"
    assert decoded["patient"]["card"] == {"kind": "ecard"}
    assert settlement.settlement_id == SPEC_EXAMPLE["settlement_id"]


def test_all_errors_are_collected() -> None:
    event = mutate(SPEC_EXAMPLE, {"region": "", "patient.age": 200, "items[1].amount": -1,
                                  "items[2].category": "x", "fund_amount": "1"})  # fmt: skip
    result = check(event)
    assert isinstance(result, Rejection)
    assert [e.split(":")[0] for e in result.errors] == [
        "region", "patient.age", "items[1].amount", "items[2].category", "fund_amount"]  # fmt: skip
    assert result.settlement_id == SPEC_EXAMPLE["settlement_id"]


def test_errors_are_bounded() -> None:
    bad_item = {"code": "", "category": "x", "quantity": 0, "unit_price": -1, "amount": -1}
    result = check(mutate(SPEC_EXAMPLE, {"items": [bad_item] * 10_000}))
    assert isinstance(result, Rejection) and result.reason == "schema"
    assert len(result.errors) == 20
    assert result.errors[-1] == "(further errors not shown)"


@pytest.mark.parametrize(
    "changes",
    [
        {"patient.id": 12345678},
        {"patient.id": SECRET_PATIENT * 40},
        {"patient.id": [SECRET_PATIENT]},
        {"patient": SECRET_PATIENT},
        {"patient.gender": SECRET_PATIENT},
        {"patient.age": SECRET_PATIENT},
        {"patient.age": 12345678},
    ],
)
def test_messages_never_contain_the_patient_id(changes: dict) -> None:
    result = check(mutate(SPEC_EXAMPLE, changes))
    assert isinstance(result, Rejection) and result.reason == "schema"
    for error in result.errors:
        assert SECRET_PATIENT not in error and "12345678" not in error
        assert error.startswith("patient")


def test_settlement_id_is_reported_only_when_valid() -> None:
    assert (
        check(mutate(SPEC_EXAMPLE, {"patient.age": -1})).settlement_id
        == SPEC_EXAMPLE[  # type: ignore[union-attr]
            "settlement_id"
        ]
    )
    assert check(mutate(SPEC_EXAMPLE, {"settlement_id": "x" * 65})).settlement_id is None  # type: ignore[union-attr]
    assert (
        check(mutate(SPEC_EXAMPLE, {"total_amount": 9.0})).settlement_id
        == SPEC_EXAMPLE[  # type: ignore[union-attr]
            "settlement_id"
        ]
    )


def test_duplicate() -> None:
    rejection = duplicate("610302-20251118-000812")
    assert rejection.reason == "duplicate"
    assert rejection.settlement_id == "610302-20251118-000812"
    assert len(rejection.errors) == 1 and "610302-20251118-000812" in rejection.errors[0]


def test_rejection_is_immutable() -> None:
    rejection = duplicate("a")
    with pytest.raises(AttributeError):
        rejection.reason = "schema"  # type: ignore[misc]


class _Weird:
    pass


@pytest.mark.parametrize(
    "obj",
    [
        None, 1, "x", [], {1: 2}, {"settlement_id": {"a": 1}},
        mutate(SPEC_EXAMPLE, {"total_amount": float("nan")}),
        mutate(SPEC_EXAMPLE, {"total_amount": float("inf")}),
        mutate(SPEC_EXAMPLE, {"items[0].quantity": float("nan")}),
        mutate(SPEC_EXAMPLE, {"total_amount": 10**400}),
        mutate(SPEC_EXAMPLE, {"institution.kind": ["hospital"]}),
        mutate(SPEC_EXAMPLE, {"institution.kind": {"k": 1}}),
        mutate(SPEC_EXAMPLE, {"items": (1, 2)}),
        mutate(SPEC_EXAMPLE, {"patient": _Weird()}),
        mutate(SPEC_EXAMPLE, {"items[0]": {"code": {"set"}}}),
    ],
)  # fmt: skip
def test_settlement_from_dict_never_raises(obj: object) -> None:
    result = settlement_from_dict(obj)
    assert isinstance(result, Rejection)
    assert result.reason == "schema" and result.errors


def test_settlement_from_dict_accepts_the_example() -> None:
    assert isinstance(settlement_from_dict(copy.deepcopy(SPEC_EXAMPLE)), Settlement)


def test_random_byte_mutations_never_raise() -> None:
    raw = orjson.dumps(INPATIENT)
    rng = random.Random(20251118)
    for _ in range(3000):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        result = parse_settlement(bytes(data))
        assert isinstance(result, Rejection | tuple)


# --- DLQ records ---------------------------------------------------------------------------


def test_dlq_utf8_raw_is_text() -> None:
    raw = orjson.dumps(mutate(SPEC_EXAMPLE, {"total_amount": 9.0}))
    rejection = parse_settlement(raw)
    assert isinstance(rejection, Rejection)
    source = {"topic": "settlements", "partition": 3, "offset": 42}
    record = rejection.to_dlq(raw, source, rejected_at="2025-11-18T10:02:12+08:00")
    assert record["reason"] == "amounts"
    assert record["raw"] == raw.decode()
    assert "raw_encoding" not in record and "raw_truncated" not in record
    assert record["source"] == source
    assert record["settlement_id"] == SPEC_EXAMPLE["settlement_id"]
    assert orjson.loads(orjson.dumps(record)) == record


def test_dlq_invalid_utf8_raw_is_base64() -> None:
    raw = b'{"settlement_id": "\xff\xfe\x00"}'
    rejection = parse_settlement(raw)
    assert isinstance(rejection, Rejection) and rejection.reason == "not_json"
    record = rejection.to_dlq(raw)
    assert record["raw_encoding"] == "base64"
    assert base64.b64decode(record["raw"]) == raw
    assert record["settlement_id"] is None


def test_dlq_raw_is_truncated() -> None:
    raw = b"\x00\xff" * (5 * 1024 * 1024)  # 10 MiB of garbage
    record = parse_settlement(raw).to_dlq(raw)  # type: ignore[union-attr]
    assert record["raw_truncated"] is True and record["raw_size"] == len(raw)
    assert base64.b64decode(record["raw"]) == raw[:MAX_RAW_BYTES]


def test_dlq_truncation_keeps_whole_utf8_characters() -> None:
    raw = ("{" + "医" * 30_000).encode()  # 3 bytes per character, 90,001 bytes
    record = parse_settlement(raw).to_dlq(raw)  # type: ignore[union-attr]
    assert "raw_encoding" not in record and record["raw_truncated"] is True
    assert raw.decode().startswith(record["raw"])
    assert MAX_RAW_BYTES - 3 < len(record["raw"].encode()) <= MAX_RAW_BYTES
